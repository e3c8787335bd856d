"""What the sources and the ranker read of the articles as of a day, against plain pandas
references over the same purchases, and the queries as RisingWave SQL."""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlglot
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlglot import exp

from recsys.store.sql_objects import load_objects
from recsys.strategy import articles as arts
from recsys.strategy.inputs import AGES_SQL, purchases_sql
from tests.fixtures_engine import insert_raw

DAY = date(2020, 9, 16)
ARTICLES = [f"07{n:08d}" for n in range(6)]
CUSTOMERS = [f"{c:064x}" for c in range(4)]

purchase_rows = st.lists(
    st.tuples(
        st.integers(0, 40),  # days before DAY (0: the day itself, never read)
        st.sampled_from(ARTICLES),
        st.sampled_from(CUSTOMERS),
        st.sampled_from([0.01, 0.02, 0.05]),
    ),
    max_size=40,
)
hypothesis_fixture = hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def load(engine, rows: list[tuple]) -> pd.DataFrame:  # noqa: ANN001
    """Write the purchases (one event each) and return them as dedup_transactions_t holds
    them: one row per (day, customer, article) with its units and highest price."""
    engine.execute("DELETE FROM transactions_raw")
    records = [
        {
            "event_id": f"e{n}",
            "t_dat": DAY - timedelta(days=before),
            "customer_id": customer,
            "article_id": article,
            "price": price,
            "sales_channel_id": 1 + n % 2,
        }
        for n, (before, article, customer, price) in enumerate(rows)
    ]
    if records:
        insert_raw(engine, "transactions", records)
    frame = pd.DataFrame(records, columns=["t_dat", "customer_id", "article_id", "price"])
    return (
        frame.groupby(["t_dat", "customer_id", "article_id"])
        .agg(units=("price", "size"), price=("price", "max"))
        .reset_index()
    )


@hypothesis_fixture
@given(rows=purchase_rows)
def test_article_stats_count_units_before_the_day(embedded_engine, rows) -> None:  # noqa: ANN001
    bought = load(embedded_engine, rows)
    stats = arts.ArticleStats.of(
        DAY, pd.DataFrame(columns=["article_id", "product_code", "department_no"]),
        embedded_engine.query(arts.article_stats_sql(DAY)),
    )  # fmt: skip
    before = bought[bought["t_dat"] < DAY]
    assert list(stats.ids) == sorted(before["article_id"].unique())
    for position, article in enumerate(stats.ids):
        mine = before[before["article_id"] == article]
        age = (DAY - mine["t_dat"]).map(lambda d: d.days)
        for days in arts.SALES_WINDOWS:
            assert stats.sold[days][position] == mine.loc[age <= days, "units"].sum()
        week_before = mine.loc[(age > 7) & (age <= 14), "units"].sum()
        assert stats.sold_week_before[position] == week_before
        prices = mine.loc[age <= arts.PRICE_DAYS, "price"]
        expected = prices.mean() if len(prices) else np.nan
        np.testing.assert_allclose(stats.price[position], expected, rtol=1e-6)
        assert stats.age_days[position] == age.max()


@hypothesis_fixture
@given(rows=purchase_rows)
def test_pairs_are_articles_bought_by_the_same_customers_within_days(embedded_engine, rows) -> None:  # noqa: ANN001
    bought = load(embedded_engine, rows)
    window = bought[(bought["t_dat"] < DAY)
                    & (bought["t_dat"] >= DAY - timedelta(arts.TOGETHER_DAYS))]  # fmt: skip
    pairs = window.merge(window, on="customer_id")
    gap = (pairs["t_dat_x"] - pairs["t_dat_y"]).map(lambda d: abs(d.days))
    pairs = pairs[(pairs["article_id_x"] != pairs["article_id_y"])
                  & (gap <= arts.TOGETHER_GAP_DAYS)]  # fmt: skip
    expected = pairs.groupby(["article_id_x", "article_id_y"])["customer_id"].nunique()
    found = embedded_engine.query(arts.together_sql(DAY))
    got = found.set_index(["article_id", "partner"])["customers"]
    assert len(ARTICLES) - 1 <= arts.PARTNERS  # every partner is kept in this space
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    stats = arts.ArticleStats.of(DAY, pd.DataFrame({"article_id": ARTICLES, "product_code":
                                 ["0700000"] * 6, "department_no": [1] * 6}),
                                 embedded_engine.query(arts.article_stats_sql(DAY)))  # fmt: skip
    together = arts.Together.of(found, stats)
    for position, article in enumerate(stats.ids):
        _, partners, customers = together.expand(np.array([position]))
        mine = sorted((-c, b) for (a, b), c in expected.items() if a == article)
        assert [(-c, stats.ids[p]) for p, c in zip(partners, customers, strict=True)] == mine


