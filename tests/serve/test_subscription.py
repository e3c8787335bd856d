"""The RisingWave path of the online state (`recsys.serve.subscription`): its statements
against RisingWave's grammar, and change records applied to the state, with a lost
connection resumed after the last rw_timestamp. No RisingWave server runs here: the
connection is a stand-in that answers FETCH with scripted change records."""

from __future__ import annotations

import re
import time
from collections import deque
from datetime import date
from pathlib import Path

import pytest
from sqlglot import exp

from recsys.serve import subscription as sub
from recsys.serve.state import OnlineState
from recsys.store.sql_objects import load_objects
from recsys.train.features import CUSTOMER_COLUMNS
from tests.serve.test_state import ARTICLES, CUSTOMERS, synthetic_tower

IDENT = r"[a-z_][a-z0-9_]*"
INTERVAL = r"'\d+(\.\d+)?\s*(s|m|h|D|second|minute|hour|day)s?'"
# RisingWave's grammar for the three statements (its parser: `parse_create_subscription`,
# CREATE SUBSCRIPTION [IF NOT EXISTS] name FROM mv [WITH (properties)]; its docs, "Subscription
# cursor": DECLARE name SUBSCRIPTION CURSOR FOR subscription [FULL | SINCE unix_ms], FETCH n
# FROM cursor [WITH (timeout = interval)]). sqlglot's risingwave dialect parses none of them
# (it falls back to a bare Command), so they are matched against the grammar instead.
GRAMMAR = {
    "create": rf"CREATE SUBSCRIPTION (IF NOT EXISTS )?{IDENT} FROM ({IDENT}) "
    rf"WITH \(retention = {INTERVAL}\)",
    "declare": rf"DECLARE {IDENT} SUBSCRIPTION CURSOR FOR {IDENT} (FULL|SINCE \d+)",
    "fetch": rf"FETCH (NEXT|\d+) FROM {IDENT}( WITH \(timeout = {INTERVAL}\))?",
}
FOLLOWED = {"customers_t": CUSTOMER_COLUMNS, "dedup_transactions_t": sub.PURCHASE_COLUMNS}


@pytest.mark.parametrize("view", FOLLOWED)
def test_statements_follow_risingwaves_grammar_on_views_that_have_the_columns(view: str) -> None:
    create = sub.create_subscription_sql(view)
    assert re.fullmatch(GRAMMAR["create"], create) and f" FROM {view} " in create
    for since in (None, 1_733_460_000_000):
        assert re.fullmatch(GRAMMAR["declare"], sub.declare_cursor_sql(view, "c", since))
    assert re.fullmatch(GRAMMAR["fetch"], sub.fetch_sql(f"serve_{view}_cursor"))
    objects = {obj.name: obj for obj in load_objects()}
    assert objects[view].is_view  # a subscription reads a table or a materialized view
    select = objects[view].tree.expression
    columns = {e.alias_or_name for e in select.find(exp.Select).expressions}
    assert set(FOLLOWED[view]) <= columns


class Result:
    def __init__(self, names: list[str], rows: list[tuple]) -> None:
        self.description = [type("Column", (), {"name": n}) for n in names]
        self._rows = rows

    def fetchall(self) -> list[tuple]:
        return self._rows


class StandIn:
    """Answers the follower's statements; FETCH pops the next scripted answer (an
    exception stands for a lost connection)."""

    def __init__(self, script: deque, said: list[str]) -> None:
        self.script, self.said = script, said

    def execute(self, sql: str) -> Result:
        self.said.append(sql)
        if not sql.startswith("FETCH"):
            return Result([], [])
        answer = self.script.popleft() if self.script else Result([], [])
        if isinstance(answer, Exception):
            raise answer
        return answer


PURCHASE_NAMES = ["t_dat", "customer_id", "article_id", "units", "sales_channel_id", "op",
                  "rw_timestamp"]  # fmt: skip


def purchases(*rows: tuple) -> Result:
    names = [f"dedup_transactions_t.{n}" if n in sub.PURCHASE_COLUMNS else n
             for n in PURCHASE_NAMES]  # fmt: skip
    return Result(names, list(rows))


def online_units(state: OnlineState, customer: str) -> dict[str, int]:
    bought = state.bought(state.row(customer))
    return dict(zip(state.article_ids[bought.articles], bought.online.tolist(), strict=True))


def test_change_records_keep_the_state_and_a_lost_connection_resumes_after_the_last(
    tmp_path: Path, monkeypatch
) -> None:  # noqa: ANN001
    tower, inputs = synthetic_tower(tmp_path)
    state = OnlineState(inputs, tower, ARTICLES[:3])
    one, day = CUSTOMERS[0], date(2020, 9, 1)
    script = deque([
        purchases((day, one, ARTICLES[0], 1, 1, "Insert", 100),
                  (day, one, ARTICLES[2], 2, 2, "Insert", 100)),
        Result(PURCHASE_NAMES, []),  # caught up
        purchases((day, one, ARTICLES[0], 1, 1, "UpdateDelete", 200),
                  (day, one, ARTICLES[0], 3, 2, "UpdateInsert", 200)),  # two more, online
        ConnectionError("server closed the connection"),
        purchases((date(2020, 9, 2), one, ARTICLES[3], 1, 1, "Insert", 300)),
    ])  # fmt: skip
    said: list[str] = []
    monkeypatch.setattr(sub, "RECONNECT_S", 0.01)
    follower = sub.Follower(lambda: StandIn(script, said), "dedup_transactions_t",
                            lambda f: state.apply(sub.purchase_changes(f)))  # fmt: skip
    follower.catch_up()
    assert state.history(one) == [(ARTICLES[2], day, 2), (ARTICLES[0], day, 1)]
    view = "dedup_transactions_t"
    opened = [
        sub.create_subscription_sql(view),
        sub.declare_cursor_sql(view, follower.cursor, None),
    ]
    assert said[:2] == opened
    assert online_units(state, one) == {ARTICLES[0]: 0, ARTICLES[2]: 2}
    follower.fetch()
    assert state.history(one) == [(ARTICLES[0], day, 3), (ARTICLES[2], day, 2)]
    assert online_units(state, one) == {ARTICLES[0]: 3, ARTICLES[2]: 2}
    stop = follower.start()
    deadline = time.monotonic() + 10
    while script and time.monotonic() < deadline:
        time.sleep(0.01)
    stop()
    assert sub.declare_cursor_sql("dedup_transactions_t", follower.cursor, 200) in said
    assert state.history(one)[0] == (ARTICLES[3], date(2020, 9, 2), 1)
    assert follower.since == 300


def test_profile_changes_set_the_new_values() -> None:
    import pandas as pd

    frame = pd.DataFrame(
        [[CUSTOMERS[0], 30, "ACTIVE", "NONE", 1.0, 0.0, "x", "UpdateDelete", 1],
         [CUSTOMERS[0], 31, "ACTIVE", "NONE", 1.0, 1.0, "x", "UpdateInsert", 1],
         [CUSTOMERS[1], None, None, "NONE", 0.0, 0.0, None, "Insert", 1]],
        columns=[*CUSTOMER_COLUMNS, "op", "rw_timestamp"],
    )  # fmt: skip
    changed = sub.profile_changes(frame)
    assert changed["age"].tolist()[0] == 31 and list(changed.columns) == list(CUSTOMER_COLUMNS)
    assert len(changed) == 2
