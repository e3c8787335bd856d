"""What the methods rank from, as of a day: the shared part (`Day`) and a batch of
customers (`Customers`), read from the engine with everything before the day only.

Counts and recent purchases are aggregated in SQL by the engine (the same SQL in DuckDB
and RisingWave), so only small frames reach pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from recsys.strategy.lists import Ragged

POPULAR_WINDOW_DAYS = 7
REPURCHASE_WINDOW_DAYS = 28
RANKING_DEPTH = 100  # recall@100 needs 100 articles from every ranking
SCORING_BATCH = 4_096  # queries scored at once: bounds the (queries x articles) scores


@dataclass(frozen=True)
class CandidateRule:
    """Which articles the model may recommend as of a day: those bought at least
    `min_purchases` times in the `days` before it (0 days: the whole catalogue).

    Fashion articles stop selling after their season, and an article that sold only once
    last week is often at the end of its life: recsys/train/profiles.toml gives the
    measurements.
    """

    days: int
    min_purchases: int = 1

    def describe(self) -> str:
        if not self.days:
            return "the whole catalogue"
        times = "once" if self.min_purchases == 1 else f"{self.min_purchases} times"
        return f"articles bought at least {times} in the last {self.days} days"


WHOLE_CATALOGUE = CandidateRule(days=0)


class Candidates:
    """Article embeddings the model ranks by inner product (exact, faiss IndexFlatIP)."""

    def __init__(self, vectors: np.ndarray, article_ids: np.ndarray) -> None:
        import faiss

        self.vectors = np.ascontiguousarray(vectors, dtype="float32")
        self.article_ids = np.asarray(article_ids, dtype=object)
        self._index = faiss.IndexFlatIP(self.vectors.shape[1])
        self._index.add(self.vectors)

    def __len__(self) -> int:
        return len(self.article_ids)

    def restricted(self, engine, cutoff: date, rule: CandidateRule) -> Candidates:
        """The part the model may recommend as of `cutoff` under `rule`; all of them when
        the rule keeps fewer than RANKING_DEPTH."""
        if not rule.days:
            return self
        sold = sold_articles(engine, cutoff, rule.days, rule.min_purchases)
        mask = pd.Index(self.article_ids).isin(sold)
        if mask.sum() < RANKING_DEPTH or mask.all():
            return self
        return Candidates(self.vectors[mask], self.article_ids[mask])

    def search(self, queries: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """(article ids, scores), each (len(queries), depth), best first. Queries go in
        slices so that memory stays bounded however many there are."""
        depth = min(depth, len(self))
        scores = np.empty((len(queries), depth), dtype="float32")
        rows = np.empty((len(queries), depth), dtype="int64")
        for start in range(0, len(queries), SCORING_BATCH):
            block = np.ascontiguousarray(queries[start : start + SCORING_BATCH], dtype="float32")
            stop = start + len(block)
            scores[start:stop], rows[start:stop] = self._index.search(block, depth)
        return self.article_ids[rows], scores


@dataclass(frozen=True)
class Day:
    """What every customer's lists share as of `day` (the day recommended for)."""

    day: date
    popular: np.ndarray  # article ids, best first
    candidates: Candidates | None  # what the model may recommend; None without a model

    @classmethod
    def read(
        cls,
        engine,
        day: date,
        catalogue: Candidates | None = None,
        rule: CandidateRule = WHOLE_CATALOGUE,
        depth: int = RANKING_DEPTH,
    ) -> Day:
        popular = np.asarray(popular_articles(engine, day, depth), dtype=object)
        candidates = None if catalogue is None else catalogue.restricted(engine, day, rule)
        return cls(day, popular, candidates)


