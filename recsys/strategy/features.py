"""The ranker's candidates and features: the union of the sources' lists per customer, and
one row of numbers per (customer, candidate) from the batch (`Customers`) and the day
(`Day`) only, so that the flow and the service compute the same rows.

Features (FEATURES names them, in the matrix's column order):

- per source, the candidate's rank in its list and the source's score (NaN: not there);
- `tower_score`: the two-tower model's inner product (NaN for customers it does not know);
- customer: age, units bought, distinct articles, days since the last purchase, share
  bought online;
- article: units over the last 1, 7 and 28 days, the week's trend against the week before
  and the day's against the week, mean price, days since its first sale;
- pair: units of it the customer bought, days since, the customer's other articles of
  its product code, their units in its department (and its share of their units), how
  strongly it is bought together with their recent articles, its units in their age group.

Nothing reads the purchases of the day or later: every input is as of the day
(tests/strategy/test_features.py removes the label week and checks the rows unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.strategy.articles import SALES_WINDOWS, age_groups
from recsys.strategy.inputs import Customers, Day
from recsys.strategy.lists import Lists
from recsys.strategy.sources import distinct_pairs, together_scores

SOURCES = ("repurchase", "two_tower", "bought_together", "same_product", "popular_by_age",
           "popular")  # fmt: skip
SCORED = ("two_tower", "bought_together", "same_product", "popular_by_age")
CUSTOMER_FEATURES = ("age", "units", "articles", "days_since_last", "online_share")
ARTICLE_FEATURES = (*(f"sold_{d}" for d in SALES_WINDOWS), "trend_week", "trend_day", "price",
                    "days_since_first_sale")  # fmt: skip
PAIR_FEATURES = ("bought_units", "days_since_bought", "same_product_articles",
                 "department_units", "department_share", "together", "age_group_units")  # fmt: skip
FEATURES = (
    *(f"{s}_rank" for s in SOURCES),
    *(f"{s}_score" for s in SCORED),
    "tower_score",
    *(f"customer_{f}" for f in CUSTOMER_FEATURES),
    *(f"article_{f}" for f in ARTICLE_FEATURES),
    *(f"pair_{f}" for f in PAIR_FEATURES),
)
TOWER_BLOCK = 262_144  # candidate rows whose inner products are taken at once


@dataclass(frozen=True, eq=False)
class Pool:
    """Each customer's candidates, best source rank first: `lists` (sources: the first
    source that had it) and, per source, the candidate's rank and score there."""

    lists: Lists
    ranks: dict[str, np.ndarray]  # source -> (n, depth) float32, NaN: not in its list
    scores: dict[str, np.ndarray]

    @property
    def present(self) -> np.ndarray:
        return self.lists.articles != None  # noqa: E711 - elementwise over an object array


def pool(sources: dict[str, Lists], depth: int) -> Pool:
    """The union of `sources`' lists, interleaved by rank (every source's first, then
    every source's second, ...), each article once (at its first place), cut to `depth`;
    with each source's rank and score of every candidate.

    One sort does it all: every listed (customer, article) pair is keyed by the customer
    and the article's code, the first place of each key in the interleaved order is its
    place in the union, and the sources that list it give their ranks and scores.
    """
    names = [s for s in SOURCES if s in sources]
    n, width = len(sources[names[0]]), max(sources[s].depth for s in names)
    articles, scores, labels = (
        _interleaved(sources, names, width, attribute)
        for attribute in ("articles", "scores", "sources")
    )
    codes = pd.factorize(articles)[0]
    there = np.flatnonzero(codes >= 0)  # flat interleaved places: row, rank, source
    per_row = width * len(names)
    row, place = there // per_row, there % per_row
    key = row * (int(codes.max(initial=0)) + 1) + codes[there]
    order = np.lexsort((place, key))
    key, row, place, there = key[order], row[order], place[order], there[order]
    first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
    group = np.cumsum(first) - 1
    source = place % len(names)
    ranks = np.full((int(first.sum()), len(names)), np.nan, dtype="float32")
    ranks[group, source] = place // len(names) + 1
    found = np.full(ranks.shape, np.nan, dtype="float32")
    found[group, source] = scores[there]
    heads = np.flatnonzero(first)  # each candidate at its first place, in the union's order
    heads = heads[np.lexsort((place[heads], row[heads]))]
    rows = row[heads]
    column = np.arange(len(heads)) - np.searchsorted(rows, rows)
    heads, cell = heads[column < depth], (rows[column < depth], column[column < depth])
    union = Lists.empty(n, depth)
    for target, values in ((union.articles, articles), (union.scores, scores),
                           (union.sources, labels)):  # fmt: skip
        target[cell] = values[there[heads]]
    return Pool(
        union,
        {name: _placed((n, depth), cell, ranks[group[heads], k]) for k, name in enumerate(names)},
        {name: _placed((n, depth), cell, found[group[heads], k]) for k, name in enumerate(names)},
    )