@hypothesis_fixture
@given(rows=purchase_rows, ages=st.lists(st.one_of(st.none(), st.integers(16, 90)),
                                         min_size=4, max_size=4))  # fmt: skip
def test_each_age_group_gets_its_most_bought_articles(embedded_engine, rows, ages) -> None:  # noqa: ANN001
    customers = [{"customer_id": c, "age": a} for c, a in zip(CUSTOMERS, ages, strict=True)]
    insert_raw(embedded_engine, "customers", customers)
    bought = load(embedded_engine, rows)
    week = bought[(bought["t_dat"] < DAY) & (bought["t_dat"] >= DAY - timedelta(7))]
    age_of = dict(zip(CUSTOMERS, ages, strict=True))
    known = [np.nan if age_of[c] is None else age_of[c] for c in week["customer_id"]]
    week = week.assign(group=arts.age_groups(np.array(known, dtype=float)))
    popular = arts.AgePopular.read(embedded_engine, DAY, depth=3)
    for group in range(arts.AGE_GROUPS):
        units = week[week["group"] == group].groupby("article_id")["units"].sum()
        ranked = sorted(units.items(), key=lambda item: (-item[1], item[0]))[:3]
        listed = [a for a in popular.articles[group] if a is not None]
        assert listed == [a for a, _ in ranked]
        assert list(popular.units[group, : len(listed)]) == [u for _, u in ranked]


@hypothesis_settings(deadline=None)  # an in-memory DuckDB per example: slow on a busy machine
@given(st.lists(st.one_of(st.none(), st.integers(0, 120)), max_size=30))
def test_age_groups_in_python_and_sql_agree(ages: list[int | None]) -> None:
    import duckdb

    with duckdb.connect() as con:
        con.execute("CREATE TABLE people (age INTEGER)")
        if ages:
            con.executemany("INSERT INTO people VALUES (?)", [[a] for a in ages])
        in_sql = [
            g for (g,) in con.execute(f"SELECT {arts.age_group_sql()} FROM people").fetchall()
        ]
    in_python = arts.age_groups(np.array([np.nan if a is None else a for a in ages], dtype=float))
    assert in_sql == in_python.tolist()
    assert set(in_python.tolist()) <= set(range(arts.AGE_GROUPS))


def test_positions_know_every_article_of_the_day_and_nothing_else() -> None:
    stats = arts.ArticleStats.of(
        DAY,
        pd.DataFrame({"article_id": ["b", "a"], "product_code": ["0100", None],
                      "department_no": [3, 4]}),
        pd.DataFrame({"article_id": ["c"], "sold_1": [1], "sold_7": [1], "sold_28": [1],
                      "sold_week_before": [0], "price": [0.1], "first_sold": [DAY]}),
    )  # fmt: skip
    assert list(stats.ids) == ["a", "b", "c"]
    assert stats.positions(np.array(["c", None, "z", "a"], dtype=object)).tolist() == [2, -1, -1, 0]
    assert stats.product.tolist() == [-1, 100, -1] and stats.department.tolist() == [4, 3, -1]
    assert stats.sold[7].tolist() == [0, 0, 1] and np.isnan(stats.price[:2]).all()


FLOW_SQL = {
    "article stats": arts.article_stats_sql(DAY),
    "article codes": arts.ARTICLE_CODES_SQL,
    "bought together": arts.together_sql(DAY),
    "popular by age": arts.age_popular_sql(DAY, 100),
    "purchases": purchases_sql(DAY),
    "ages": AGES_SQL,
}


@pytest.mark.parametrize("sql", FLOW_SQL.values(), ids=FLOW_SQL.keys())
def test_the_sources_queries_are_risingwave_sql(sql: str) -> None:
    """Parses in RisingWave's dialect, reads only objects of `risingwave/`, and uses no
    named WINDOW clause and explicit NULLS order in every window (DuckDB and RisingWave
    order NULLs differently)."""
    tree = sqlglot.parse_one(sql, read="risingwave")
    aliases = {s.alias for s in tree.find_all(exp.Subquery, exp.CTE)}
    tables = {t.name for t in tree.find_all(exp.Table)} - aliases
    assert tables and tables <= {obj.name for obj in load_objects()}
    assert not re.search(r"\bWINDOW\b", sql)
    for window in re.findall(r"OVER \((.*?)\)", sql, flags=re.S):
        assert window.count("NULLS") == window.count(",") + 1
