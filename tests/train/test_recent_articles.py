"""The query tower's recent articles: what training rows, scoring and the service read.

Each is checked against a plain-Python statement of the definition on random histories:
a customer's distinct articles, newest first (same day: by id), from the purchases
strictly before the day in question, looked back over their last LOOKBACK_DAYS purchase
days; and those are the first rows of customer_recent_articles_t.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlglot
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlglot import exp

from recsys.store.sql_objects import load_objects
from recsys.train import dataset, embed
from recsys.train.features import RecentSales
from recsys.train.recent_articles import (
    CUSTOMER_SLICES,
    LOOKBACK_DAYS,
    NO_ARTICLE,
    RECENT_ARTICLES,
    RECENT_COLUMNS,
    RECENT_TEXT,
    as_of_sql,
    by_day_sql,
    customer_slices,
    slots,
)
from tests.fixtures_engine import insert_raw

START = date(2020, 9, 1)
ARTICLES = [f"07{n:08d}" for n in range(7)]
CUSTOMERS = [f"{n:064x}" for n in range(3)]

# (day offset, article, customer): few articles and days, so repeats and ties are common
purchases = st.lists(
    st.tuples(st.integers(0, 20), st.sampled_from(ARTICLES), st.sampled_from(CUSTOMERS)),
    min_size=1,
    max_size=60,
)
examples = hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def expected(bought: pd.DataFrame, customer: str, before: date) -> list[str]:
    """The definition: the customer's distinct articles of their last LOOKBACK_DAYS
    purchase days before `before`, newest first, same day by id; the first N."""
    mine = bought[(bought["customer_id"] == customer) & (bought["t_dat"] < before)]
    days = sorted(set(mine["t_dat"]), reverse=True)[:LOOKBACK_DAYS]
    ordered = [a for day in days for a in sorted(set(mine.loc[mine["t_dat"] == day, "article_id"]))]
    return list(dict.fromkeys(ordered))[:RECENT_ARTICLES]


def view_rows(bought: pd.DataFrame, customer: str) -> list[str]:
    """customer_recent_articles_t's definition over all purchases: latest day first."""
    mine = bought[bought["customer_id"] == customer].groupby("article_id")["t_dat"].max()
    return [a for a, _ in sorted(mine.items(), key=lambda item: (-item[1].toordinal(), item[0]))]


def filled(text: str | None) -> list[str]:
    return [value[0] for value in slots([text]).values() if value[0] != NO_ARTICLE]


def load(engine, bought: list[tuple[int, str, str]]) -> pd.DataFrame:  # noqa: ANN001
    engine.execute("DELETE FROM transactions_raw")
    rows = [
        {
            "event_id": f"e{n}",
            "t_dat": START + timedelta(days=day),
            "customer_id": customer,
            "article_id": article,
            "price": 0.05,
            "sales_channel_id": 2,
        }
        for n, (day, article, customer) in enumerate(bought)
    ]
    insert_raw(engine, "transactions", rows)
    return pd.DataFrame(rows)


@examples
@given(bought=purchases)
def test_each_purchase_day_sees_only_the_days_before_it(embedded_engine, bought) -> None:  # noqa: ANN001
    """by_day_sql: a training row's slots come from strictly earlier days (never its own
    day or later), follow the definition, and are the first of the view's rows as they
    stood before that day."""
    frame = load(embedded_engine, bought)
    got = embedded_engine.query(by_day_sql())
    assert len(got) == len(frame[["customer_id", "t_dat"]].drop_duplicates())
    for row in got.itertuples():
        day = row.t_dat.date()
        recent = filled(getattr(row, RECENT_TEXT))
        assert recent == expected(frame, row.customer_id, day)
        earlier = frame[frame["t_dat"] < day]
        assert set(recent) <= set(
            earlier.loc[earlier["customer_id"] == row.customer_id, "article_id"]
        )
        assert recent == view_rows(earlier, row.customer_id)[: len(recent)]


@examples
@given(bought=purchases, day=st.integers(0, 22))
def test_scoring_as_of_a_day_reads_the_purchases_before_it(embedded_engine, bought, day) -> None:  # noqa: ANN001
    """as_of_sql: every customer who bought before the day, with the definition's slots;
    as of the day after the newest, the first rows of customer_recent_articles_t."""
    frame = load(embedded_engine, bought)
    when = START + timedelta(days=day)
    got = embedded_engine.query(as_of_sql(when)).set_index("customer_id")[RECENT_TEXT]
    assert set(got.index) == set(frame.loc[frame["t_dat"] < when, "customer_id"])
    for customer, text in got.items():
        assert filled(text) == expected(frame, customer, when)
    view = embedded_engine.query(
        "SELECT customer_id, article_id FROM customer_recent_articles_t "
        "ORDER BY customer_id, last_t_dat DESC, article_id"
    )
    after = max(frame["t_dat"]) + timedelta(days=1)
    latest = embedded_engine.query(as_of_sql(after)).set_index("customer_id")[RECENT_TEXT]
    for customer, rows in view.groupby("customer_id"):
        recent = filled(latest[customer])
        assert recent == rows["article_id"].tolist()[: len(recent)]
        assert recent == view_rows(frame, customer)[: len(recent)]


