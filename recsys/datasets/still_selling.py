"""How much of what customers bought before is still on sale: the article life-cycle statistic.

Real fashion articles launch, sell for weeks or months and disappear, so an article a
customer bought long ago is much less likely to sell in the test week than one bought
recently. Measured on real H&M rows (issue 13): of the articles ~1,400 customers bought
at any time before the last week, 31% sold to anyone in that week; of those they bought
in the 90 days before it, 79% (a ratio of 2.5). Data where the ratio is near 1 never
punishes a model for recommending long-gone articles. One function computes it, for the
generator's tests, its summary line and real files alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SAMPLE_CUSTOMERS = 1_400
TEST_DAYS = 7
RECENT_DAYS = 90


@dataclass(frozen=True)
class StillSelling:
    """Shares of a customer sample's earlier articles that anyone buys in the last week."""

    customers: int  # sampled customers (all with a purchase before the last week)
    earlier_articles: int  # distinct articles they bought at any time before the last week
    recent_articles: int  # ... in the RECENT_DAYS before it
    earlier_share: float  # share of earlier_articles that sell in the last week
    recent_share: float

    @property
    def ratio(self) -> float:
        return self.recent_share / self.earlier_share if self.earlier_share else float("nan")

    def __str__(self) -> str:
        return (
            f"still selling in the last week: {self.earlier_share:.2f} of the "
            f"{self.earlier_articles:,} articles {self.customers:,} customers bought before it, "
            f"{self.recent_share:.2f} of the {self.recent_articles:,} bought in its "
            f"{RECENT_DAYS} days before (ratio {self.ratio:.2f})"
        )


def still_selling(
    day: np.ndarray,
    customer: np.ndarray,
    article: np.ndarray,
    sample: int = SAMPLE_CUSTOMERS,
    seed: int = 0,
) -> StillSelling:
    """The statistic over purchase rows given as integer day, customer and article codes.

    The last week is the last TEST_DAYS days of data. The sample is drawn (seeded) from
    the sorted codes of the customers who bought before it, so the same rows give the same
    sample whatever their order. Articles sold in the last week are the whole market's.
    """
    cutoff = int(day.max()) - TEST_DAYS + 1
    before = day < cutoff
    if not before.any():
        raise ValueError("no purchases before the last week: the statistic needs history")
    known = np.unique(customer[before])
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(known, min(sample, len(known)), replace=False))
    mine = before & np.isin(customer, chosen)
    sold = np.unique(article[~before])
    earlier = np.unique(article[mine])
    recent = np.unique(article[mine & (day >= cutoff - RECENT_DAYS)])
    return StillSelling(
        customers=len(chosen),
        earlier_articles=len(earlier),
        recent_articles=len(recent),
        earlier_share=float(np.isin(earlier, sold).mean()),
        recent_share=float(np.isin(recent, sold).mean()) if len(recent) else float("nan"),
    )


def still_selling_frame(transactions: pd.DataFrame, **options) -> StillSelling:
    """The statistic over a transactions table (t_dat, customer_id, article_id)."""
    day = transactions["t_dat"].to_numpy().astype("datetime64[D]").astype(np.int64)
    customer = pd.factorize(transactions["customer_id"], sort=True)[0]
    article = pd.factorize(transactions["article_id"])[0]
    return still_selling(day, customer, article, **options)
