"""The online state against the views it stands for, built from the file and kept current
by the consumer's writes, on hand-made and Hypothesis data; the numpy tower's arithmetic;
the shared reads and the queries the service sends."""

from __future__ import annotations

import zlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlglot import exp

from recsys.serve import views
from recsys.serve.state import HISTORY, PROFILE_SQL, OnlineState
from recsys.serve.tower import NumpyTower, TowerInputs
from recsys.store.engine import DuckDBEngine
from recsys.store.sql_objects import load_objects
from recsys.strategy.inputs import History
from recsys.train.recent_articles import NO_ARTICLE
from tests.fixtures_engine import insert_raw

CUSTOMERS = ("a" * 64, "b" * 64, "c" * 64)
# the same article written with and without its leading zero: one article in the views
ARTICLES = ("0108775015", "108775015", *(f"07{n:08d}" for n in range(14)), "")
EVENTS = ("", *(f"2020-09-{d:02d}:hash:{k}" for d in range(1, 4) for k in range(3)))
DAY = date(2020, 9, 1)


def with_channel(row: dict) -> dict:
    """A sales channel (1: shop, 2: online) that follows from the event's content, as a
    redelivery's does."""
    content = f"{row['event_id']}|{row['t_dat']}|{row['customer_id']}|{row['article_id']}"
    return {**row, "sales_channel_id": 1 + zlib.crc32(content.encode()) % 2}


purchases = st.lists(
    st.fixed_dictionaries(
        {
            "event_id": st.sampled_from(EVENTS),
            "t_dat": st.one_of(st.none(), st.integers(0, 40).map(lambda d: DAY + timedelta(d))),
            "customer_id": st.sampled_from(CUSTOMERS),
            "article_id": st.sampled_from(ARTICLES),
            "price": st.just(0.05),
        }
    ).map(with_channel),
    max_size=80,
)
PROFILE_DOMAINS = {
    "customer_id": list(CUSTOMERS[:2]),  # the third is a buyer the model never saw
    "age_bucket": ["1", "2", "unknown"],
    "club_member_status": ["ACTIVE", "unknown"],
    "fashion_news_frequency": ["NONE", "unknown"],
    "FN": ["0", "1"],
    "Active": ["0", "1"],
    "postal_code": [str(n) for n in range(1000)],
    "month": [str(n) for n in range(1, 13)],
}
RECENT_DOMAIN = "recent_1_recent_2_recent_3_recent_4"


def synthetic_tower(root: Path, seed: int = 0) -> tuple[NumpyTower, TowerInputs]:
    """A tower's arrays and category tables as the flow exports them, with random weights."""
    rng = np.random.default_rng(seed)
    categories = root / "categories"
    categories.mkdir(parents=True, exist_ok=True)
    domains = {**PROFILE_DOMAINS, RECENT_DOMAIN: [NO_ARTICLE, *ARTICLES[:10]]}
    arrays: dict[str, np.ndarray] = {}
    for domain, values in domains.items():
        table = pd.DataFrame({domain: values}, index=range(3, 3 + len(values)))
        table.to_parquet(categories / f"unique.{domain}.parquet")
        arrays[f"table:{domain}"] = rng.normal(size=(3 + len(values), 4)).astype("float32")
    columns = sorted([*PROFILE_DOMAINS, "recent_1", "recent_2", "recent_3", "recent_4"])
    arrays["columns"] = np.array(columns)
    arrays["domains"] = np.array([c if c in PROFILE_DOMAINS else RECENT_DOMAIN for c in columns])
    for i, (width, activation) in enumerate(((8, "relu"), (3, "linear"))):
        inputs = 4 * len(columns) if i == 0 else 8
        arrays[f"dense:{i}:kernel"] = rng.normal(size=(inputs, width)).astype("float32")
        arrays[f"dense:{i}:bias"] = rng.normal(size=width).astype("float32")
        arrays[f"dense:{i}:activation"] = np.array(activation)
    np.savez(root / "tower.npz", **arrays)
    tower = NumpyTower(root / "tower.npz")
    return tower, TowerInputs(categories, tower)


@pytest.fixture(scope="module")
def tower(tmp_path_factory) -> tuple[NumpyTower, TowerInputs]:  # noqa: ANN001
    return synthetic_tower(tmp_path_factory.mktemp("tower"))


