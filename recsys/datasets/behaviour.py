"""How buyers behave week by week: basket size, returning buyers, repurchases, sibling articles.

Six statistics per buyer-week, pooled over the last WEEKS 7-day weeks of data (weeks end
on the data's last day). A buyer-week is one customer with at least one purchase that
week; its articles are the distinct (customer, article) pairs bought that week.
"Before" is any day before the week's first day; "recent" the RECENT_WEEKS (28 days)
before it. Measured on real H&M histories, they say how often people come back and how
often they buy again what they already had: a generator that makes repurchases too common
flatters the repurchase baseline and hides what a model adds (issue 23).

The statistics are computed over a seeded random sample of the customers who bought
anything (as the real figures were: a random 0.1 % customer sample), so the full 31.8 M
rows need only the sample's rows in memory; a small data set is used whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

WEEKS = 26  # the last 26 weeks of data, pooled
RECENT_WEEKS = 4  # "in the 4 weeks (28 days) before the week"
SAMPLE_CUSTOMERS = 20_000  # about 1.5 % of the full scale's customers; demo is used whole
NEVER = np.iinfo(np.int64).max  # weeks since a purchase that never happened


@dataclass(frozen=True)
class Behaviour:
    """The six per-buyer-week statistics, and how many buyer-weeks they pool."""

    articles_per_buyer_week: float  # distinct articles a buyer buys in a week
    recent_buyers: float  # share of buyer-weeks whose buyer bought in the 4 weeks before
    known_buyers: float  # ... who bought anything any time before
    repurchase_share: float  # share of a week's (buyer, article) pairs bought before
    recent_repurchase_share: float  # ... bought in the 4 weeks before
    same_product_share: float  # ... not bought before, but another article of its product was
    buyer_weeks: int

    def __str__(self) -> str:
        return (
            f"per buyer-week ({self.buyer_weeks:,} buyer-weeks): "
            f"{self.articles_per_buyer_week:.2f} articles, "
            f"{self.recent_buyers:.4f} bought in the 4 weeks before, "
            f"{self.known_buyers:.4f} seen before; of their articles "
            f"{self.repurchase_share:.4f} bought before "
            f"({self.recent_repurchase_share:.4f} in the 4 weeks before), "
            f"{self.same_product_share:.4f} another article of a product bought"
        )

    @classmethod
    def parse(cls, text: str) -> Behaviour | None:
        """The statistics from the first line `str()` wrote in `text` (a child's output)."""
        found = LINE.search(text)
        if found is None:
            return None
        buyer_weeks, *values = found.groups()
        return cls(*(float(v) for v in values), int(buyer_weeks.replace(",", "")))

    def relative_gaps(self, reference: Behaviour) -> dict[str, float]:
        """|self / reference - 1| for each of the six statistics."""
        return {
            name: abs(getattr(self, name) / getattr(reference, name) - 1) for name in STATISTICS
        }


STATISTICS = [f.name for f in fields(Behaviour)][:6]
NUMBER = r"([\d.]+)"
LINE = re.compile(
    rf"per buyer-week \(([\d,]+) buyer-weeks\): {NUMBER} articles, {NUMBER} bought in the 4 "
    rf"weeks before, {NUMBER} seen before; of their articles {NUMBER} bought before "
    rf"\({NUMBER} in the 4 weeks before\), {NUMBER} another article"
)
HEADERS = [
    "articles per buyer-week",
    "buyers who bought in the 4 weeks before",
    "buyers seen before",
    "articles bought before",
    "articles bought in the 4 weeks before",
    "other article of a product bought",
]

# Real H&M: 26 weeks to 2020-09-22, a random 0.1 % customer sample with full histories
# (issue 23's table; ../shared/notes/stack-facts.md, "Real H&M behaviour per buyer-week").
REAL_HM = Behaviour(
    articles_per_buyer_week=3.8,
    recent_buyers=0.45,
    known_buyers=0.91,
    repurchase_share=0.032,
    recent_repurchase_share=0.019,
    same_product_share=0.044,
    buyer_weeks=1_981,
)


def behaviour(
    day: np.ndarray,
    customer: np.ndarray,
    article: np.ndarray,
    product: np.ndarray,
    sample: int = SAMPLE_CUSTOMERS,
    seed: int = 0,
) -> Behaviour:
    """The statistics over purchase rows given as integer day, customer and article codes.

    `product[a]` is the product code of article code `a` (any integers). The sample is
    drawn (seeded) from the sorted codes of the customers who bought, so the same rows
    give the same sample whatever their order.
    """
    buyers = np.unique(customer)
    if len(buyers) > sample:
        chosen = np.sort(np.random.default_rng(seed).choice(buyers, sample, replace=False))
        mine = np.isin(customer, chosen)
        day, customer, article = day[mine], customer[mine], article[mine]
    customer = np.unique(customer, return_inverse=True)[1].astype(np.int64)
    product_code = np.unique(product, return_inverse=True)[1].astype(np.int64)
    n_articles, n_products = len(product_code), int(product_code.max()) + 1
    week = (int(day.max()) - day.astype(np.int64)) // 7  # 0 = the last week
    n_weeks = int(week.max()) + 1

    _, buyer_week, buyer_gap = _distinct_with_gap(customer, week, n_weeks)
    pair_key = customer * n_articles + article
    pairs, pair_week, pair_gap = _distinct_with_gap(pair_key, week, n_weeks)
    product_key = customer * n_products + product_code[article]
    products, _, product_gap = _distinct_with_gap(product_key, week, n_weeks)
    # the (customer, product, week) of each distinct (customer, article, week)
    pair_customer, pair_article = np.divmod(pairs // n_weeks, n_articles)
    pair_product = pair_customer * n_products + product_code[pair_article]
    found = products.searchsorted(pair_product * n_weeks + pairs % n_weeks)
    product_before = product_gap[found] < NEVER

    buyer_weeks = buyer_week < WEEKS
    if not buyer_weeks.any():
        raise ValueError("no purchases: the statistics need rows")
    counted = pair_week < WEEKS
    pair_gap, product_before = pair_gap[counted], product_before[counted]
    return Behaviour(
        articles_per_buyer_week=float(counted.sum() / buyer_weeks.sum()),
        recent_buyers=float((buyer_gap[buyer_weeks] <= RECENT_WEEKS).mean()),
        known_buyers=float((buyer_gap[buyer_weeks] < NEVER).mean()),
        repurchase_share=float((pair_gap < NEVER).mean()),
        recent_repurchase_share=float((pair_gap <= RECENT_WEEKS).mean()),
        same_product_share=float(((pair_gap == NEVER) & product_before).mean()),
        buyer_weeks=int(buyer_weeks.sum()),
    )


def _distinct_with_gap(
    key: np.ndarray, week: np.ndarray, n_weeks: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (key, week) pairs (as sorted combined codes), their week, and the gap.

    The gap is the number of weeks back to the key's previous week with a purchase, NEVER
    when there is none. Within a key the combined codes run from the oldest week on.
    """
    combined = np.unique(key * n_weeks + (n_weeks - 1 - week))
    same_key = combined[1:] // n_weeks == combined[:-1] // n_weeks
    age = n_weeks - 1 - combined % n_weeks
    gap = np.full(len(combined), NEVER, dtype=np.int64)
    gap[1:][same_key] = (age[:-1] - age[1:])[same_key]
    return combined, age, gap


def behaviour_frame(transactions: pd.DataFrame, articles: pd.DataFrame, **options) -> Behaviour:
    """The statistics over a transactions table (t_dat, customer_id, article_id) and the
    articles table (article_id, product_code)."""
    day = transactions["t_dat"].to_numpy().astype("datetime64[D]").astype(np.int64)
    customer = pd.factorize(transactions["customer_id"], sort=True)[0]
    article = pd.Index(articles["article_id"]).get_indexer(transactions["article_id"])
    if (article < 0).any():
        raise ValueError("transactions name articles missing from the articles table")
    product = pd.factorize(articles["product_code"])[0]
    return behaviour(day, customer, article, product, **options)


def format_row(label: str, stats: Behaviour) -> str:
    """One Markdown table row under TABLE_HEADER: the six statistics of `stats`."""
    values = [f"{stats.articles_per_buyer_week:.2f}"] + [
        f"{getattr(stats, name):.3f}" for name in STATISTICS[1:]
    ]
    return f"| {label} | {stats.buyer_weeks:,} | " + " | ".join(values) + " |"


TABLE_HEADER = (
    "| data | buyer-weeks | " + " | ".join(HEADERS) + " |\n|---|" + "---:|" * (len(HEADERS) + 1)
)
