"""Shared fixtures: the embedded engine (DuckDB) with the view SQL applied."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from recsys.settings import Settings, load_settings
from recsys.store.engine import DuckDBEngine, open_engine


def engine_settings_for(tmp_dir: Path, **env: str) -> Settings:
    """Settings whose DuckDB file lives in `tmp_dir` (never the developer's data)."""
    return load_settings(
        env={"DATA_DIR": str(tmp_dir), "DUCKDB_PATH": str(tmp_dir / "t.duckdb"), **env}
    )


@pytest.fixture
def engine_settings(tmp_path: Path) -> Settings:
    return engine_settings_for(tmp_path)


@pytest.fixture
def embedded_engine(engine_settings: Settings) -> Iterator[DuckDBEngine]:
    """A fresh DuckDB file with every table and view created, and no data."""
    engine = open_engine(engine_settings)
    engine.apply()
    yield engine
    engine.close()


def insert_raw(engine: DuckDBEngine, table: str, rows: list[dict]) -> None:
    """Write hand-made rows into `<table>_raw`, later rows winning per key."""
    batch = pa.Table.from_pylist([{**row, "_offset": i} for i, row in enumerate(rows)])
    engine.write_batch({table: batch})


def rows_of(engine: DuckDBEngine, sql: str) -> list[tuple]:
    """Query result as plain Python tuples: dates as datetime.date, NULLs as None."""
    frame = engine.query(sql)
    return [
        tuple(
            None
            if value is None or (not isinstance(value, str) and pd.isna(value))
            else value.date()
            if isinstance(value, pd.Timestamp)
            else value
            for value in row
        )
        for row in frame.itertuples(index=False)
    ]
