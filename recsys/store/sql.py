"""Run SQL against the views of either engine and print the result as a table.

    python -m recsys.store.sql "SELECT * FROM filtered_dataframe_t LIMIT 5"
    python -m recsys.store.sql --engine embedded "SELECT COUNT(*) FROM rejects"

The engine follows the settings (RisingWave when RISINGWAVE_URL is set, else the
DuckDB file at DUCKDB_PATH, opened read-only so a running consumer is not blocked).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from recsys.settings import ConfigError, load_settings
from recsys.store.engine import EngineError, open_engine


def format_table(frame: pd.DataFrame, max_rows: int) -> str:
    """Aligned text table plus a row count, like psql prints."""
    shown = frame.head(max_rows)
    with pd.option_context("display.max_columns", None, "display.width", 200):
        text = shown.to_string(index=False) if len(shown.columns) else "(no columns)"
    more = f", first {max_rows} shown" if len(frame) > max_rows else ""
    return f"{text}\n({len(frame)} row{'s' if len(frame) != 1 else ''}{more})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sql", help="one SQL statement")
    parser.add_argument("--engine", choices=["risingwave", "embedded"], default=None)
    parser.add_argument("--max-rows", type=int, default=50)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        with open_engine(settings, read_only=True, kind=args.engine) as engine:
            frame = engine.query(args.sql)
    except (ConfigError, EngineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a SQL error from either engine, shown plainly
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(format_table(frame, args.max_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