def _interleaved(sources: dict[str, Lists], names: list[str], width: int, attribute: str):  # noqa: ANN202
    """One attribute of the sources' lists in the interleaved order (row, rank, source),
    flat; lists shorter than `width` padded (None, NaN)."""
    first = getattr(sources[names[0]], attribute)
    out = np.full((len(first), width, len(names)), None if first.dtype == object else np.nan,
                  dtype=first.dtype)  # fmt: skip
    for k, name in enumerate(names):
        values = getattr(sources[name], attribute)
        out[:, : values.shape[1], k] = values
    return out.ravel()


def _placed(shape: tuple[int, int], cell: tuple, values: np.ndarray) -> np.ndarray:
    out = np.full(shape, np.nan, dtype="float32")
    out[cell] = values
    return out


def matrix(customers: Customers, day: Day, candidates: Pool, use_tower: np.ndarray) -> np.ndarray:
    """(candidate rows, FEATURES) float32: one row per present candidate of `candidates`,
    customer by customer in list order (`np.nonzero(candidates.present)`'s order).
    `use_tower` (bool per customer): whose two-tower score is a feature."""
    rows, columns = np.nonzero(candidates.present)
    articles = candidates.lists.articles[rows, columns]
    positions = day.articles.positions(articles)
    features = (
        *(candidates.ranks.get(s, _missing(candidates))[rows, columns] for s in SOURCES),
        *(candidates.scores.get(s, _missing(candidates))[rows, columns] for s in SCORED),
        tower_scores(customers, day, rows, articles, use_tower),
        *customer_features(customers, day)[:, rows],
        *article_features(day, positions),
        *pair_features(customers, day, rows, positions),
    )
    out = np.empty((len(rows), len(FEATURES)), dtype="float32")
    for k, values in enumerate(features):
        out[:, k] = values
    return out


def _missing(candidates: Pool) -> np.ndarray:
    return np.full(candidates.lists.articles.shape, np.nan, dtype="float32")


def tower_scores(
    customers: Customers, day: Day, rows: np.ndarray, articles: np.ndarray, use_tower: np.ndarray
) -> np.ndarray:
    """The query's inner product with each candidate's vector in the day's catalogue."""
    out = np.full(len(rows), np.nan, dtype="float32")
    if customers.queries is None or day.catalogue is None:
        return out
    vectors = day.catalogue.positions(articles)
    usable = np.flatnonzero(use_tower[rows] & (vectors >= 0))
    for start in range(0, len(usable), TOWER_BLOCK):
        block = usable[start : start + TOWER_BLOCK]
        queries = customers.queries[rows[block]]
        out[block] = np.einsum("ij,ij->i", queries, day.catalogue.vectors[vectors[block]])
    return out