days = st.lists(st.lists(st.sampled_from(ARTICLES), min_size=1), max_size=6)


@given(histories=st.lists(st.none() | days, max_size=5))
def test_slots_keep_the_first_distinct_articles_in_order(histories: list) -> None:
    """Days newest first, each day's articles by id; each article at its first place."""
    texts = [None if h is None else ",".join(" ".join(day) for day in h) for h in histories]
    out = slots(texts)
    for row, history in enumerate(histories):
        ordered = [a for day in history or [] for a in sorted(day)]
        first = list(dict.fromkeys(ordered))[:RECENT_ARTICLES]
        padded = first + [NO_ARTICLE] * (RECENT_ARTICLES - len(first))
        assert [out[column][row] for column in RECENT_COLUMNS] == padded


def test_training_rows_never_see_their_own_day(embedded_engine, tmp_path: Path) -> None:  # noqa: ANN001
    """The prepared parts training reads: each row's slots are articles its customer
    bought before the row's day (each article here is bought once, so it names its
    row's day); a customer's first purchase day has none."""
    cutoff = START + timedelta(days=10)
    bought = [(day, f"07{day:04d}{n:04d}", CUSTOMERS[n % 3]) for day in range(12) for n in range(4)]
    frame = load(embedded_engine, bought)
    embedded_engine.set_training_settings(min_purchases=1, cutoff=cutoff)
    sales = RecentSales.from_rows(frame, pd.Timestamp(cutoff))
    parts = dataset.write_training_parts(embedded_engine, sales, tmp_path, part_rows=10)
    rows = pd.concat(pq.read_table(p).to_pandas() for p in parts.orders[0])
    assert len(rows) == (frame["t_dat"] < cutoff).sum() == 40
    day_of = frame.set_index("article_id")["t_dat"]
    for row in rows.itertuples():
        day = day_of[row.article_id]
        recent = [getattr(row, c) for c in RECENT_COLUMNS if getattr(row, c) != NO_ARTICLE]
        assert all(day_of[article] < day for article in recent), (row, recent)
        assert recent == expected(frame, row.customer_id, day)
        assert bool(recent) == (day > START)


@hypothesis_settings(max_examples=30, deadline=None)
@given(ids=st.lists(st.text(min_size=1, max_size=3) | st.sampled_from(CUSTOMERS), min_size=1))
def test_customer_slices_hold_every_id_once(ids: list[str]) -> None:
    """The engine computes the recent articles slice by slice: each id in exactly one."""
    import duckdb

    slices = customer_slices()
    assert len(slices) == CUSTOMER_SLICES
    with duckdb.connect() as con:
        con.execute("CREATE TABLE ids (customer_id VARCHAR)")
        con.executemany("INSERT INTO ids VALUES (?)", [[i] for i in ids])
        matches = " + ".join(f"CAST({s.where()} AS INTEGER)" for s in slices)
        counts = con.execute(f"SELECT {matches} AS n FROM ids").fetchall()
    assert counts == [(1,)] * len(ids)


FLOW_SQL = {  # what the flow sends for the recent articles, on DuckDB and RisingWave alike
    "by day": by_day_sql(START, customer_slices()[3]),
    "as of": as_of_sql(START, customer_slices()[0]),
    "customers as of": embed.customers_as_of(START, customer_slices()[-1]),
    "wanted customers as of": embed.customers_as_of(START, customer_slices()[5], wanted=True),
}


@pytest.mark.parametrize("sql", FLOW_SQL.values(), ids=FLOW_SQL.keys())
def test_recent_article_queries_are_risingwave_sql(sql: str) -> None:
    """Parses in RisingWave's dialect (no named WINDOW clause, no ordered STRING_AGG) and
    reads only objects of `risingwave/`."""
    tree = sqlglot.parse_one(sql, read="risingwave")
    aliases = {s.alias for s in tree.find_all(exp.Subquery, exp.CTE)}
    tables = {t.name for t in tree.find_all(exp.Table)} - aliases
    assert tables and tables <= {obj.name for obj in load_objects()}
    assert not re.search(r"\bWINDOW\b", sql) and not re.search(r"STRING_AGG\([^)]*ORDER BY", sql)
