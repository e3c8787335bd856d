"""Create (or drop) every table and view of risingwave/*.sql, in dependency order.

    python risingwave/setup.py                      # engine chosen by RISINGWAVE_URL
    python risingwave/setup.py --engine embedded    # DuckDB file at DUCKDB_PATH
    python risingwave/setup.py --print              # show the SQL, secrets masked
    python risingwave/setup.py --drop               # remove everything, reverse order

Re-running is safe: every statement is CREATE ... IF NOT EXISTS (views in DuckDB are
CREATE OR REPLACE with the same text), and existing training settings are kept.
"""

from __future__ import annotations

import argparse
import sys

from recsys.engine import EngineError, open_engine, rendered_statements
from recsys.settings import ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["risingwave", "embedded"], default=None,
                        help="default: risingwave if RISINGWAVE_URL is set")  # fmt: skip
    parser.add_argument("--drop", action="store_true", help="drop every object instead")
    parser.add_argument("--print", action="store_true", help="print the SQL, run nothing")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        kind = args.engine or ("risingwave" if settings.risingwave_url else "embedded")
        if args.print:
            for path, sql in rendered_statements(kind, settings, masked=True):
                print(f"-- {path.name}\n{sql.rstrip(';')};\n")
            return 0
        with open_engine(settings, kind=kind) as engine:
            if args.drop:
                engine.drop()
                print(f"dropped every object ({kind})")
            else:
                engine.apply()
                print(f"applied {len(rendered_statements(kind, settings))} objects ({kind})")
    except (ConfigError, EngineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