def customer_features(customers: Customers, day: Day) -> np.ndarray:
    """(CUSTOMER_FEATURES, n) float64."""
    purchases = customers.purchases
    owner = purchases.owner
    n = len(customers)
    units = np.bincount(owner, weights=purchases.units, minlength=n)
    online = np.bincount(owner, weights=purchases.online, minlength=n)
    last = np.full(n, -1, dtype="int64")
    np.maximum.at(last, owner, purchases.last_day)
    since = np.where(last >= 0, day.day.toordinal() - last, np.nan)
    ages = customers.age if customers.age is not None else np.full(n, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(units > 0, online / units, np.nan)
    return np.vstack([ages, units, np.diff(purchases.offsets), since, share])


def article_features(day: Day, positions: np.ndarray) -> list[np.ndarray]:
    """ARTICLE_FEATURES of the articles at `positions` (NaN at -1)."""
    stats = day.articles
    known = positions >= 0
    at = np.maximum(positions, 0)

    def take(values: np.ndarray) -> np.ndarray:
        return np.where(known, values[at], np.nan)

    sold = [take(stats.sold[d]) for d in SALES_WINDOWS]
    week, day_units = take(stats.sold[7]), take(stats.sold[1])
    trend_week = week / (take(stats.sold_week_before) + 1)
    trend_day = 7 * day_units / (week + 1)
    return [*sold, trend_week, trend_day, take(stats.price), take(stats.age_days)]


def pair_features(
    customers: Customers, day: Day, rows: np.ndarray, positions: np.ndarray
) -> list[np.ndarray]:
    """PAIR_FEATURES of each (customer row, article position)."""
    purchases, stats = customers.purchases, day.articles
    width = len(stats) + 1
    owner = purchases.owner
    own = stats.positions(purchases.articles)
    keys = rows.astype("int64") * width + positions
    mine = owner.astype("int64") * width + own
    bought = _lookup(mine[own >= 0], purchases.units[own >= 0], keys)
    last = _lookup(mine[own >= 0], purchases.last_day[own >= 0], keys)
    since = np.where(bought > 0, day.day.toordinal() - last, np.nan)
    same = _by_code(owner, own, stats.product, np.ones(len(own)), rows, positions) - (bought > 0)
    department = _by_code(owner, own, stats.department, purchases.units, rows, positions)
    total = np.bincount(owner, weights=purchases.units, minlength=len(customers))[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, department / total, np.nan)
    t_rows, t_items, t_strength = together_scores(customers, day)
    together = _lookup(t_rows * width + t_items, t_strength, keys)
    return [bought, since, same, department, share, together,
            _age_group_units(customers, day, rows, positions)]  # fmt: skip


def _lookup(
    keys: np.ndarray, values: np.ndarray, wanted: np.ndarray, missing: float = 0.0
) -> np.ndarray:
    """values at `wanted` keys (distinct `keys`), `missing` where absent."""
    keys, values = np.asarray(keys, dtype="int64"), np.asarray(values, dtype="float64")
    if not len(keys):
        return np.full(len(wanted), missing)
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    slot = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[slot] == wanted, values[slot], missing)


def _by_code(
    owner: np.ndarray,
    own: np.ndarray,
    code: np.ndarray,
    weights: np.ndarray,
    rows: np.ndarray,
    positions: np.ndarray,
) -> np.ndarray:
    """The sum of `weights` over the customer's purchases whose article has the same
    `code` (product or department number) as each candidate; 0 for an unknown code."""
    own_code = np.where(own >= 0, code[np.maximum(own, 0)], -1)
    wanted = np.where(positions >= 0, code[np.maximum(positions, 0)], -1)
    width = int(code.max(initial=0)) + 1
    keep = own_code >= 0
    weights = np.asarray(weights, dtype="float64")[keep]
    grouped_rows, codes, sums = distinct_pairs(owner[keep], own_code[keep], weights, width)
    found = _lookup(grouped_rows * width + codes, sums, rows.astype("int64") * width + wanted)
    return np.where(wanted >= 0, found, 0.0)


def _age_group_units(
    customers: Customers, day: Day, rows: np.ndarray, positions: np.ndarray
) -> np.ndarray:
    """The candidate's units in the customer's age group last week (0 beyond the group's
    kept list)."""
    ages = customers.age if customers.age is not None else np.full(len(customers), np.nan)
    listed = day.age_popular.articles
    group_positions = day.articles.positions(listed)
    groups = np.repeat(np.arange(listed.shape[0]), listed.shape[1])
    width = len(day.articles) + 1
    there = group_positions.ravel() >= 0
    keys = groups[there] * width + group_positions.ravel()[there]
    wanted = age_groups(ages)[rows].astype("int64") * width + positions
    return _lookup(keys, day.age_popular.units.ravel()[there], wanted)


def ranked(candidates: Pool, scores: np.ndarray, depth: int) -> Lists:
    """The candidates in the order of `scores` (one per present candidate, `matrix`'s
    order), best first, cut to `depth`; ties keep the pool's order."""
    shape = candidates.lists.articles.shape
    grid = np.full(shape, -np.inf)
    grid[candidates.present] = scores
    order = np.argsort(-grid, axis=1, kind="stable")[:, :depth]
    out = Lists.empty(shape[0], depth)
    width = order.shape[1]
    taken = np.take_along_axis(grid, order, axis=1)
    keep = np.isfinite(taken)
    for target, source in (
        (out.articles, candidates.lists.articles),
        (out.sources, candidates.lists.sources),
    ):
        target[:, :width] = np.where(keep, np.take_along_axis(source, order, axis=1), None)
    out.scores[:, :width] = np.where(keep, taken, np.nan)
    return out
