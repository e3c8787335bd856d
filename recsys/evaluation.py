"""Ranking metrics, vectorised over long frames (no Python loop over customers).

Conventions, as in the Kaggle competition's MAP@12:
- only customers with at least one actual purchase count; every one of them counts,
  including those we had no recommendation for (they score 0);
- a repeated article in a recommendation list counts once, at its first position;
- AP@k divides by min(number of distinct actual articles, k).

Inputs:
- recommendations: columns customer_id, rank (1 = best), article_id
- actuals: columns customer_id, article_id (duplicates are ignored)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TOP_K = 12
METRIC_COLUMNS = ("map@12", "recall@12", "recall@100", "ndcg@12", "coverage", "customers")


def ranking_metrics(
    recommendations: pd.DataFrame,
    actuals: pd.DataFrame,
    catalogue_size: int,
    k: int = TOP_K,
    recall_ks: tuple[int, ...] = (12, 100),
) -> dict[str, float]:
    """MAP@k, recall at each of `recall_ks`, NDCG@k and catalogue coverage of the top-k."""
    truth = actuals[["customer_id", "article_id"]].drop_duplicates()
    customers = truth["customer_id"].unique()
    n_actual = truth.groupby("customer_id").size()
    result: dict[str, float] = {"customers": float(len(customers))}
    if len(customers) == 0:
        return {
            **result,
            f"map@{k}": np.nan,
            f"ndcg@{k}": np.nan,
            "coverage": np.nan,
            **{f"recall@{r}": np.nan for r in recall_ks},
        }

    hits = _first_hits(recommendations, truth, max(k, *recall_ks))
    in_k = hits[hits["rank"] <= k]
    # precision at each hit's rank: (hits so far) / rank
    precision = in_k.groupby("customer_id").cumcount().add(1) / in_k["rank"]
    ap_sum = precision.groupby(in_k["customer_id"]).sum()
    ap = ap_sum / np.minimum(n_actual.reindex(ap_sum.index), k)
    result[f"map@{k}"] = float(ap.sum() / len(customers))

    for r in recall_ks:
        found = hits[hits["rank"] <= r].groupby("customer_id").size()
        result[f"recall@{r}"] = float(
            (found / n_actual.reindex(found.index)).sum() / len(customers)
        )

    dcg = (1.0 / np.log2(in_k["rank"] + 1)).groupby(in_k["customer_id"]).sum()
    ideal_lengths = np.minimum(n_actual.reindex(dcg.index), k).to_numpy()
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    result[f"ndcg@{k}"] = float(
        (dcg.to_numpy() / discounts[ideal_lengths - 1]).sum() / len(customers)
    )

    shown = recommendations.loc[
        recommendations["customer_id"].isin(customers) & (recommendations["rank"] <= k),
        "article_id",
    ]
    result["coverage"] = float(shown.nunique() / catalogue_size) if catalogue_size else np.nan
    return result


def _first_hits(recommendations: pd.DataFrame, truth: pd.DataFrame, depth: int) -> pd.DataFrame:
    """Rows (customer_id, rank) where a recommended article was bought, first occurrence only.

    Ranks are kept as given: a repeat still uses up its slot (as in Kaggle's apk).
    """
    recs = recommendations[["customer_id", "rank", "article_id"]].sort_values(
        ["customer_id", "rank"], kind="stable"
    )
    recs = recs.drop_duplicates(["customer_id", "article_id"], keep="first")
    recs = recs[recs["rank"] <= depth]
    hits = recs.merge(truth, on=["customer_id", "article_id"], how="inner")
    return hits.sort_values(["customer_id", "rank"], kind="stable")[["customer_id", "rank"]]


def segment_metrics(
    recommendations: pd.DataFrame,
    actuals: pd.DataFrame,
    warm_customers: set[str] | pd.Index,
    catalogue_size: int,
) -> pd.DataFrame:
    """`ranking_metrics` for warm (seen in training), cold and all customers of `actuals`."""
    is_warm = actuals["customer_id"].isin(warm_customers)
    rows = []
    for segment, subset in (
        ("warm", actuals[is_warm]),
        ("cold", actuals[~is_warm]),
        ("all", actuals),
    ):
        rows.append(
            {"segment": segment, **ranking_metrics(recommendations, subset, catalogue_size)}
        )
    frame = pd.DataFrame(rows)
    frame["customers"] = frame["customers"].astype("int64")
    return frame[["segment", *METRIC_COLUMNS]]


def to_long(
    customer_ids: np.ndarray,
    article_ids: np.ndarray,
    scores: np.ndarray | None = None,
) -> pd.DataFrame:
    """(n, k) arrays of article ids (and scores) -> long frame with rank 1..k."""
    n, k = article_ids.shape
    frame = pd.DataFrame(
        {
            "customer_id": np.repeat(np.asarray(customer_ids), k),
            "rank": np.tile(np.arange(1, k + 1), n),
            "article_id": article_ids.reshape(-1),
        }
    )
    if scores is not None:
        frame["score"] = scores.reshape(-1).astype("float64")
    return frame
