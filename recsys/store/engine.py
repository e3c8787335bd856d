"""The view SQL in `risingwave/` applied to an engine: what every caller uses, and DuckDB.

`Engine` is the one interface (apply the SQL, load data, query); `open_engine` picks
RisingWave (`recsys.store.risingwave`) when RISINGWAVE_URL is set, else the embedded
DuckDB file below. Both run the same SQL files (`recsys.store.sql_objects`).

In DuckDB a materialized view becomes a plain VIEW: it is computed when queried, so
it is always as fresh as the base tables, exactly like a RisingWave materialized
view, with no refresh step to forget.

DuckDB allows one writing process per file and no readers while it writes. So an
engine opened with `read_only=True` holds the file only for the duration of one
query and retries briefly when the file is locked; a writer (the consumer, a load)
waits for readers as long as they take, backing off and saying so every
LOCK_REPORT_S: a training read holds the file for over a minute.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys.datasets.hm_schema import TABLES
from recsys.ingest.events import DayRange, TransactionEvents
from recsys.ingest.loaders import RowError, iter_batches
from recsys.settings import Settings
from recsys.store.sql_objects import (
    EngineError,
    first_line,
    load_objects,
    rendered_statements,
)

DEFAULT_MIN_PURCHASES = 1
DEFAULT_CUTOFF = dt.date(9999, 12, 31)  # "no cutoff": every row is training data
# DuckDB stores tables in row groups of this many rows. Arrow input cut into record
# batches of this size is inserted in parallel, one batch per thread, as whole row
# groups: the full transactions file loaded in 26 s instead of 34 s (docs/streaming-sql.md).
DUCKDB_ROW_GROUP_ROWS = 122_880
LOAD_ORDER = ("articles", "customers", "images", "transactions")  # load_csv's files
LOCK_RETRY_SECONDS = 15.0  # readers only: a writer waits as long as readers take
LOCK_BACKOFF_MAX_S = 1.0
LOCK_REPORT_S = 10.0
log = logging.getLogger(__name__)

# DuckDB only: rows that could not be loaded, with where they came from and why.
# For CSV rows `file` is the file name and `line` its line; for Kafka messages
# `file` is "<topic>[<partition>]" and `line` the message offset.
REJECTS_DDL = """
CREATE TABLE IF NOT EXISTS rejects (
    source VARCHAR,
    file VARCHAR,
    line BIGINT,
    reason VARCHAR,
    raw VARCHAR,
    rejected_at TIMESTAMP DEFAULT current_timestamp
)
"""


# DuckDB only: how far the consumer has loaded each Kafka partition, written in the same
# transaction as the rows, so the file itself says where to resume (a fresh file: from
# the beginning of every topic, whatever the consumer group committed for another file).
KAFKA_OFFSETS_DDL = """
CREATE TABLE IF NOT EXISTS kafka_offsets (
    topic VARCHAR,
    kafka_partition INTEGER,
    next_offset BIGINT
)
"""


# DuckDB only: the purchases of a batch that are new to the file, as dedup_transactions_t
# counts them: distinct events per day, customer and article (transactions_t's cleaning),
# less the events the file already holds. Read in the batch's transaction before its rows
# are inserted; `$1`/`$2` (the batch's first and last day) let DuckDB skip every row group
# of other days (transactions_raw is in purchase order), so a live batch reads a few.
NEW_PURCHASES_SQL = """
SELECT n.t_dat, n.customer_id, n.article_id, CAST(COUNT(*) AS SMALLINT) AS units,
    CAST(CASE WHEN MAX(n.channel) = 2 THEN COUNT(*) ELSE 0 END AS SMALLINT) AS online