@dataclass(frozen=True)
class Customers:
    """A batch of customers as of a day: who the model knows, their repurchase window's
    articles in repurchase order, and (for the model's methods) their query embeddings."""

    ids: np.ndarray  # object
    known: np.ndarray  # bool: the model was trained on them (warm)
    history: Ragged  # `History` order
    queries: np.ndarray | None = field(default=None, repr=False)  # (n, d) float32

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: np.ndarray) -> Customers:
        """The customers where `rows` (bool) holds, in order."""
        index = np.flatnonzero(rows)
        queries = None if self.queries is None else self.queries[index]
        return Customers(self.ids[index], self.known[index], self.history.subset(index), queries)


class History:
    """Every customer's articles of the repurchase window before a day, in repurchase
    order: newest first, then most bought in the window, then by id."""

    def __init__(self, recent: pd.DataFrame) -> None:
        days = pd.to_datetime(recent["last_bought"]).to_numpy().astype("int64")
        order = repurchase_order(
            recent["customer_id"].to_numpy(), recent["article_id"].to_numpy(), days,
            recent["bought"].to_numpy(),
        )  # fmt: skip
        ordered = recent.iloc[order]
        self._articles = ordered["article_id"].to_numpy(dtype=object)
        owners = ordered["customer_id"].to_numpy(dtype=object)
        starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if len(owners) else []
        stops = np.r_[starts[1:], len(owners)] if len(owners) else []
        self._spans = pd.Series(list(zip(starts, stops, strict=True)), index=owners[starts])

    @classmethod
    def read(cls, engine, cutoff: date) -> History:
        return cls(recent_purchases(engine, cutoff))

    def of(self, ids: np.ndarray) -> Ragged:
        spans = self._spans.reindex(pd.Index(ids, dtype=object))
        return Ragged.of(
            [[] if pd.isna(span) else list(self._articles[span[0] : span[1]]) for span in spans]
        )


def repurchase_order(
    customers: np.ndarray, articles: np.ndarray, last_days: np.ndarray, bought: np.ndarray
) -> np.ndarray:
    """The order (indices) of purchase rows by customer, then newest first (`last_days`:
    any increasing number per day), then most bought in the window, then by article id:
    the repurchase baseline's own articles, best first."""
    newest, most = -np.asarray(last_days, dtype="int64"), -np.asarray(bought, dtype="int64")
    return np.lexsort((articles, most, newest, customers))


def popular_articles(engine, cutoff: date, depth: int) -> list[str]:
    """The `depth` most bought articles (units) in the 7 days before `cutoff`."""
    start = cutoff - timedelta(days=POPULAR_WINDOW_DAYS)
    frame = engine.query(
        "SELECT article_id, SUM(units) AS bought FROM joined_transactions_t "
        f"WHERE t_dat >= DATE '{start.isoformat()}' AND t_dat < DATE '{cutoff.isoformat()}' "
        f"GROUP BY article_id ORDER BY bought DESC, article_id LIMIT {int(depth)}"
    )
    return frame["article_id"].astype(str).tolist()


def sold_articles(engine, cutoff: date, days: int, min_purchases: int = 1) -> list[str]:
    """Every article bought at least `min_purchases` times (units, as the popular list
    counts them) in the `days` before `cutoff`."""
    start = cutoff - timedelta(days=days)
    frame = engine.query(
        "SELECT article_id FROM joined_transactions_t "
        f"WHERE t_dat >= DATE '{start.isoformat()}' AND t_dat < DATE '{cutoff.isoformat()}' "
        f"GROUP BY article_id HAVING SUM(units) >= {int(min_purchases)}"
    )
    return frame["article_id"].astype(str).tolist()


def recent_purchases(engine, cutoff: date) -> pd.DataFrame:
    """(customer_id, article_id, last_bought, bought) over the 28 days before `cutoff`."""
    start = cutoff - timedelta(days=REPURCHASE_WINDOW_DAYS)
    return engine.query(
        "SELECT customer_id, article_id, MAX(t_dat) AS last_bought, SUM(units) AS bought "
        "FROM joined_transactions_t "
        f"WHERE t_dat >= DATE '{start.isoformat()}' AND t_dat < DATE '{cutoff.isoformat()}' "
        "GROUP BY customer_id, article_id"
    )