def the_views(engine: DuckDBEngine, customer: str) -> list[tuple[str, date, int]]:
    """customer_recent_articles_t's rows, newest first, then most bought (the history)."""
    rows = engine.rows(
        "SELECT article_id, last_t_dat, units FROM customer_recent_articles_t "
        "WHERE customer_id = $1",
        [customer],
    )
    return sorted(rows, key=lambda r: (-r[1].toordinal(), -r[2], r[0]))


def assert_state_is_the_views(state: OnlineState, engine: DuckDBEngine) -> None:
    """History, latest day and the batch the strategy ranks (the repurchase window, every
    article's units, in the window and online, the age) as the views and the flow read
    them."""
    newest = engine.rows("SELECT MAX(t_dat) FROM transactions_t")[0][0] or DAY
    today = newest + timedelta(days=1)
    flow = History.read(engine, today)
    for customer in CUSTOMERS:
        assert state.history(customer) == the_views(engine, customer)
        assert len(state.history(customer)) <= HISTORY
        latest = engine.rows(
            "SELECT MAX(t_dat) FROM dedup_transactions_t WHERE customer_id = $1", [customer]
        )[0][0]
        assert state.latest_day(state.row(customer)) == latest
        batch = state.customers([customer], today, queries=False)
        expected = flow.customers(np.array([customer], dtype=object), batch.known)
        assert list(batch.history.values) == list(expected.history.values)
        assert purchase_rows(batch.purchases) == purchase_rows(expected.purchases)
        np.testing.assert_array_equal(batch.age, expected.age)
    assert state.newest_day == engine.rows("SELECT MAX(t_dat) FROM dedup_transactions_t")[0][0]


def purchase_rows(purchases) -> list[tuple]:  # noqa: ANN001
    """`strategy.inputs.Purchases` as sorted rows: the same entries in any order."""
    columns = [getattr(purchases, c) for c in purchases.COLUMNS]
    return sorted(zip(*(c.tolist() for c in columns), strict=True))


def stream(engine: DuckDBEngine, state: OnlineState, rows: list[dict], first: int) -> None:
    """Rows written as the consumer writes them, their new purchases applied to the state."""
    if not rows:
        return
    batch = pa.Table.from_pylist([{**r, "_offset": first + i} for i, r in enumerate(rows)])
    state.apply(engine.write_batch({"transactions": batch}, new_purchases=True))


