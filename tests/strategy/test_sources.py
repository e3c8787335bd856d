"""The customers' purchases and the candidate sources, without the engine: each against a
plain-Python statement of its rule over random batches."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.strategy import articles as arts
from recsys.strategy import sources
from recsys.strategy.inputs import REPURCHASE_WINDOW_DAYS, Customers, Day, Purchases

DAY = date(2020, 9, 16)
ARTICLES = [f"07{n:08d}" for n in range(8)]
PRODUCTS = ["0700000", "0700000", "0700001", "0700001", "0700001", "0700002", None, "0700003"]
IDS = np.array(["c0", "c1", "c2"], dtype=object)

rows = st.lists(
    st.tuples(
        st.sampled_from(["c0", "c1", "c2", "stranger"]),
        st.sampled_from(ARTICLES),
        st.integers(1, 60),  # days before DAY
        st.integers(1, 3),  # units
        st.integers(0, 3),  # window units (0: before the window)
    ),
    max_size=25,
    unique_by=lambda r: (r[0], r[1]),
)


def purchases_of(bought: list[tuple]) -> Purchases:
    frame = pd.DataFrame(bought, columns=["customer", "article", "before", "units", "window"])
    return Purchases.of(
        IDS,
        frame["customer"].to_numpy(dtype=object),
        frame["article"].to_numpy(dtype=object),
        (DAY.toordinal() - frame["before"]).to_numpy(dtype="int64"),
        frame["units"].to_numpy(),
        frame["window"].to_numpy(),
        np.zeros(len(frame)),
    )


def mine(bought: list[tuple], customer: str) -> list[tuple]:
    return [r for r in bought if r[0] == customer]


@settings(max_examples=60, deadline=None)
@given(bought=rows)
def test_purchases_keep_each_customers_rows_and_order_the_window(bought: list[tuple]) -> None:
    purchases = purchases_of(bought)
    window = purchases.repurchase_window()
    for row, customer in enumerate(IDS):
        span = slice(purchases.offsets[row], purchases.offsets[row + 1])
        entries = zip(purchases.articles[span], purchases.units[span], strict=True)
        assert sorted(entries) == sorted((r[1], r[3]) for r in mine(bought, customer))
        inside = [r for r in mine(bought, customer) if r[4] > 0]
        expected = [r[1] for r in sorted(inside, key=lambda r: (r[2], -r[4], r[1]))]
        assert list(window.values[window.offsets[row] : window.offsets[row + 1]]) == expected
    reversed_rows = np.array([2, 0])
    subset = purchases.subset(reversed_rows)
    for new, old in enumerate(reversed_rows):
        a = slice(subset.offsets[new], subset.offsets[new + 1])
        b = slice(purchases.offsets[old], purchases.offsets[old + 1])
        assert list(subset.articles[a]) == list(purchases.articles[b])
        assert list(subset.last_day[a]) == list(purchases.last_day[b])


def a_day(pairs: list[tuple[str, str, int]], sold_28: list[int]) -> Day:
    codes = pd.DataFrame({"article_id": ARTICLES, "product_code": PRODUCTS,
                          "department_no": [1, 1, 2, 2, 2, 3, 3, 4]})  # fmt: skip
    sales = pd.DataFrame({"article_id": ARTICLES, "sold_1": 0, "sold_7": range(8),
                          "sold_28": sold_28, "sold_week_before": 0, "price": 0.01,
                          "first_sold": DAY - timedelta(30)})  # fmt: skip
    stats = arts.ArticleStats.of(DAY, codes, sales)
    frame = pd.DataFrame(pairs, columns=["article_id", "partner", "customers"])
    together = arts.Together.of(frame.drop_duplicates(["article_id", "partner"]), stats)
    popular = arts.AgePopular.of(
        pd.DataFrame({"age_group": [0, 2, 2], "article_id": ARTICLES[:3], "bought": [5, 9, 4]}),
        depth=4,
    )
    return Day(DAY, np.array(ARTICLES, dtype=object), None, stats, together, popular)


pairs = st.lists(
    st.tuples(st.sampled_from(ARTICLES), st.sampled_from(ARTICLES), st.integers(1, 9)).filter(
        lambda p: p[0] != p[1]
    ),
    max_size=20,
)


def listed(lists, row: int) -> list:  # noqa: ANN001
    return [a for a in lists.articles[row] if a is not None]


@settings(max_examples=60, deadline=None)
@given(bought=rows, links=pairs, depth=st.integers(1, 8))
def test_bought_together_sums_the_partners_of_the_recent_articles(
    bought: list[tuple], links: list[tuple], depth: int
) -> None:
    day = a_day(links, [1] * 8)
    customers = Customers.of(IDS, np.zeros(3, bool), purchases_of(bought), np.full(3, np.nan))
    lists = sources.bought_together(customers, day, depth)
    kept = {(a, b): c for a, b, c in reversed(links)}  # the first row of a pair is kept
    for row, customer in enumerate(IDS):
        strength: dict[str, float] = {}
        for _, article, _, _, window in mine(bought, customer):
            for (a, b), c in kept.items():
                if a == article and window > 0:
                    strength[b] = strength.get(b, 0) + c
        expected = sorted(strength, key=lambda b: (-strength[b], b))[:depth]
        assert listed(lists, row) == expected
        assert list(lists.scores[row, : len(expected)]) == [strength[b] for b in expected]


@settings(max_examples=60, deadline=None)
@given(bought=rows, sold=st.lists(st.integers(0, 2), min_size=8, max_size=8))
def test_same_product_gives_the_other_articles_of_the_products_bought(
    bought: list[tuple], sold: list[int]
) -> None:
    day = a_day([], sold)
    customers = Customers.of(IDS, np.zeros(3, bool), purchases_of(bought), np.full(3, np.nan))
    lists = sources.same_product(customers, day, 8)
    for row, customer in enumerate(IDS):
        own = {r[1]: r[2] for r in mine(bought, customer)}
        newest: dict[str, int] = {}  # article -> days since its product was last bought
        for article, before in own.items():
            product = PRODUCTS[ARTICLES.index(article)]
            for n, (other, code) in enumerate(zip(ARTICLES, PRODUCTS, strict=True)):
                if code == product and code is not None and other not in own and sold[n]:
                    newest[other] = min(newest.get(other, 99), before)
        expected = sorted(newest, key=lambda a: (newest[a], -ARTICLES.index(a), a))
        assert listed(lists, row) == expected


def test_popular_by_age_follows_the_customers_age_group() -> None:
    day = a_day([], [1] * 8)
    ages = np.array([np.nan, 30.0, 80.0])
    customers = Customers.of(IDS, np.zeros(3, bool), purchases_of([]), ages)
    lists = sources.age_popular(customers, day, 3)
    assert listed(lists, 0) == [ARTICLES[0]] and listed(lists, 1) == ARTICLES[1:3]
    assert listed(lists, 2) == [] and list(lists.scores[1, :2]) == [9, 4]
    assert set(lists.sources[1, :2]) == {"popular_by_age"} and lists.sources[1, 2] is None


def test_a_purchase_before_the_window_is_history_but_not_a_repurchase() -> None:
    before_window = REPURCHASE_WINDOW_DAYS + 1
    purchases = purchases_of([("c0", ARTICLES[0], before_window, 2, 0),
                              ("c0", ARTICLES[1], 3, 1, 1)])  # fmt: skip
    customers = Customers.of(IDS, np.zeros(3, bool), purchases, np.full(3, np.nan))
    assert list(customers.history.values) == [ARTICLES[1]]
    assert list(purchases.units[: purchases.offsets[1]]) == [2, 1]
