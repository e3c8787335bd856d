"""The online state on RisingWave: each service process keeps it from the views themselves.

RisingWave maintains the views; a subscription on a view keeps its change records for a
retention period, and a subscription cursor reads them over the Postgres protocol
(docs/serving.md, "RisingWave: N service processes"). Per followed view, one thread:

1. `CREATE SUBSCRIPTION IF NOT EXISTS serve_<view> FROM <view> WITH (retention = ...)`;
2. `DECLARE ... SUBSCRIPTION CURSOR FOR serve_<view> FULL`: the view's rows as they are
   (op `Insert`), then every change after them; fetched until a fetch comes back empty
   before the service answers (`catch_up`), then followed in the thread;
3. a lost connection is opened again and the cursor declared `SINCE` the last
   `rw_timestamp` applied: within the retention nothing is lost or read twice.

No consumer runs in the service and nothing is written: several service processes, on
one machine or many, follow the same views side by side. Followed: `customers_t` (the
profiles) and `dedup_transactions_t` (each purchase row; a repeat of the same day changes
its `units`: `UpdateDelete` of the old row, `UpdateInsert` of the new, applied as the
difference). Not run here (no RisingWave server on these machines): the statements are
checked against RisingWave's grammar, and the change records' application against the
state on hand-made records (tests/serve/test_subscription.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from recsys.serve.state import OnlineState
from recsys.train.features import CUSTOMER_COLUMNS

if TYPE_CHECKING:
    from recsys.serve.run import ServedRun

RETENTION = "1D"  # a service down longer than this starts again from FULL
FETCH_ROWS = 10_000
FETCH_TIMEOUT_S = 1  # a fetch waits this long for a change, then comes back empty
RECONNECT_S = 2.0
ADDED = {"Insert": 1, "UpdateInsert": 1, "Delete": -1, "UpdateDelete": -1}  # the `op` column
PURCHASE_COLUMNS = ("t_dat", "customer_id", "article_id", "units", "sales_channel_id")
log = logging.getLogger(__name__)


def create_subscription_sql(view: str) -> str:
    return (
        f"CREATE SUBSCRIPTION IF NOT EXISTS serve_{view} FROM {view} "
        f"WITH (retention = '{RETENTION}')"
    )


def declare_cursor_sql(view: str, cursor: str, since: int | None) -> str:
    """FULL (the view's rows, then its changes), or SINCE a `rw_timestamp` (ms)."""
    start = "FULL" if since is None else f"SINCE {int(since)}"
    return f"DECLARE {cursor} SUBSCRIPTION CURSOR FOR serve_{view} {start}"


def fetch_sql(cursor: str) -> str:
    return f"FETCH {FETCH_ROWS} FROM {cursor} WITH (timeout = '{FETCH_TIMEOUT_S}s')"


def purchase_changes(frame: pd.DataFrame) -> pa.Table:
    """dedup_transactions_t's change records as rows to add: units signed by `op`, and
    the same as online units where the row's channel is online (2)."""
    units = frame["units"].astype("int64") * frame["op"].map(ADDED).astype("int64")
    online = units.where(frame["sales_channel_id"] == 2, 0)
    changes = pd.DataFrame(
        {
            "t_dat": pd.to_datetime(frame["t_dat"]).dt.date,
            "customer_id": frame["customer_id"],
            "article_id": frame["article_id"],
            "units": units.astype("int16"),
            "online": online.astype("int16"),
        }
    )
    return pa.Table.from_pandas(changes[changes["units"] != 0], preserve_index=False)


def profile_changes(frame: pd.DataFrame) -> pd.DataFrame:
    """customers_t's change records as profile rows to set (a row's new values)."""
    return frame[frame["op"].isin(("Insert", "UpdateInsert"))][list(CUSTOMER_COLUMNS)]


@dataclass
class Follower:
    """One view's change records, applied to the state (module docstring)."""

    connect: Callable[[], object]  # a psycopg connection in autocommit mode
    view: str
    apply: Callable[[pd.DataFrame], None]
    since: int | None = None  # the last rw_timestamp applied (None: not started)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def cursor(self) -> str:
        return f"serve_{self.view}_cursor"

    def catch_up(self) -> None:
        """Open the cursor (FULL) and apply until a fetch comes back empty."""
        self._open()
        while self.fetch():
            pass

    def _open(self) -> None:
        self._connection = self.connect()
        self._connection.execute(create_subscription_sql(self.view))
        self._connection.execute(declare_cursor_sql(self.view, self.cursor, self.since))

    def fetch(self) -> int:
        """One fetch applied; the number of change records it held."""
        result = self._connection.execute(fetch_sql(self.cursor))
        frame = pd.DataFrame(result.fetchall(), columns=[c.name for c in result.description])
        if frame.empty:
            return 0
        frame.columns = [c.rsplit(".", 1)[-1] for c in frame.columns]  # `view.column`
        self.apply(frame)
        self.since = int(frame["rw_timestamp"].max())
        return len(frame)

    def follow(self) -> None:
        """Fetch until stopped; a lost connection is opened again SINCE `since`."""
        while not self._stop.is_set():
            try:
                self.fetch()
            except Exception as error:  # noqa: BLE001 - reconnect, resume where it stopped
                log.warning("%s: %s; resuming after rw_timestamp %s", self.view, error, self.since)
                self._reopen()

    def _reopen(self) -> None:
        while not self._stop.wait(RECONNECT_S):
            try:
                self._open()
                return
            except Exception as error:  # noqa: BLE001 - RisingWave away: try again
                log.warning("%s: cannot resume yet: %s", self.view, error)

    def start(self) -> Callable[[], None]:
        """Follow in a thread; returns what stops it."""
        thread = threading.Thread(target=self.follow, name=f"follow-{self.view}", daemon=True)
        thread.start()

        def stop() -> None:
            self._stop.set()
            thread.join(timeout=FETCH_TIMEOUT_S + 5)

        return stop


def state_from_subscriptions(engine, run: ServedRun) -> OnlineState:
    """The state from RisingWave's views: the profiles and the purchases caught up to now,
    then followed by one thread each."""
    import psycopg

    def connect():
        return psycopg.connect(engine.settings.risingwave_url, autocommit=True)

    state = OnlineState(run.inputs, run.tower, run.catalogue.article_ids)
    followers = [
        Follower(connect, "customers_t", lambda f: state.set_profiles(profile_changes(f))),
        Follower(connect, "dedup_transactions_t", lambda f: state.apply(purchase_changes(f))),
    ]
    started = time.monotonic()
    for follower in followers:
        follower.catch_up()
    state.add_without_profile()
    log.warning("caught up with RisingWave's views in %.1f s", time.monotonic() - started)
    state.followers = [follower.start() for follower in followers]
    return state