FROM (
    SELECT t_dat, customer_id, LPAD(article_id, 10, '0') AS article_id, event_id,
        MAX(sales_channel_id) AS channel
    FROM new_rows
    WHERE event_id <> '' AND t_dat IS NOT NULL AND customer_id <> '' AND article_id <> ''
    GROUP BY t_dat, customer_id, LPAD(article_id, 10, '0'), event_id
) AS n
WHERE NOT EXISTS (
    SELECT 1 FROM transactions_raw AS t
    WHERE t.t_dat BETWEEN $1 AND $2 AND t.t_dat = n.t_dat AND t.event_id = n.event_id
        AND t.customer_id = n.customer_id AND t.article_id <> ''
        AND LPAD(t.article_id, 10, '0') = n.article_id
)
GROUP BY n.t_dat, n.customer_id, n.article_id
"""


@dataclass
class LoadReport:
    """What a load wrote: valid rows per base table and rows kept aside in `rejects`."""

    rows: dict[str, int] = field(default_factory=dict)
    rejects: dict[str, int] = field(default_factory=dict)  # per base table
    days: DayRange = field(default_factory=DayRange)  # the transactions' days loaded
    skipped: int = 0  # valid transactions outside `days`, not loaded

    @property
    def rejected(self) -> int:
        return sum(self.rejects.values())

    def table(self) -> str:
        """Loaded and rejected rows per table, for a terminal."""
        lines = [f"{'table':<14} {'loaded':>12} {'rejected':>9}"]
        for name, rows in self.rows.items():
            lines.append(f"{name:<14} {rows:>12,} {self.rejects.get(name, 0):>9,}")
        if self.skipped:
            lines.append(f"({self.skipped:,} transactions outside {self.days} not loaded)")
        return "\n".join(lines)


class Engine:
    """What every caller uses: apply the SQL, load data, set training parameters, query."""

    kind: str

    def apply(self) -> None:
        raise NotImplementedError

    def drop(self) -> None:
        raise NotImplementedError

    def load_csv(self, data_dir: Path | str, days: DayRange | None = None) -> LoadReport:
        """Replace the base tables with the CSV files of `data_dir`; only the transactions
        of `days` (default: before DATA_UNTIL, when set)."""
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Run one SELECT; parameters are written $1, $2, ... in both engines."""
        raise NotImplementedError

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """Run one SELECT; its rows as tuples, no DataFrame: for the service's point
        look-ups, where building a DataFrame costs more than the query."""
        raise NotImplementedError

    def count(self, relation: str) -> int:
        """Rows of a table or view."""
        return int(self.query(f"SELECT COUNT(*) AS n FROM {relation}").iloc[0, 0])

    def record_batches(
        self, sql: str, params: Sequence[Any] | None = None, batch_rows: int = 1_000_000
    ) -> Iterator[pa.RecordBatch]:
        """Run one SELECT and stream its rows as Arrow record batches of `batch_rows`.

        For results too big for `query` (the training rows, every customer): nothing
        becomes a pandas object here, and about one batch is held in memory at a time.
        """
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def for_thread(self) -> Engine:
        """A handle for another thread (connections are not shared between threads):
        a new connection, unless the engine can hand out a cheaper one."""
        return open_engine(self.settings, read_only=True, kind=self.kind)

    def set_training_settings(self, min_purchases: int, cutoff: dt.date) -> None:
        """Write the one row of training_settings that filtered_dataframe_t reads."""
        if isinstance(min_purchases, bool) or not isinstance(min_purchases, int):
            raise ValueError(f"min_purchases must be an integer, got {min_purchases!r}")
        if min_purchases < 1:
            raise ValueError(f"min_purchases must be at least 1, got {min_purchases}")
        if isinstance(cutoff, dt.datetime) or not isinstance(cutoff, dt.date):
            raise ValueError(f"cutoff must be a datetime.date, got {cutoff!r}")
        # One statement that changes the row in place: with DELETE then INSERT the table
        # is empty in between, and filtered_dataframe_t's dynamic filters (a column
        # compared with MAX() over this table) retract every row, then re-insert them all.
        if self._training_settings_rows():
            sql = "UPDATE training_settings SET min_purchases = $1, cutoff = $2 WHERE id = 1"
        else:
            sql = "INSERT INTO training_settings (id, min_purchases, cutoff) VALUES (1, $1, $2)"
        self.execute(sql, [min_purchases, cutoff])

    def training_settings(self) -> tuple[int, dt.date]:
        row = self.query("SELECT min_purchases, cutoff FROM training_settings WHERE id = 1")
        if row.empty:
            raise EngineError("training_settings is empty: run apply() first")
        return int(row.iloc[0, 0]), pd.Timestamp(row.iloc[0, 1]).date()

    def _seed_training_settings(self) -> None:
        """Defaults once, so that filtered_dataframe_t shows something before training."""
        if not self._training_settings_rows():
            self.set_training_settings(DEFAULT_MIN_PURCHASES, DEFAULT_CUTOFF)

    def _training_settings_rows(self) -> int:
        return int(self.query("SELECT COUNT(*) AS n FROM training_settings").iloc[0, 0])

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_engine(
    settings: Settings, read_only: bool = False, kind: str | None = None, keep_open: bool = False
) -> Engine:
    """RisingWave when RISINGWAVE_URL is set (or kind="risingwave"), else DuckDB.

    `keep_open` (embedded, read-only): hold the file for the engine's lifetime instead of
    per query, for a process that queries all the time (the service); see DuckDBEngine.
    """
    kind = kind or ("risingwave" if settings.risingwave_url else "embedded")
    if kind == "risingwave":
        if not settings.risingwave_url:
            raise EngineError("RISINGWAVE_URL is not set: cannot open the RisingWave engine")
        from recsys.store.risingwave import RisingWaveEngine

        return RisingWaveEngine(settings)
    if kind == "embedded":
        return DuckDBEngine(settings, read_only=read_only, keep_open=keep_open)
    raise EngineError(f"unknown engine {kind!r}: expected 'risingwave' or 'embedded'")


