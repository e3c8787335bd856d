"""What the methods rank from, as of a day: the shared part (`Day`) and a batch of
customers (`Customers`), read from the engine with everything before the day only.

Counts and recent purchases are aggregated in SQL by the engine (the same SQL in DuckDB
and RisingWave), so only small frames reach pandas.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import ClassVar

import numpy as np
import pandas as pd

from recsys.strategy.articles import AgePopular, ArticleStats, Together
from recsys.strategy.lists import Ragged

POPULAR_WINDOW_DAYS = 7
REPURCHASE_WINDOW_DAYS = 28
RANKING_DEPTH = 100  # recall@100 needs 100 articles from every ranking
SCORING_BATCH = 4_096  # queries scored at once: bounds the (queries x articles) scores


@dataclass(frozen=True)
class CandidateRule:
    """Which articles the model may recommend as of a day: those bought at least
    `min_purchases` times in the `days` before it (0 days: the whole catalogue); and how
    much their sales in those days count: `prior` times the log of their units is added
    to the model's score.

    Fashion articles stop selling after their season, and an article that sold only once
    last week is often at the end of its life: recsys/train/profiles.toml gives the
    measurements. The prior: the model learns with the logQ correction, which takes each
    article's share of the training weeks out of its score (so the embeddings carry
    taste, not popularity); the log of what sells now puts the current week's popularity
    back in its place.
    """

    days: int
    min_purchases: int = 1
    prior: float = 0.0

    def describe(self) -> str:
        if not self.days:
            return "the whole catalogue"
        times = "once" if self.min_purchases == 1 else f"{self.min_purchases} times"
        text = f"articles bought at least {times} in the last {self.days} days"
        return text + (f", scored + {self.prior:g} x log(their units)" if self.prior else "")


WHOLE_CATALOGUE = CandidateRule(days=0)


class Candidates:
    """Article embeddings the model ranks by inner product (exact, faiss IndexFlatIP), plus
    each article's `bias` when given (`CandidateRule.prior`): one more dimension, 1 in
    every query."""

    def __init__(
        self, vectors: np.ndarray, article_ids: np.ndarray, bias: np.ndarray | None = None
    ) -> None:
        import faiss

        self.vectors = np.ascontiguousarray(vectors, dtype="float32")
        self.article_ids = np.asarray(article_ids, dtype=object)
        self.bias = None if bias is None else np.asarray(bias, dtype="float32")
        indexed = self.vectors if bias is None else np.column_stack([self.vectors, self.bias])
        self._index = faiss.IndexFlatIP(indexed.shape[1])
        self._index.add(np.ascontiguousarray(indexed))

    def __len__(self) -> int:
        return len(self.article_ids)

    def positions(self, articles: np.ndarray) -> np.ndarray:
        """Each article id's row of `vectors` (-1: not among them)."""
        return self._rows.get_indexer(np.asarray(articles, dtype=object))

    @functools.cached_property
    def _rows(self) -> pd.Index:
        return pd.Index(self.article_ids)

    def restricted(self, engine, cutoff: date, rule: CandidateRule) -> Candidates:
        """The part the model may recommend as of `cutoff` under `rule`, with the rule's
        prior; all of them, without it, when the rule keeps fewer than RANKING_DEPTH."""
        if not rule.days:
            return self
        sold = sold_articles(engine, cutoff, rule.days, rule.min_purchases)
        mask = pd.Index(self.article_ids).isin(sold.index)
        if mask.sum() < RANKING_DEPTH or (mask.all() and not rule.prior):
            return self
        ids = self.article_ids[mask]
        bias = (
            rule.prior * np.log(sold.reindex(ids).to_numpy(dtype="float64")) if rule.prior else None
        )
        return Candidates(self.vectors[mask], ids, bias)

    def search(self, queries: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """(article ids, scores), each (len(queries), depth), best first. Queries go in
        slices so that memory stays bounded however many there are."""
        depth = min(depth, len(self))
        scores = np.empty((len(queries), depth), dtype="float32")
        rows = np.empty((len(queries), depth), dtype="int64")
        for start in range(0, len(queries), SCORING_BATCH):
            block = np.asarray(queries[start : start + SCORING_BATCH], dtype="float32")
            if self.bias is not None:
                block = np.column_stack([block, np.ones(len(block), dtype="float32")])
            block = np.ascontiguousarray(block)
            stop = start + len(block)
            scores[start:stop], rows[start:stop] = self._index.search(block, depth)
        return self.article_ids[rows], scores


@dataclass(frozen=True, eq=False)
class Day:
    """What every customer's lists share as of `day` (the day recommended for): the
    popular list, the model's candidates, and what the other sources and the ranker read
    (`recsys.strategy.articles`; None where a hand-made Day leaves them out)."""

    day: date
    popular: np.ndarray  # article ids, best first
    candidates: Candidates | None  # what the model may recommend; None without a model
    articles: ArticleStats | None = None
    together: Together | None = None
    age_popular: AgePopular | None = None
    catalogue: Candidates | None = field(default=None, repr=False)  # every article's vector
    rankers: dict = field(default_factory=dict, repr=False)  # name -> fitted ranker

    @classmethod
    def read(
        cls,
        engine,
        day: date,
        catalogue: Candidates | None = None,
        rule: CandidateRule = WHOLE_CATALOGUE,
        depth: int = RANKING_DEPTH,
        rankers: dict | None = None,
        popular: np.ndarray | None = None,
    ) -> Day:
        """Everything as of `day`; `popular` when the caller read the list elsewhere (the
        service reads RisingWave's article_popularity_t)."""
        if popular is None:
            popular = np.asarray(popular_articles(engine, day, depth), dtype=object)
        candidates = None if catalogue is None else catalogue.restricted(engine, day, rule)
        articles = ArticleStats.read(engine, day)
        return cls(
            day,
            popular,
            candidates,
            articles,
            Together.read(engine, day, articles),
            AgePopular.read(engine, day, depth),
            catalogue,
            rankers or {},
        )


@dataclass(frozen=True, eq=False)
class Purchases:
    """Each customer's purchases before the day, one entry per distinct article, in any
    order: customer i's are the entries `offsets[i]:offsets[i + 1]` of each column.

    The service fills it from what it holds of a customer, the flow from the engine
    (`History`), both through `Purchases.of`: the ranker's features and the sources read
    the same numbers either way."""

    offsets: np.ndarray  # (n + 1,) int64
    articles: np.ndarray  # object: article ids
    last_day: np.ndarray  # int64: the last day bought, as date.toordinal()
    units: np.ndarray  # int64: units bought over all days before the day
    window_units: np.ndarray  # int64: ... over the REPURCHASE_WINDOW_DAYS before it
    online: np.ndarray  # float64: ... over all days online (sales channel 2); NaN: unknown

    COLUMNS: ClassVar = ("articles", "last_day", "units", "window_units", "online")

    @classmethod
    def of(
        cls,
        ids: np.ndarray,
        owners: np.ndarray,
        articles: np.ndarray,
        last_day: np.ndarray,
        units: np.ndarray,
        window_units: np.ndarray,
        online: np.ndarray,
    ) -> Purchases:
        """From one row per (customer, article): the rows of customers not in `ids` are
        left out; a customer of `ids` without rows has none."""
        rows = pd.Index(np.asarray(ids, dtype=object)).get_indexer(np.asarray(owners, dtype=object))
        keep = np.flatnonzero(rows >= 0)
        order = keep[np.argsort(rows[keep], kind="stable")]
        offsets = np.zeros(len(ids) + 1, dtype="int64")
        np.cumsum(np.bincount(rows[keep], minlength=len(ids)), out=offsets[1:])
        columns = (articles, last_day, units, window_units, online)
        kinds = (object, "int64", "int64", "int64", "float64")
        return cls(
            offsets, *(np.asarray(c, dtype=k)[order] for c, k in zip(columns, kinds, strict=True))
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def owner(self) -> np.ndarray:
        """Each entry's customer (row of the batch)."""
        return np.repeat(np.arange(len(self)), np.diff(self.offsets))

    def subset(self, rows: np.ndarray) -> Purchases:
        """The purchases of `rows` (indices), in that order."""
        starts, stops = self.offsets[:-1][rows], self.offsets[1:][rows]
        counts = stops - starts
        taken = (
            np.repeat(starts, counts)
            + np.arange(counts.sum())
            - np.repeat(np.cumsum(counts) - counts, counts)
        )
        offsets = np.zeros(len(counts) + 1, dtype="int64")
        np.cumsum(counts, out=offsets[1:])
        return Purchases(offsets, *(getattr(self, c)[taken] for c in self.COLUMNS))

    def repurchase_window(self) -> Ragged:
        """Each customer's articles of the repurchase window, in repurchase order."""
        owner = self.owner
        inside = np.flatnonzero(self.window_units > 0)
        order = inside[
            repurchase_order(
                owner[inside], self.articles[inside], self.last_day[inside],
                self.window_units[inside],
            )
        ]  # fmt: skip
        offsets = np.zeros(len(self) + 1, dtype="int64")
        np.cumsum(np.bincount(owner[inside], minlength=len(self)), out=offsets[1:])
        return Ragged(offsets, self.articles[order])


@dataclass(frozen=True, eq=False)
class Customers:
    """A batch of customers as of a day: who the model knows, their repurchase window's
    articles in repurchase order, (for the model's methods) their query embeddings, and
    (for the candidate sources and the ranker) their purchases and age."""

    ids: np.ndarray  # object
    known: np.ndarray  # bool: the model was trained on them (warm)
    history: Ragged  # `Purchases.repurchase_window` order
    queries: np.ndarray | None = field(default=None, repr=False)  # (n, d) float32
    purchases: Purchases | None = field(default=None, repr=False)
    age: np.ndarray | None = None  # float64, NaN where unknown

    @classmethod
    def of(
        cls,
        ids: np.ndarray,
        known: np.ndarray,
        purchases: Purchases,
        age: np.ndarray,
        queries: np.ndarray | None = None,
    ) -> Customers:
        """The batch from its purchases (the one way the flow and the service make it)."""
        ids = np.asarray(ids, dtype=object)
        history = purchases.repurchase_window()
        return cls(ids, np.asarray(known, dtype=bool), history, queries, purchases,
                   np.asarray(age, dtype="float64"))  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)

    def chunks(self, size: int) -> Iterator[tuple[np.ndarray, Customers]]:
        """The batch `size` customers at a time: (where they are (bool), them)."""
        for start in range(0, len(self), size):
            rows = np.zeros(len(self), dtype=bool)
            rows[start : start + size] = True
            yield rows, self.subset(rows)

    def subset(self, rows: np.ndarray) -> Customers:
        """The customers where `rows` (bool) holds, in order."""
        index = np.flatnonzero(rows)
        return Customers(
            self.ids[index],
            self.known[index],
            self.history.subset(index),
            None if self.queries is None else self.queries[index],
            None if self.purchases is None else self.purchases.subset(index),
            None if self.age is None else self.age[index],
        )


class History:
    """The customers' purchases and ages as of a day, read from the engine a batch of
    customers at a time (the full data's purchases do not fit in one frame)."""

    def __init__(self, engine, day: date) -> None:
        self.engine, self.day = engine, day

    @classmethod
    def read(cls, engine, day: date) -> History:
        return cls(engine, day)

    def customers(
        self, ids: np.ndarray, known: np.ndarray, queries: np.ndarray | None = None
    ) -> Customers:
        """The batch `ids` as of the day (`Customers.of`)."""
        wanted = [list(np.asarray(ids, dtype=object))]
        bounds = [min(wanted[0], default=""), max(wanted[0], default="")]
        rows = self.engine.query(purchases_sql(self.day), wanted + bounds)
        last = pd.to_datetime(rows["last_bought"]).dt.date.map(date.toordinal)
        purchases = Purchases.of(
            ids, rows["customer_id"].to_numpy(dtype=object),
            rows["article_id"].to_numpy(dtype=object), last.to_numpy(dtype="int64"),
            rows["units"].to_numpy(), rows["window_units"].to_numpy(), rows["online"].to_numpy(),
        )  # fmt: skip
        ages = self.engine.query(AGES_SQL, wanted)
        age = ages.set_index("customer_id")["age"].reindex(pd.Index(ids, dtype=object))
        return Customers.of(ids, known, purchases, age.to_numpy(dtype="float64"), queries)


_WANTED = "(SELECT UNNEST(CAST($1 AS VARCHAR[])) AS customer_id) AS w"
# Each wanted customer's age (customers_t; none for a customer without a row).
AGES_SQL = (
    f"SELECT w.customer_id, c.age FROM {_WANTED} JOIN customers_t AS c "
    "ON c.customer_id = w.customer_id"
)


def purchases_sql(day: date) -> str:
    """The rows of `Purchases.of` for the customers of the list parameter $1: per
    (customer, article) bought before `day`, the last day, the units over all days, over
    the repurchase window and online. $2 and $3 are the list's first and last id: a
    range the engine can apply while it scans, before it deduplicates (the flow's
    predictions read the customers in id slices, `recent_articles.customer_slices`)."""
    window = day - timedelta(days=REPURCHASE_WINDOW_DAYS)
    return (
        "SELECT d.customer_id, d.article_id, MAX(d.t_dat) AS last_bought, "
        "SUM(d.units) AS units, "
        f"SUM(CASE WHEN d.t_dat >= DATE '{window.isoformat()}' THEN d.units ELSE 0 END) "
        "AS window_units, "
        "SUM(CASE WHEN d.sales_channel_id = 2 THEN d.units ELSE 0 END) AS online "
        f"FROM dedup_transactions_t AS d JOIN {_WANTED} ON w.customer_id = d.customer_id "
        f"WHERE d.t_dat < DATE '{day.isoformat()}' "
        "AND d.customer_id >= $2 AND d.customer_id <= $3 GROUP BY d.customer_id, d.article_id"
    )


def repurchase_order(
    customers: np.ndarray, articles: np.ndarray, last_days: np.ndarray, bought: np.ndarray
) -> np.ndarray:
    """The order (indices) of purchase rows by customer, then newest first (`last_days`:
    any increasing number per day), then most bought in the window, then by article id:
    the repurchase baseline's own articles, best first."""
    newest, most = -np.asarray(last_days, dtype="int64"), -np.asarray(bought, dtype="int64")
    return np.lexsort((articles, most, newest, customers))


def week_purchases(engine, start: date, end: date) -> pd.DataFrame:
    """Every purchase in [start, end) by any customer (warm or cold): what a week's lists
    are scored on and the ranker learns from; ordered, so that runs repeat exactly."""
    return engine.query(
        "SELECT DISTINCT customer_id, article_id, t_dat FROM joined_transactions_t "
        "WHERE t_dat >= $1 AND t_dat < $2 ORDER BY customer_id, article_id, t_dat",
        [start, end],
    )


def popular_articles(engine, cutoff: date, depth: int) -> list[str]:
    """The `depth` most bought articles (units) in the 7 days before `cutoff`."""
    start = cutoff - timedelta(days=POPULAR_WINDOW_DAYS)
    frame = engine.query(
        "SELECT article_id, SUM(units) AS bought FROM joined_transactions_t "
        f"WHERE t_dat >= DATE '{start.isoformat()}' AND t_dat < DATE '{cutoff.isoformat()}' "
        f"GROUP BY article_id ORDER BY bought DESC, article_id LIMIT {int(depth)}"
    )
    return frame["article_id"].astype(str).tolist()


def sold_articles(engine, cutoff: date, days: int, min_purchases: int = 1) -> pd.Series:
    """Every article bought at least `min_purchases` times (units, as the popular list
    counts them) in the `days` before `cutoff`: its units, by article id."""
    start = cutoff - timedelta(days=days)
    frame = engine.query(
        "SELECT article_id, SUM(units) AS units FROM joined_transactions_t "
        f"WHERE t_dat >= DATE '{start.isoformat()}' AND t_dat < DATE '{cutoff.isoformat()}' "
        f"GROUP BY article_id HAVING SUM(units) >= {int(min_purchases)}"
    )
    return frame.set_index(frame["article_id"].astype(str))["units"].astype("int64")