@hypothesis_settings(max_examples=30, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(before=purchases, streamed=purchases, split=st.integers(1, 5))
def test_state_built_then_streamed_is_the_views(
    embedded_engine, tower, before: list[dict], streamed: list[dict], split: int
) -> None:  # noqa: ANN001
    """Any mix of redeliveries (also of rows the build read), same-day repeats, repurchases,
    padded and unpadded ids and rows the views drop: the state built from the file and
    then given the consumer's batches holds what the views hold."""
    embedded_engine.execute("DELETE FROM transactions_raw")
    if before:
        insert_raw(embedded_engine, "transactions", before)
    state = OnlineState.build(embedded_engine, tower[1], tower[0], ARTICLES[:3])
    assert_state_is_the_views(state, embedded_engine)
    for i in range(0, len(streamed), split):
        stream(embedded_engine, state, streamed[i : i + split], 1000 + i)
    assert_state_is_the_views(state, embedded_engine)


def test_a_redelivered_event_counts_once_and_a_new_customer_appears(embedded_engine, tower) -> None:  # noqa: ANN001
    one, new = CUSTOMERS[0], "d" * 64
    event = {"event_id": "e1", "t_dat": DAY, "customer_id": one, "article_id": "108775015",
             "price": 0.05, "sales_channel_id": 2}  # fmt: skip
    insert_raw(embedded_engine, "transactions", [event])
    state = OnlineState.build(embedded_engine, tower[1], tower[0], [])
    stream(embedded_engine, state, [event, {**event, "article_id": "0108775015"}], 10)
    assert state.history(one) == [("0108775015", DAY, 1)]
    later = {**event, "event_id": "e2", "t_dat": DAY + timedelta(1), "customer_id": new}
    stream(embedded_engine, state, [later, later], 20)
    assert state.history(new) == [("0108775015", DAY + timedelta(1), 1)]
    assert state.newest_day == DAY + timedelta(1)
    assert not state.known(state.row(new)) and state.known(state.row(one))
    purchases = state.purchases(state.row(one))
    assert purchases.articles.dtype == np.int32 and purchases.units.dtype == np.int16


def test_profiles_are_encoded_once_and_the_query_follows_purchases(embedded_engine, tower) -> None:  # noqa: ANN001
    """The query embedding is the tower over the customer's codes, the month of the day
    recommended for and their latest articles; a new purchase changes it."""
    one = CUSTOMERS[0]
    insert_raw(embedded_engine, "customers", [{"customer_id": one, "FN": 1.0, "Active": None,
               "club_member_status": "ACTIVE", "fashion_news_frequency": None, "age": 22,
               "postal_code": "x"}])  # fmt: skip
    state = OnlineState.build(embedded_engine, tower[1], tower[0], ARTICLES[:3])
    today = DAY + timedelta(days=5)
    before = state.customers([one], today, queries=True).queries
    profile = embedded_engine.query(f"{PROFILE_SQL} WHERE customer_id = $1", [one])
    from recsys.train.features import prepare_customers

    prepared = prepare_customers(profile, pd.Timestamp(today))
    np.testing.assert_array_equal(tower[0](tower[1].encode(prepared)), before)
    stream(embedded_engine, state, [{"event_id": "e9", "t_dat": DAY, "customer_id": one,
           "article_id": ARTICLES[2], "price": 0.05, "sales_channel_id": 2}], 1)  # fmt: skip
    after = state.customers([one], today, queries=True).queries
    recent = prepared.assign(recent_1=ARTICLES[2])
    np.testing.assert_array_equal(tower[0](tower[1].encode(recent)), after)
    assert not np.array_equal(before, after)


def test_numpy_tower_is_its_arithmetic(tmp_path: Path) -> None:
    """Look-ups concatenated in the columns' order, then dense layers with their activation."""
    numpy_tower, inputs = synthetic_tower(tmp_path, seed=3)
    codes = np.random.default_rng(1).integers(0, 5, size=(7, len(numpy_tower.columns)))
    with np.load(tmp_path / "tower.npz") as arrays:
        x = np.concatenate(
            [arrays[f"table:{d}"][codes[:, i]] for i, d in enumerate(arrays["domains"])], axis=1
        )
        hidden = np.maximum(x @ arrays["dense:0:kernel"] + arrays["dense:0:bias"], 0)
        expected = hidden @ arrays["dense:1:kernel"] + arrays["dense:1:bias"]
    np.testing.assert_allclose(numpy_tower(codes), expected, rtol=1e-6)
    assert inputs.codes("club_member_status", ["ACTIVE", "NEVER SEEN", None]).tolist() == [3, 2, 1]


valid_purchases = purchases.map(
    lambda rows: [r for r in rows if r["event_id"] and r["t_dat"] and r["article_id"]]
)


@hypothesis_settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(rows=valid_purchases)
def test_embedded_popular_list_is_the_views(embedded_engine, rows: list[dict]) -> None:  # noqa: ANN001
    """On DuckDB the shared reads use the flow's query for the popular list: the same list
    as article_popularity_t, which RisingWave keeps materialised."""
    embedded_engine.execute("DELETE FROM transactions_raw")
    if rows:
        insert_raw(embedded_engine, "transactions", rows)
    newest = embedded_engine.rows("SELECT MAX(t_dat) FROM transactions_t")[0][0]
    if newest is not None:
        popular = [a for (a,) in embedded_engine.rows(views.POPULAR_SQL)]
        assert views.popular_now(embedded_engine, newest + timedelta(1)) == popular


SERVICE_SQL = {"profiles": PROFILE_SQL, "popular": views.POPULAR_SQL}


@pytest.mark.parametrize("sql", SERVICE_SQL.values(), ids=SERVICE_SQL.keys())
def test_service_queries_are_risingwave_views(sql: str) -> None:
    """What the service reads on RisingWave parses in its dialect and names views only."""
    tree = sqlglot.parse_one(sql, read="risingwave")
    tables = {t.name for t in tree.find_all(exp.Table)}
    objects = {obj.name: obj for obj in load_objects()}
    assert tables and all(objects[t].is_view for t in tables)


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
    last = views.Shared(day, 100, ("a",), read_at=1000.0, read_s=read_s)  # type: ignore[arg-type]
    newest = day + timedelta(days=1) if new_day else day
    again = views.read_again(last, newest, 100 + new_events, 1000.0 + age)
    spaced = (1000.0 + age) - 1000.0 >= views.READ_SPACING * read_s  # as the clock sees it
    assert again == (new_day or (new_events > 0 and spaced))
    assert views.read_again(None, newest, 100, 0.0)