class DuckDBEngine(Engine):
    """The embedded engine: base tables and views in one DuckDB file."""

    kind = "embedded"

    def __init__(
        self, settings: Settings, read_only: bool = False, keep_open: bool = False
    ) -> None:
        """A writer keeps the file for its lifetime (the consumer: one batch); a reader
        opens it per query, unless `keep_open`: opening costs tens of milliseconds, too
        much per request, and while it is held no other process can write the file
        (threads of this process can: see `for_thread`)."""
        self.settings = settings
        self.path = Path(settings.duckdb_path)
        self.read_only = read_only
        self._con: Any = None
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = self._connect()
        elif not self.path.is_file():
            raise EngineError(
                f"{self.path}: no DuckDB file yet; create it with "
                "`python risingwave/setup.py --engine embedded` and load data"
            )
        elif keep_open:
            self._con = self._connect()

    def for_thread(self) -> DuckDBEngine:
        """A cursor on the open database for another thread: one DuckDB database per file
        and process, so threads share it, each query sees the last committed writes
        (MVCC), and a writer's transaction never blocks a reader's query."""
        if self._con is None:
            return DuckDBEngine(self.settings, read_only=self.read_only)
        handle = object.__new__(DuckDBEngine)
        handle.settings, handle.path, handle.read_only = self.settings, self.path, self.read_only
        handle._con = self._con.cursor()
        return handle

    def _connect(self) -> Any:
        """Open the file, waiting while another process holds it.

        Across processes DuckDB reports the other's lock as an IOException; inside one
        process (e.g. a consumer thread next to a reader) opening the file read-only
        while it is open read-write is a ConnectionException. A reader gives up after
        LOCK_RETRY_SECONDS; a writer never does (it reports every LOCK_REPORT_S).
        """
        import duckdb

        started = reported = time.monotonic()
        pause = 0.02
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=self.read_only)
                con.execute(f"SET memory_limit = '{self.settings.duckdb_memory_limit}'")
                # DuckDB's own bar redraws one line hundreds of times: in a log (the flow's,
                # a long index build) that is megabytes of noise. recsys.progress reports.
                con.execute("SET enable_progress_bar = false")
                return con
            except (duckdb.IOException, duckdb.ConnectionException) as error:
                busy = "lock" in str(error).lower() or "different configuration" in str(error)
                waited = time.monotonic() - started
                if not busy or (self.read_only and waited > LOCK_RETRY_SECONDS):
                    raise
                if time.monotonic() - reported >= LOCK_REPORT_S:
                    log.warning("%s: waiting %.0f s for another process to close it", self.path,
                                waited)  # fmt: skip
                    reported = time.monotonic()
                time.sleep(pause)
                pause = min(pause * 2, LOCK_BACKOFF_MAX_S)

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self._con is not None:
            yield self._con
            return
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    def apply(self) -> None:
        with self._connection() as con:
            for path, sql in rendered_statements(self.kind, self.settings):
                try:
                    con.execute(sql)
                except Exception as error:  # noqa: BLE001 - re-raised with the file named
                    raise EngineError(f"{path.name}: {first_line(sql)}: {error}") from error
            con.execute(REJECTS_DDL)
            con.execute(KAFKA_OFFSETS_DDL)
        self._seed_training_settings()

    def drop(self) -> None:
        with self._connection() as con:
            for obj in reversed(load_objects()):
                con.execute(f"DROP {'VIEW' if obj.is_view else 'TABLE'} IF EXISTS {obj.name}")
            con.execute("DROP TABLE IF EXISTS rejects")
            con.execute("DROP TABLE IF EXISTS kafka_offsets")

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with self._connection() as con:
            return con.execute(sql, list(params or [])).df()

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self._connection() as con:
            return con.execute(sql, list(params or [])).fetchall()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self._connection() as con:
            con.execute(sql, list(params or []))

    def record_batches(
        self, sql: str, params: Sequence[Any] | None = None, batch_rows: int = 1_000_000
    ) -> Iterator[pa.RecordBatch]:
        with self._connection() as con:
            yield from con.execute(sql, list(params or [])).fetch_record_batch(batch_rows)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def load_csv(self, data_dir: Path | str, days: DayRange | None = None) -> LoadReport:
        """Replace the base tables with the CSV files of `data_dir`, all at once.

        Transactions get the producer's event ids (`recsys.ingest.events`), so the same rows
        sent later through Kafka are recognised as redeliveries; only those of `days`
        are loaded (default: before DATA_UNTIL, when set), so the rest can be replayed
        as new events. Bad rows go to `rejects` with file, line and reason; earlier
        rejects of the same files are replaced too, so loading twice gives the same result.

        Why staged: DuckDB holds a transaction's appended rows in memory until it commits
        (7.7 GB for the 31.8 M transactions whatever the memory limit). Each file is
        therefore appended batch by batch, committed as it goes, to a staging table
        (`<table>_raw_load`), and one transaction then swaps the staging tables in. A load
        that fails leaves the base tables as they were.
        """
        events = TransactionEvents(days or DayRange(until=self.settings.data_until))
        report = LoadReport(days=events.days)
        staging = [f"{table}_raw_load" for table in LOAD_ORDER] + ["rejects_load"]
        with self._connection() as con:
            try:
                con.execute("CREATE OR REPLACE TABLE rejects_load AS FROM rejects LIMIT 0")
                for table in LOAD_ORDER:
                    report.rows[table], report.rejects[table] = _stage(con, table, data_dir, events)
                with _transaction(con):
                    for table in LOAD_ORDER:
                        _swap_in(con, table)
            finally:
                for name in staging:
                    con.execute(f"DROP TABLE IF EXISTS {name}")
        report.skipped = events.skipped
        return report

    def write_batch(
        self,
        tables: Mapping[str, pa.Table],
        rejects: Sequence[RowError] = (),
        source: str = "kafka",
        order_column: str = "_offset",
        offsets: Mapping[tuple[str, int], int] | None = None,
        new_purchases: bool = False,
    ) -> pa.Table | None:
        """Append rows to the base tables and bad rows to `rejects`, in one transaction.

        Keys are `hm_schema` table names; each Arrow table carries `order_column`
        (Kafka offset or line number), which says which row of a key is the latest.
        `offsets` ((topic, partition) -> next offset to read) are stored in the same
        transaction: rows and the position they were read up to never disagree.
        With `new_purchases`, returns the batch's purchases new to the file
        (NEW_PURCHASES_SQL: t_dat, customer_id, article_id, units, online: the units bought
        online, sales channel 2): what the service's
        online state adds once the transaction has committed.
        """
        new = None
        with self._connection() as con, _transaction(con):
            if new_purchases:
                new = _new_purchases(con, tables.get("transactions"))
            for table, rows in tables.items():
                if rows.num_rows:
                    _insert_rows(con, table, rows, order_column)
            _insert_rejects(con, source, rejects)
            for (topic, partition), offset in (offsets or {}).items():
                con.execute(
                    "DELETE FROM kafka_offsets WHERE topic = $1 AND kafka_partition = $2",
                    [topic, partition],
                )
                con.execute(
                    "INSERT INTO kafka_offsets VALUES ($1, $2, $3)", [topic, partition, offset]
                )
        return new

    def query_arrow(self, sql: str, tables: Mapping[str, pa.Table]) -> pa.Table:
        """Run one SELECT over the file and `tables` (Arrow tables, registered under their
        names for this query only); rows as Arrow, no Python object per row."""
        with self._connection() as con:
            for name, table in tables.items():
                con.register(name, table)
            try:
                return con.execute(sql).fetch_arrow_table()
            finally:
                for name in tables:
                    con.unregister(name)

    def kafka_offsets(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> next offset to read, as stored by `write_batch`."""
        with self._connection() as con:
            rows = con.execute("SELECT topic, kafka_partition, next_offset FROM kafka_offsets")
            return {(topic, partition): offset for topic, partition, offset in rows.fetchall()}


def _new_purchases(con: Any, rows: pa.Table | None) -> pa.Table:
    """NEW_PURCHASES_SQL over a batch's transactions (none: an empty table)."""
    empty = (
        "SELECT NULL::DATE AS t_dat, '' AS customer_id, '' AS article_id, "
        "0::SMALLINT AS units, 0::SMALLINT AS online"
    )
    if rows is None or not rows.num_rows or rows.column("t_dat").null_count == rows.num_rows:
        return con.execute(f"{empty} LIMIT 0").fetch_arrow_table()
    days = pc.min_max(rows.column("t_dat"))
    con.register("new_rows", rows)
    try:
        bounds = [days["min"].as_py(), days["max"].as_py()]
        return con.execute(NEW_PURCHASES_SQL, bounds).fetch_arrow_table()
    finally:
        con.unregister("new_rows")


@contextmanager
def _transaction(con: Any) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _stage(
    con: Any, table: str, data_dir: Path | str, events: TransactionEvents
) -> tuple[int, int]:
    """Load one CSV file into an empty `<table>_raw_load` and its bad rows into
    `rejects_load`, committing batch by batch; returns (rows, rejects)."""
    con.execute(f"CREATE OR REPLACE TABLE {table}_raw_load AS FROM {table}_raw LIMIT 0")
    rows = rejects = 0
    for batch, errors in iter_batches(table, data_dir):
        kept = events.take(batch) if table == "transactions" else batch
        with _transaction(con):
            _insert_rows(con, table, kept, "_line", suffix="_load")
            _insert_rejects(con, "csv", errors, into="rejects_load")
        rows, rejects = rows + kept.num_rows, rejects + len(errors)
    return rows, rejects


def _swap_in(con: Any, table: str) -> None:
    """Replace `<table>_raw` by its staging table, and the file's earlier rejects by the
    staged ones (call inside the transaction that makes the whole load visible at once).

    A rename, not a copy: no second copy of 31.8 M rows in the file, and no time spent
    on one. The staging table was created from `<table>_raw` (same columns and types;
    the embedded base tables have no keys or defaults), and views find tables by name.
    """
    con.execute(f"DROP TABLE {table}_raw")
    con.execute(f"ALTER TABLE {table}_raw_load RENAME TO {table}_raw")
    con.execute("DELETE FROM rejects WHERE file = $1", [TABLES[table].file])
    con.execute("INSERT INTO rejects BY NAME FROM rejects_load WHERE file = $1",
                [TABLES[table].file])  # fmt: skip


def _insert_rows(con: Any, table: str, rows: pa.Table, order_column: str, suffix: str = "") -> None:
    """Append rows to `<table>_raw` (or its staging table, `suffix` "_load"); keyed
    tables keep the last row per key.

    Transactions are append-only: redeliveries are removed by dedup_transactions_t,
    not here, exactly as in RisingWave. Call inside a transaction: a keyed table's
    delete and insert must be seen together.
    """
    target = f"{table}_raw{suffix}"
    batches = rows.to_batches(max_chunksize=DUCKDB_ROW_GROUP_ROWS)
    con.register("new_rows", pa.Table.from_batches(batches, schema=rows.schema))
    try:
        if table == "transactions":
            con.execute(
                f"INSERT INTO {target} BY NAME SELECT * EXCLUDE ({order_column}) FROM new_rows"
            )
        else:
            key = TABLES[table].key
            con.execute(f"DELETE FROM {target} WHERE {key} IN (SELECT {key} FROM new_rows)")
            con.execute(
                f"INSERT INTO {target} BY NAME "
                f"SELECT * EXCLUDE ({order_column}) FROM new_rows "
                f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {order_column} DESC) = 1"
            )
    finally:
        con.unregister("new_rows")


def _insert_rejects(
    con: Any, source: str, errors: Sequence[RowError], into: str = "rejects"
) -> None:
    if errors:
        con.executemany(
            f"INSERT INTO {into} (source, file, line, reason, raw, rejected_at) "
            "VALUES ($1, $2, $3, $4, $5, current_timestamp)",
            [(source, e.file, e.line, e.reason, e.raw) for e in errors],
        )
