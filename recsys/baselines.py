"""The two baselines the model must beat, computed from data before a cutoff only.

- `popular`: the most bought articles of the last 7 days before the cutoff, the same
  list for everyone;
- `repurchase`: each customer's own recent purchases (most recent first), filled up
  with the popular list (the best public heuristic kernels of the competition).

`repurchase_recommendations` also builds the hybrid the flow evaluates next to the
model: recent purchases first, then the model's ranking instead of the popular list.

Counts and recent purchases are aggregated in SQL by the engine (same SQL in DuckDB
and RisingWave), so only small frames reach pandas; ranking is vectorised.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

POPULAR_WINDOW_DAYS = 7
REPURCHASE_WINDOW_DAYS = 28
BASELINES = ("popular", "repurchase")


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
    """Every article bought at least `min_purchases` times (units, as the popularity
    baseline counts them) in the `days` before `cutoff`."""
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


def popular_recommendations(customers: np.ndarray, popular: list[str]) -> pd.DataFrame:
    """The same popular list for every customer: long frame (customer_id, rank, article_id)."""
    n, k = len(customers), len(popular)
    return pd.DataFrame(
        {
            "customer_id": np.repeat(np.asarray(customers, dtype=object), k),
            "rank": np.tile(np.arange(1, k + 1), n),
            "article_id": np.tile(np.asarray(popular, dtype=object), n),
        }
    )


def repurchase_recommendations(
    customers: np.ndarray, recent: pd.DataFrame, fill: pd.DataFrame, depth: int
) -> pd.DataFrame:
    """Each customer's recent articles (latest, then most bought), then their `fill` list.

    `fill` is a long frame (customer_id, rank, article_id): the popular list for the
    baseline, or the model's own ranking for the hybrid. A `source` column says which
    part each recommendation came from.
    """
    wanted = pd.Index(customers, dtype=object)
    own = recent[recent["customer_id"].isin(wanted)].sort_values(
        ["customer_id", "last_bought", "bought", "article_id"],
        ascending=[True, False, False, True],
    )
    own = own.assign(order=own.groupby("customer_id").cumcount(), source="repurchase")
    fill = fill[fill["customer_id"].isin(wanted)]
    fill = fill.assign(order=fill["rank"] - 1 + depth, source="fill")
    columns = ["customer_id", "article_id", "order", "source"]
    merged = pd.concat([own.loc[own["order"] < depth, columns], fill[columns]], ignore_index=True)
    merged = merged.sort_values(["customer_id", "order"], kind="stable").drop_duplicates(
        ["customer_id", "article_id"], keep="first"
    )
    merged["rank"] = merged.groupby("customer_id").cumcount() + 1
    merged = merged[merged["rank"] <= depth]
    return merged[["customer_id", "rank", "article_id", "source"]].reset_index(drop=True)


def baseline_recommendations(
    name: str, customers: np.ndarray, recent: pd.DataFrame, popular: list[str]
) -> pd.DataFrame:
    """Dispatch by baseline name (one of BASELINES)."""
    if name == "popular":
        return popular_recommendations(customers, popular)
    if name == "repurchase":
        fill = popular_recommendations(customers, popular)
        return repurchase_recommendations(customers, recent, fill, len(popular)).drop(
            columns="source"
        )
    raise ValueError(f"unknown baseline {name!r}; expected one of {BASELINES}")
