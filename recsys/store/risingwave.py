"""The RisingWave engine: the SQL files run as written, queries over the Postgres protocol."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from recsys.ingest.events import DayRange
from recsys.settings import Settings
from recsys.store.engine import Engine, LoadReport
from recsys.store.sql_objects import EngineError, first_line, load_objects, rendered_statements

RISINGWAVE_CONNECT_TIMEOUT_S = 10  # libpq's own default is to wait for ever
POSTGRES_DATE_OID = 1082  # the `date` type in a result description (RisingWave speaks pg)


class RisingWaveEngine(Engine):
    """A RisingWave server over its PostgreSQL protocol (psycopg)."""

    kind = "risingwave"

    def __init__(self, settings: Settings) -> None:
        import psycopg

        self.settings = settings
        try:
            self._con = psycopg.connect(
                settings.risingwave_url,
                autocommit=True,
                cursor_factory=psycopg.RawCursor,
                connect_timeout=_connect_timeout(settings.risingwave_url or ""),
            )
        except psycopg.OperationalError as error:
            raise EngineError(_risingwave_connect_error(settings, error)) from None

    def apply(self) -> None:
        for path, sql in rendered_statements(self.kind, self.settings, masked=False):
            try:
                self._con.execute(sql)
            except Exception as error:  # noqa: BLE001 - re-raised with the file named
                raise EngineError(f"{path.name}: {first_line(sql)}: {error}") from error
        self._seed_training_settings()

    def drop(self) -> None:
        for obj in reversed(load_objects()):
            kind = "MATERIALIZED VIEW" if obj.is_view else "TABLE"
            self._con.execute(f"DROP {kind} IF EXISTS {obj.name}")

    def load_csv(self, data_dir: Path | str, days: DayRange | None = None) -> LoadReport:
        raise EngineError(
            "RisingWave reads the Kafka topics: run `python kafka/producer.py` to feed it "
            "(load_csv is the embedded engine's fast path)"
        )

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with self._con.cursor() as cur:
            cur.execute(sql, list(params) if params else None)
            description = cur.description or []
            frame = pd.DataFrame(cur.fetchall(), columns=[c.name for c in description])
        for column in description:  # dates as datetime64, like DuckDB's results
            if column.type_code == POSTGRES_DATE_OID:
                frame[column.name] = pd.to_datetime(frame[column.name])
        return frame

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self._con.cursor() as cur:
            cur.execute(sql, list(params) if params else None)
            return cur.fetchall()

    def record_batches(
        self, sql: str, params: Sequence[Any] | None = None, batch_rows: int = 1_000_000
    ) -> Iterator[pa.RecordBatch]:
        """Rows as they arrive (libpq's single-row mode through psycopg's `stream`), so a
        big result is never held whole on this side; no server-side cursor is needed."""
        with self._con.cursor() as cur:
            rows: list[tuple] = []
            for row in cur.stream(sql, list(params) if params else None):
                rows.append(row)
                if len(rows) >= batch_rows:
                    yield _rows_to_batch(cur.description, rows)
                    rows = []
            if rows:
                yield _rows_to_batch(cur.description, rows)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._con.execute(sql, list(params) if params else None)
        self._con.execute("FLUSH")  # make the write visible to the next read

    def close(self) -> None:
        self._con.close()


def _rows_to_batch(description: Sequence[Any], rows: list[tuple]) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True))
    return pa.RecordBatch.from_arrays(
        [pa.array(column) for column in columns], names=[c.name for c in description]
    )


def _connect_timeout(url: str) -> int:
    """The URL's own connect_timeout when shorter, else RISINGWAVE_CONNECT_TIMEOUT_S."""
    from psycopg.conninfo import conninfo_to_dict

    asked = str(conninfo_to_dict(url).get("connect_timeout", ""))
    if asked.isascii() and asked.isdigit() and 0 < int(asked) < RISINGWAVE_CONNECT_TIMEOUT_S:
        return int(asked)
    return RISINGWAVE_CONNECT_TIMEOUT_S


def _risingwave_connect_error(settings: Settings, error: Exception) -> str:
    """Wrong credentials and an unreachable server are different fixes: say which.

    libpq's message can quote the connection string's host; the password never
    appears in it, and the URL is shown masked.
    """
    shown = settings.masked()["risingwave_url"]
    detail = str(error).strip()
    sqlstate = getattr(error, "sqlstate", None) or ""
    where = f"cannot connect to RisingWave at {shown} (RISINGWAVE_URL)"
    if sqlstate.startswith("28") or "authentication failed" in detail:
        return f"{where}: it rejected the credentials (the user or password): {detail}"
    timeout = _connect_timeout(settings.risingwave_url or "")
    return f"{where}: cannot reach it within {timeout} s: {detail}"
