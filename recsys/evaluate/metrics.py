"""Ranking metrics, vectorised over long frames (no Python loop over customers).

Conventions, as in the Kaggle competition's MAP@12:
- only customers with at least one actual purchase count; every one of them counts,
  including those we had no recommendation for (they score 0);
- a repeated article in a recommendation list counts once, at its first position;
- AP@k divides by min(number of distinct actual articles, k).

Inputs:
- recommendations: columns customer_id, rank (1 = best), article_id
- actuals: columns customer_id, article_id (duplicates are ignored)

`selling@12` is the share of a customer's top-12 that anyone buys in the scored week
(`sold`): fashion articles stop selling after a season, and a method that recommends
articles nobody buys any more loses there before it loses on MAP@12.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

TOP_K = 12
METRIC_COLUMNS = (
    "map@12",
    "recall@12",
    "recall@100",
    "ndcg@12",
    "selling@12",
    "coverage",
    "customers",
)
INTERVAL_METRICS = ("map@12", "recall@12")  # the ones given a 95% bootstrap interval
BOOTSTRAP_RESAMPLES = 1_000
BOOTSTRAP_SEED = 7


def ranking_metrics(
    recommendations: pd.DataFrame,
    actuals: pd.DataFrame,
    catalogue_size: int,
    k: int = TOP_K,
    recall_ks: tuple[int, ...] = (12, 100),
) -> dict[str, float]:
    """MAP@k, recall at each of `recall_ks`, NDCG@k, selling@k (sold: the articles of
    `actuals`) and catalogue coverage of the top-k."""
    sold = set(actuals["article_id"])
    scores = customer_scores(recommendations, actuals, k, recall_ks, sold)
    return summarize(scores, shown_articles(recommendations, actuals, k), catalogue_size)


def customer_scores(
    recommendations: pd.DataFrame,
    actuals: pd.DataFrame,
    k: int = TOP_K,
    recall_ks: tuple[int, ...] = (12, 100),
    sold: set | None = None,
) -> pd.DataFrame:
    """AP@k, recall@r, NDCG@k of every customer of `actuals` (0 without a hit), by id,
    and with `sold` the share of their top-k that is in it (`selling@k`).

    Per customer, so that customers can be scored in batches and averaged at the end
    (`summarize`) with exactly the figures of scoring them all at once.
    """
    truth = actuals[["customer_id", "article_id"]].drop_duplicates()
    n_actual = truth.groupby("customer_id").size()
    scores = pd.DataFrame(index=n_actual.index)
    hits = _first_hits(recommendations, truth, max(k, *recall_ks))
    in_k = hits[hits["rank"] <= k]
    # precision at each hit's rank: (hits so far) / rank
    precision = in_k.groupby("customer_id").cumcount().add(1) / in_k["rank"]
    ap_sum = precision.groupby(in_k["customer_id"]).sum()
    scores[f"map@{k}"] = (ap_sum / np.minimum(n_actual.reindex(ap_sum.index), k)).reindex(
        scores.index, fill_value=0.0
    )
    for r in recall_ks:
        found = hits[hits["rank"] <= r].groupby("customer_id").size()
        scores[f"recall@{r}"] = (found / n_actual.reindex(found.index)).reindex(
            scores.index, fill_value=0.0
        )
    dcg = (1.0 / np.log2(in_k["rank"] + 1)).groupby(in_k["customer_id"]).sum()
    ideal_lengths = np.minimum(n_actual.reindex(dcg.index), k).to_numpy()
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    ndcg = pd.Series(dcg.to_numpy() / discounts[ideal_lengths - 1], index=dcg.index)
    scores[f"ndcg@{k}"] = ndcg.reindex(scores.index, fill_value=0.0)
    if sold is not None:
        top = recommendations[recommendations["rank"] <= k]
        top = top.drop_duplicates(["customer_id", "article_id"])
        selling = top["article_id"].isin(sold).groupby(top["customer_id"]).mean()
        scores[f"selling@{k}"] = selling.reindex(scores.index, fill_value=0.0)
    return scores


def shown_articles(recommendations: pd.DataFrame, actuals: pd.DataFrame, k: int = TOP_K) -> set:
    """The articles in the top-k of the customers of `actuals` (for catalogue coverage)."""
    shown = recommendations.loc[
        recommendations["customer_id"].isin(actuals["customer_id"])
        & (recommendations["rank"] <= k),
        "article_id",
    ]
    return set(shown.unique())


def summarize(scores: pd.DataFrame, shown: set, catalogue_size: int) -> dict[str, float]:
    """Means over customers of `customer_scores`, their count, and coverage of `shown`."""
    result: dict[str, float] = {"customers": float(len(scores))}
    for column in scores.columns:
        result[column] = float(scores[column].mean()) if len(scores) else np.nan
    result["coverage"] = len(shown) / catalogue_size if catalogue_size and len(scores) else np.nan
    return result


def _first_hits(recommendations: pd.DataFrame, truth: pd.DataFrame, depth: int) -> pd.DataFrame:
    """Rows (customer_id, rank) where a recommended article was bought, first occurrence only.

    Ranks are kept as given: a repeat still uses up its slot (as in Kaggle's apk). Only
    the hits are deduplicated (a bought article's first rank is its smallest), never the
    whole ranking: 100 ranked articles per customer are millions of string rows.
    """
    recs = recommendations.loc[
        recommendations["rank"] <= depth, ["customer_id", "rank", "article_id"]
    ]
    hits = recs.merge(truth, on=["customer_id", "article_id"], how="inner")
    first = hits.groupby(["customer_id", "article_id"], sort=False)["rank"].min().reset_index()
    return first.sort_values(["customer_id", "rank"], kind="stable")[["customer_id", "rank"]]


def segment_metrics(
    recommendations: pd.DataFrame,
    actuals: pd.DataFrame,
    warm_customers: set[str] | pd.Index,
    catalogue_size: int,
) -> pd.DataFrame:
    """`ranking_metrics` for warm (seen in training), cold and all customers of `actuals`."""
    board = Scoreboard(catalogue_size, pd.Index(warm_customers), set(actuals["article_id"]))
    board.add("model", recommendations, actuals)
    return board.metrics().drop(columns="model")


@dataclass
class Scoreboard:
    """Scores of several methods on one week, fed in customer batches.

    `add` takes one batch's recommendations of one method and the actual purchases of
    that batch's customers; `metrics` gives the same table as scoring all at once.
    `sold` is every article bought in the week by anyone, not only by a batch.
    """

    catalogue_size: int
    warm: pd.Index
    sold: set  # the articles anyone bought in the week (for selling@12)
    _scores: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    _shown: dict[tuple[str, str], set] = field(default_factory=dict)

    @classmethod
    def pooled(cls, boards: Mapping[str, Scoreboard]) -> Scoreboard:
        """Several weeks' boards as one: each (week, customer) pair is one unit of the
        means and of the bootstrap; coverage counts the articles shown in any week."""
        first = next(iter(boards.values()))
        pooled = cls(first.catalogue_size, first.warm[:0], set())
        for week, board in boards.items():
            for method, parts in board._scores.items():
                for part in parts:
                    keys = pd.MultiIndex.from_product([[week], part.index])
                    pooled._scores.setdefault(method, []).append(part.set_axis(keys))
            for key, shown in board._shown.items():
                pooled._shown.setdefault(key, set()).update(shown)
        return pooled

    def add(self, method: str, recommendations: pd.DataFrame, actuals: pd.DataFrame) -> None:
        scores = customer_scores(recommendations, actuals, sold=self.sold)
        scores["warm"] = scores.index.isin(self.warm)
        self._scores.setdefault(method, []).append(scores)
        is_warm = actuals["customer_id"].isin(self.warm)
        for segment, subset in (("warm", actuals[is_warm]), ("cold", actuals[~is_warm])):
            shown = self._shown.setdefault((method, segment), set())
            shown |= shown_articles(recommendations, subset)

    def summary(self, method: str, segment: str = "all") -> dict[str, float]:
        """One method's metrics over one segment (warm, cold or all)."""
        scores = pd.concat(self._scores[method])
        shown = set()
        for part in ("warm", "cold"):
            if segment in (part, "all"):
                shown |= self._shown.get((method, part), set())
        if segment != "all":
            scores = scores[scores["warm"] == (segment == "warm")]
        return summarize(scores.drop(columns="warm"), shown, self.catalogue_size)

    def map_at_12(self, method: str, segment: str = "all") -> float:
        return self.summary(method, segment)["map@12"]

    def metrics(self) -> pd.DataFrame:
        """One row per (model, segment) with METRIC_COLUMNS, in the order methods were added,
        and each INTERVAL_METRICS' 95% bootstrap interval over customers (`_low`, `_high`)."""
        rows = []
        for segment in ("warm", "cold", "all"):
            intervals = self._intervals(segment)
            for method in self._scores:
                bounds = {
                    f"{metric}_{side}": intervals.loc[(method, metric), side]
                    for metric in INTERVAL_METRICS
                    for side in ("low", "high")
                }
                rows.append(
                    {"model": method, "segment": segment, **self.summary(method, segment), **bounds}
                )
        order = {method: i for i, method in enumerate(self._scores)}
        frame = pd.DataFrame(rows).sort_values(
            ["model", "segment"],
            key=lambda c: c.map(order) if c.name == "model" else c.map(SEGMENT_ORDER),
            kind="stable",
        )
        frame["customers"] = frame["customers"].astype("int64")
        bounds = [f"{m}_{side}" for m in INTERVAL_METRICS for side in ("low", "high")]
        return frame[["model", "segment", *METRIC_COLUMNS, *bounds]].reset_index(drop=True)

    def differences(self, methods: Sequence[str], baselines: Sequence[str]) -> pd.DataFrame:
        """Paired differences (method minus baseline, same customers) of INTERVAL_METRICS
        over all customers: the mean and its 95% bootstrap interval."""
        table = self._per_customer("all")
        columns, pairs = {}, []
        for method in methods:
            for baseline in baselines:
                for metric in INTERVAL_METRICS:
                    columns[(method, baseline, metric)] = (
                        table[(method, metric)] - table[(baseline, metric)]
                    )
                    pairs.append((method, baseline, metric))
        diffs = pd.DataFrame(columns)
        low, high = bootstrap_interval(diffs.to_numpy())
        return pd.DataFrame(
            {
                "model": [p[0] for p in pairs],
                "baseline": [p[1] for p in pairs],
                "metric": [p[2] for p in pairs],
                "difference": diffs.mean().to_numpy(),
                "low": low,
                "high": high,
            }
        )

    def _per_customer(self, segment: str) -> pd.DataFrame:
        """INTERVAL_METRICS of every method, one row per customer of `segment`, aligned."""
        frames = {}
        for method, parts in self._scores.items():
            scores = pd.concat(parts)
            if segment != "all":
                scores = scores[scores["warm"] == (segment == "warm")]
            frames[method] = scores[list(INTERVAL_METRICS)].sort_index()
        return pd.concat(frames, axis=1)

    def _intervals(self, segment: str) -> pd.DataFrame:
        """(method, metric) -> low, high: 95% bootstrap intervals of the means."""
        table = self._per_customer(segment)
        low, high = bootstrap_interval(table.to_numpy())
        return pd.DataFrame({"low": low, "high": high}, index=table.columns)


SEGMENT_ORDER = {"warm": 0, "cold": 1, "all": 2}


def bootstrap_interval(
    values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile-bootstrap interval of each column's mean, resampling rows (customers).

    All columns share the same resamples, so a column of paired differences gets a paired
    interval. Each resample is a vector of counts (how often each row was drawn), so a
    batch of resamples is one matrix product: fast for a million customers. No rows: NaN.
    """
    values = np.asarray(values, dtype="float64")
    n, width = values.shape
    if n == 0:
        return np.full(width, np.nan), np.full(width, np.nan)
    rng = np.random.default_rng(seed)
    means = np.empty((resamples, width))
    batch = max(1, min(resamples, 20_000_000 // n))
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(size)])
        means[start : start + size] = counts @ values / n
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    return low, high
