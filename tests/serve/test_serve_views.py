"""The service's queries: the embedded fast path gives the view's rows, and every query
the service sends parses as RisingWave SQL and names only objects of `risingwave/` (on
RisingWave only views, read by their leading key; the embedded fast path reads a table)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
import sqlglot
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlglot import exp

from recsys.serve import views
from recsys.store.engine import DuckDBEngine
from recsys.store.sql_objects import load_objects
from tests.fixtures_engine import insert_raw

CUSTOMERS = ("a" * 64, "b" * 64)
# the same article written with and without its leading zero: one article in the views
ARTICLES = ("0108775015", "108775015", *(f"07{n:08d}" for n in range(14)), "")
EVENTS = ("", *(f"2020-09-{d:02d}:hash:{k}" for d in range(1, 4) for k in range(3)))
DAY = date(2020, 9, 1)
purchases = st.lists(
    st.fixed_dictionaries(
        {
            "event_id": st.sampled_from(EVENTS),
            "t_dat": st.one_of(st.none(), st.integers(0, 20).map(lambda d: DAY + timedelta(d))),
            "customer_id": st.sampled_from(CUSTOMERS),
            "article_id": st.sampled_from(ARTICLES),
            "price": st.just(0.05),
            "sales_channel_id": st.just(2),
        }
    ),
    max_size=80,
)


WINDOW_START = DAY + timedelta(days=1)


def fast_path(engine: DuckDBEngine, customer_id: str) -> list[tuple]:
    """The look-up as the service sends it: the id written out, the window start a parameter."""
    sql = views.with_literal_id(views.RECENT_EMBEDDED_SQL, customer_id)
    return engine.rows(sql, [WINDOW_START])


@pytest.mark.parametrize(
    "bad", ["A" * 64, "a" * 63, "a" * 63 + "'", "a" * 64 + "\n", "' OR 1=1 --"]
)
def test_only_a_well_formed_id_is_written_into_sql(bad: str) -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        views.with_literal_id(views.CUSTOMER_SQL, bad)


def assert_fast_path_is_the_view(engine: DuckDBEngine) -> None:
    """Same rows as the view, in the same order; window units as dedup_transactions_t
    counts them since WINDOW_START."""
    for customer in CUSTOMERS:
        fast = fast_path(engine, customer)
        view = engine.rows(views.RECENT_SQL, [customer])
        assert [row[:3] for row in fast[: views.HISTORY]] == [row[:3] for row in view]
        in_window = dict(
            engine.rows(
                "SELECT article_id, SUM(units) FROM dedup_transactions_t "
                "WHERE customer_id = $1 AND t_dat >= $2 GROUP BY article_id",
                [customer, WINDOW_START],
            )
        )
        assert [row[3] for row in fast] == [in_window.get(row[0], 0) for row in fast]


def test_fast_path_keeps_the_views_twelve_with_redeliveries_and_ties(embedded_engine) -> None:  # noqa: ANN001
    """15 articles bought on one day (only 12 kept: ties broken by article_id), one of them
    redelivered 3 times and bought again as a second event; an unpadded id; bad rows."""
    one, other = CUSTOMERS
    rows = [
        {"event_id": f"e{n}", "t_dat": DAY, "customer_id": one, "article_id": f"07{n:08d}"}
        for n in range(15)
    ]
    rows += [{**rows[3]}, {**rows[3]}, {**rows[3], "event_id": "e3b"}]  # 3 deliveries, 2 events
    rows += [
        {
            "event_id": "x1",
            "t_dat": DAY + timedelta(1),
            "customer_id": one,
            "article_id": "108775015",
        },  # fmt: skip
        {
            "event_id": "x1",
            "t_dat": DAY + timedelta(1),
            "customer_id": one,
            "article_id": "0108775015",
        },  # the same event, padded: one unit
        {"event_id": "", "t_dat": DAY + timedelta(2), "customer_id": one, "article_id": "07"},
        {"event_id": "y", "t_dat": DAY, "customer_id": other, "article_id": "0700000001"},
    ]
    insert_raw(embedded_engine, "transactions", [_full(r) for r in rows])
    fast = fast_path(embedded_engine, one)
    assert len(fast) == 16 and fast[0] == ("0108775015", DAY + timedelta(1), 1, 1, 1)
    assert ("0700000003", DAY, 2, 0, 2) in fast[:12] and ("0700000014", DAY, 1, 0, 1) in fast[12:]
    assert_fast_path_is_the_view(embedded_engine)


@hypothesis_settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(rows=purchases)
def test_fast_path_gives_the_views_rows(embedded_engine, rows: list[dict]) -> None:  # noqa: ANN001
    """Any mix of redeliveries, same-day repeats, repurchases, padded and unpadded ids and
    rows the views drop: the fast path returns exactly customer_recent_articles_t's rows."""
    embedded_engine.execute("DELETE FROM transactions_raw")
    if rows:
        insert_raw(embedded_engine, "transactions", rows)
    assert_fast_path_is_the_view(embedded_engine)


channel_purchases = st.lists(
    st.fixed_dictionaries(
        {
            "event_id": st.sampled_from(EVENTS[1:]),
            "t_dat": st.integers(0, 40).map(lambda d: DAY + timedelta(d)),
            "customer_id": st.sampled_from(CUSTOMERS),
            "article_id": st.sampled_from(ARTICLES[:-1]),
            "price": st.just(0.05),
            "sales_channel_id": st.sampled_from([1, 2]),
        }
    ),
    max_size=60,
)


