"""The candidate sources that rank from the day's articles and a customer's purchases:
articles bought together with theirs, other articles of the product codes they bought,
and their age group's most bought. Each returns `Lists` (scores: the source's own), and
`methods.py` registers each as a method.

Everything is vectorised over the batch: the flow ranks 100,000 customers at a time, the
service one, with the same code.
"""

from __future__ import annotations

import numpy as np

from recsys.strategy.articles import age_groups
from recsys.strategy.inputs import Customers, Day
from recsys.strategy.lists import Lists

SAME_PRODUCT_DAYS = 28  # a product code's other articles must have sold in these days


def top_per_row(
    n: int,
    rows: np.ndarray,
    items: np.ndarray,
    keys: np.ndarray,
    scores: np.ndarray,
    depth: int,
    ids: np.ndarray,
    source: str,
) -> Lists:
    """Per row of the batch, its `items` (article positions, at most once per row) by
    `keys` descending, ties by position (= by article id): the first `depth` as Lists."""
    order = np.lexsort((items, -np.asarray(keys, dtype="float64"), rows))
    rows, items, scores = rows[order], items[order], np.asarray(scores, dtype="float64")[order]
    starts = np.searchsorted(rows, np.arange(n))
    place = np.arange(len(rows)) - starts[rows]
    keep = place < depth
    lists = Lists.empty(n, depth)
    lists.articles[rows[keep], place[keep]] = ids[items[keep]]
    lists.scores[rows[keep], place[keep]] = scores[keep]
    lists.sources[rows[keep], place[keep]] = source
    return lists


def distinct_pairs(
    rows: np.ndarray, items: np.ndarray, values: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, item, sum of values) once per distinct (row, item); items < `width`."""
    keys = rows.astype("int64") * width + items
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(unique))
    return unique // width, unique % width, sums


def together_scores(customers: Customers, day: Day) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, partner position, strength): the articles bought together with the customer's
    articles of the repurchase window, strength summed over those articles (customers who
    bought both)."""
    purchases = customers.purchases
    seeds = np.flatnonzero(purchases.window_units > 0)
    positions = day.articles.positions(purchases.articles[seeds])
    which, partner, strength = day.together.expand(positions)
    rows = purchases.owner[seeds][which]
    return distinct_pairs(rows, partner, strength, len(day.articles))


def bought_together(customers: Customers, day: Day, depth: int) -> Lists:
    """The partners of the customer's recent articles, most shared customers first."""
    rows, partner, strength = together_scores(customers, day)
    ids = day.articles.ids
    return top_per_row(len(customers), rows, partner, strength, strength, depth, ids,
                       "bought_together")  # fmt: skip


def same_product(customers: Customers, day: Day, depth: int) -> Lists:
    """The other articles of the product codes the customer bought (other colours and
    sizes of the same garment) that sold in the last SAME_PRODUCT_DAYS: the most recently
    bought product's first, each product's by last week's units."""
    purchases, articles = customers.purchases, day.articles
    positions = articles.positions(purchases.articles)
    known = positions >= 0
    product = np.where(known, articles.product[np.maximum(positions, 0)], -1)
    members = articles.product_members(SAME_PRODUCT_DAYS)
    owner = purchases.owner
    entry, member = members.expand(np.where(product >= 0, product, -1))
    rows, items = owner[entry], member
    recency = purchases.last_day[entry].astype("float64")
    sold = articles.sold[7][items]
    own = _bought(rows, items, owner[known], positions[known], len(articles))
    rows, items, recency, sold = rows[~own], items[~own], recency[~own], sold[~own]
    # one row per (customer, article): its most recent product purchase, then its units
    key = recency * 1e7 + sold  # units of a week stay far below 1e7
    order = np.lexsort((-key, items, rows))
    pairs = rows[order] * len(articles) + items[order]
    pick = order[np.r_[True, pairs[1:] != pairs[:-1]]] if len(order) else order
    return top_per_row(len(customers), rows[pick], items[pick], key[pick], sold[pick], depth,
                       articles.ids, "same_product")  # fmt: skip


def _bought(
    rows: np.ndarray, items: np.ndarray, own_rows: np.ndarray, own_items: np.ndarray, width: int
) -> np.ndarray:
    """Whether each (row, item) is one of the customer's own purchases."""
    own = np.unique(own_rows.astype("int64") * width + own_items)
    return np.isin(rows.astype("int64") * width + items, own, assume_unique=False)


def age_popular(customers: Customers, day: Day, depth: int) -> Lists:
    """The most bought articles of the customer's age group over the last week."""
    ages = customers.age if customers.age is not None else np.full(len(customers), np.nan)
    groups = age_groups(ages)
    shown = day.age_popular.articles[groups, :depth]
    lists = Lists.empty(len(customers), depth)
    lists.articles[:, : shown.shape[1]] = shown
    lists.scores[:, : shown.shape[1]] = day.age_popular.units[groups, :depth]
    lists.sources[:, : shown.shape[1]] = np.where(shown == None, None, "popular_by_age")  # noqa: E711
    return lists
