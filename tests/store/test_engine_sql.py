"""The SQL files themselves: RisingWave syntax, one object each, dependency order,
streaming rules we rely on, and no secrets."""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from recsys.settings import load_settings
from recsys.store.sql_objects import (
    APPEND_ONLY,
    SQL_DIR,
    load_objects,
    render_risingwave,
    to_duckdb,
)

OBJECTS = load_objects()
USER_FACING_VIEWS = {
    "articles_t",
    "customers_t",
    "images_t",
    "transactions_t",
    "articles_metadata_t",
    "dedup_transactions_t",
    "joined_transactions_t",
    "filtered_dataframe_t",
    "customer_recent_articles_t",
    "article_popularity_t",
}


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o.path.name)
def test_each_file_parses_as_one_risingwave_statement(obj) -> None:  # noqa: ANN001
    text = APPEND_ONLY.sub(")", obj.path.read_text())  # a clause sqlglot does not know
    statements = [s for s in sqlglot.parse(text, read="risingwave") if s is not None]
    assert len(statements) == 1 and isinstance(statements[0], exp.Create)
    assert obj.path.read_text().startswith(f"-- {obj.name}:"), "each file opens with its comment"
    assert obj.path.name.split("_", 1)[1] == f"{obj.name}.sql"


def test_every_view_users_know_exists_as_a_materialized_view() -> None:
    views = {obj.name for obj in OBJECTS if obj.is_view}
    assert views == USER_FACING_VIEWS


def test_no_derived_object_is_a_one_shot_snapshot() -> None:
    """CREATE TABLE AS never updates in RisingWave: derived objects must be MVs."""
    for obj in OBJECTS:
        if obj.kind == "TABLE":
            assert obj.tree.expression is None, f"{obj.path.name}: CREATE TABLE AS"
            assert "CREATE TABLE IF NOT EXISTS" in obj.sql
        else:
            assert "CREATE MATERIALIZED VIEW IF NOT EXISTS" in obj.sql
    assert not re.search(r"CREATE\s+TABLE[^;]*\bAS\s+SELECT", _all_sql(), re.I)


def test_files_are_in_dependency_order() -> None:
    defined: set[str] = set()
    for obj in OBJECTS:
        if obj.is_view:
            ctes = {cte.alias for cte in obj.tree.find_all(exp.CTE)}
            used = {t.name for t in obj.tree.expression.find_all(exp.Table)} - ctes
            assert used <= defined, f"{obj.path.name} uses {used - defined} before it exists"
        defined.add(obj.name)


def test_kafka_tables_read_the_four_topics_with_placeholders_only() -> None:
    topics = set()
    for obj in OBJECTS:
        if obj.has_connector:
            assert "connector = 'kafka'" in obj.sql
            assert "FORMAT PLAIN ENCODE JSON" in obj.sql
            assert "-- @kafka_security" in obj.sql
            topics |= set(re.findall(r"topic = '([^']+)'", obj.sql))
    assert topics == {"articles_topic", "customers_topic", "images_topic", "transactions_topic"}


def test_no_secret_or_address_is_written_in_the_sql() -> None:
    text = _all_sql()
    assert not re.search(r"sasl\.(username|password)\s*=", text)
    assert not re.search(r"bootstrap\.server\s*=\s*'(?!\$\{KAFKA_BOOTSTRAP_SERVERS\})", text)


def test_every_window_order_states_its_null_ordering() -> None:
    """PostgreSQL/RisingWave and DuckDB sort NULLs differently unless told."""
    for obj in OBJECTS:
        for window in obj.tree.find_all(exp.Window):
            order = window.args.get("order")
            text = obj.sql
            assert order is not None, f"{obj.path.name}: window without ORDER BY"
            for key in order.expressions:
                column = key.this.sql()
                assert re.search(rf"{column} (ASC|DESC) NULLS (FIRST|LAST)", text), (
                    f"{obj.path.name}: {column} has no explicit NULLS FIRST/LAST"
                )


def test_only_the_event_table_is_append_only_and_duckdb_never_sees_the_clause() -> None:
    """transactions_raw only receives new events; keyed tables upsert, settings update."""
    append_only = [obj for obj in OBJECTS if obj.append_only]
    assert [obj.name for obj in append_only] == ["transactions_raw"]
    (events,) = append_only
    assert events.has_connector and not list(events.tree.find_all(exp.PrimaryKey))
    rendered = render_risingwave(events, load_settings(env={}))
    assert re.search(r"sales_channel_id BIGINT\n\) APPEND ONLY WITH \(", rendered)
    for obj in OBJECTS:
        assert "APPEND" not in to_duckdb(obj).upper(), obj.path.name
        assert obj.append_only == bool(APPEND_ONLY.search(obj.sql)), obj.path.name


def test_top_n_views_do_not_select_their_rank_column() -> None:
    """RisingWave allows selecting the rank, but every row after a new one would change."""
    for obj in OBJECTS:
        for window in obj.tree.find_all(exp.Window):
            alias = window.parent.alias if isinstance(window.parent, exp.Alias) else None
            assert alias, f"{obj.path.name}: a ranking column needs a name"
            assert alias not in obj.tree.expression.named_selects
            filters = [w.sql() for w in obj.tree.find_all(exp.Where)]
            assert any(alias in f for f in filters), f"{obj.path.name}: {alias} never filtered"


def _all_sql() -> str:
    return "\n".join(path.read_text() for path in sorted(SQL_DIR.glob("*.sql")))