@hypothesis_settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(rows=channel_purchases, age=st.one_of(st.none(), st.integers(16, 90)))
def test_the_service_makes_the_flows_customers(embedded_engine, rows, age) -> None:  # noqa: ANN001
    """Redeliveries, same-day repeats in both channels, padded and unpadded ids: the
    customer the service makes from its look-ups (`recommender.customer_batch`) is the
    one the flow reads from the engine (`History.customers`), as of the same day."""
    from recsys.serve.recommender import customer_batch
    from recsys.strategy.inputs import History

    embedded_engine.execute("DELETE FROM transactions_raw")
    embedded_engine.execute("DELETE FROM customers_raw")
    insert_raw(embedded_engine, "customers", [{"customer_id": c, "age": age} for c in CUSTOMERS])
    if rows:
        insert_raw(embedded_engine, "transactions", rows)
    today = DAY + timedelta(41)
    for customer in CUSTOMERS:
        sql = views.with_literal_id(views.RECENT_EMBEDDED_SQL, customer)
        bought = [views.Bought(*row) for row in embedded_engine.rows(sql, [today - timedelta(28)])]
        state = views.CustomerState({"age": age}, bought)
        served = customer_batch(customer, False, state, None)
        ids = np.array([customer], dtype=object)
        flow = History.read(embedded_engine, today).customers(ids, np.array([False]))
        assert by_article(served.purchases) == by_article(flow.purchases)
        assert list(served.history.values) == list(flow.history.values)
        np.testing.assert_array_equal(served.age, flow.age)


def by_article(purchases) -> list[list]:  # noqa: ANN001
    """Every column of one customer's purchases, in article order."""
    order = np.argsort(purchases.articles)
    return [getattr(purchases, column)[order].tolist() for column in purchases.COLUMNS]


SERVICE_SQL = {  # name: (statement, runs on RisingWave)
    "customer": (views.CUSTOMER_SQL, True),
    "recent": (views.RECENT_SQL, True),
    "popular": (views.POPULAR_SQL, True),
    "newest": (views.NEWEST_SQL, True),
    "newest (embedded only)": (views.NEWEST_EMBEDDED_SQL, False),
    "recent (embedded only)": (views.RECENT_EMBEDDED_SQL, False),
}


@pytest.mark.parametrize(("sql", "on_risingwave"), SERVICE_SQL.values(), ids=SERVICE_SQL.keys())
def test_service_queries_are_risingwave_sql(sql: str, on_risingwave: bool) -> None:
    """What the service sends parses in RisingWave's dialect and names objects of
    `risingwave/`; on RisingWave only materialized views (read by their leading key)."""
    tree = sqlglot.parse_one(sql, read="risingwave")
    aliases = {s.alias for s in tree.find_all(exp.Subquery, exp.CTE)}
    tables = {t.name for t in tree.find_all(exp.Table)} - aliases
    objects = {obj.name: obj for obj in load_objects()}
    assert tables and tables <= set(objects)
    assert not on_risingwave or all(objects[t].is_view for t in tables)


def _full(row: dict) -> dict:
    return {"price": 0.05, "sales_channel_id": 2, **row}


valid_purchases = purchases.map(
    lambda rows: [r for r in rows if r["event_id"] and r["t_dat"] and r["article_id"]]
)


@hypothesis_settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(rows=valid_purchases)
def test_embedded_shared_reads_give_the_views_figures(embedded_engine, rows: list[dict]) -> None:  # noqa: ANN001
    """Rows as the loader and the consumer write them (every field the views filter on
    present), with redeliveries and same-day repeats: the base-table reads the service
    uses on DuckDB give the newest day, the event count and the popular list of the views."""
    embedded_engine.execute("DELETE FROM transactions_raw")
    if rows:
        insert_raw(embedded_engine, "transactions", [_full(r) for r in rows])
    newest, events = embedded_engine.rows(views.NEWEST_SQL)[0]
    assert embedded_engine.rows(views.NEWEST_EMBEDDED_SQL)[0] == (newest, events)
    if newest is not None:
        popular = [a for (a,) in embedded_engine.rows(views.POPULAR_SQL)]
        assert list(views.popular_now(embedded_engine, newest + timedelta(1))) == popular


@given(
    read_s=st.floats(0, 10),
    age=st.floats(0, 200),
    new_day=st.booleans(),
    new_events=st.integers(0, 3),
)
def test_shared_reads_follow_new_days_and_are_spaced_within_one(
    read_s: float, age: float, new_day: bool, new_events: int
) -> None:
    """A new day is read at once; purchases of the same day once the last read is
    READ_SPACING times its own cost old; nothing new, never."""
    day = date(2020, 9, 22)
    last = views.Shared(day, 100, None, read_at=1000.0, read_s=read_s)  # type: ignore[arg-type]
    newest = day + timedelta(days=1) if new_day else day
    again = views.read_again(last, newest, 100 + new_events, 1000.0 + age)
    spaced = age >= views.READ_SPACING * read_s
    assert again == (new_day or (new_events > 0 and spaced))
    assert views.read_again(None, newest, 100, 0.0)
