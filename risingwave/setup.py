"""Create (or drop) every table and view of risingwave/*.sql, in dependency order.

    python risingwave/setup.py                      # engine chosen by RISINGWAVE_URL
    python risingwave/setup.py --engine embedded    # DuckDB file at DUCKDB_PATH
    python risingwave/setup.py --engine embedded --load [--data DIR]   # and load the CSVs
    python risingwave/setup.py --engine embedded --load --until 2020-09-16  # leave days out
    python risingwave/setup.py --print              # show the SQL, secrets masked
    python risingwave/setup.py --drop               # remove everything, reverse order

For RisingWave the Kafka topics (and their dead-letter topics) are created first, with
KAFKA_PARTITIONS partitions: RisingWave refuses a Kafka table whose topic does not exist,
and does not ask the broker to create it.

`--load` is the embedded engine's CSV fast path (what the flow's `start` step does when
the file holds no purchases): it replaces the base tables with DATA_DIR's files, puts bad
rows in the table `rejects`, and prints what it loaded and rejected per table. With
`--until D` (default: the setting DATA_UNTIL) it loads only the transactions before day D,
`--from D` only those on or after it; replaying the rest with `python kafka/producer.py
--from D` then adds them as new events (the event ids are the producer's). RisingWave
reads the Kafka topics instead: `python kafka/producer.py`.

Re-running is safe: existing topics are kept, every statement is CREATE ... IF NOT EXISTS
(views in DuckDB are CREATE OR REPLACE with the same text), and existing training
settings are kept.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from recsys.ingest.events import DayRange, add_day_arguments, day_range
from recsys.ingest.kafka_clients import TOPICS, KafkaSetupError, create_topics, dlq_topic
from recsys.ingest.loaders import SchemaError
from recsys.settings import ConfigError, Settings, load_settings
from recsys.store.engine import Engine, EngineError, open_engine
from recsys.store.sql_objects import rendered_statements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["risingwave", "embedded"], default=None,
                        help="default: risingwave if RISINGWAVE_URL is set")  # fmt: skip
    parser.add_argument("--drop", action="store_true", help="drop every object instead")
    parser.add_argument("--print", action="store_true", help="print the SQL, run nothing")
    parser.add_argument("--load", action="store_true",
                        help="embedded only: load the CSV files (replaces the data)")  # fmt: skip
    parser.add_argument("--data", type=Path, default=None, help="with --load (default: DATA_DIR)")
    add_day_arguments(parser, until_help=" (with --load; default: DATA_UNTIL)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        days = day_range(args, parser, until=settings.data_until)
        kind = args.engine or ("risingwave" if settings.risingwave_url else "embedded")
        if (args.since or args.until) and not args.load:
            parser.error("--from/--until go with --load (the producer has its own)")
        if args.load and (kind != "embedded" or args.drop or args.print):
            parser.error("--load goes with the embedded engine only, without --drop/--print; "
                         "RisingWave reads the Kafka topics: python kafka/producer.py")  # fmt: skip
        if args.print:
            for path, sql in rendered_statements(kind, settings, masked=True):
                print(f"-- {path.name}\n{sql.rstrip(';')};\n")
            return 0
        if kind == "risingwave" and not args.drop:
            ensure_topics(settings)
        with open_engine(settings, kind=kind) as engine:
            if args.drop:
                engine.drop()
                print(f"dropped every object ({kind})")
            else:
                engine.apply()
                print(f"applied {len(rendered_statements(kind, settings))} objects ({kind})")
                if args.load:
                    load(engine, args.data or settings.data_dir, days)
    except (ConfigError, EngineError, KafkaSetupError, FileNotFoundError, SchemaError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def load(engine: Engine, data_dir: Path, days: DayRange) -> None:
    """The CSV files into the base tables, with a per-table account of every row."""
    started = time.perf_counter()
    report = engine.load_csv(data_dir, days)
    print(f"loaded {data_dir} in {time.perf_counter() - started:.1f} s\n{report.table()}")
    if report.rejected:
        print("rejected rows are in the table `rejects` (file, line, reason, raw): "
              'python -m recsys.store.sql "SELECT * FROM rejects LIMIT 20"')  # fmt: skip


def ensure_topics(settings: Settings) -> None:
    """The topics the Kafka tables read, created when missing (the producer's own code)."""
    created = create_topics(settings)
    wanted = len(TOPICS) * 2  # each topic and its dead-letter topic
    if created:
        print(f"created {len(created)} of {wanted} topics at {settings.kafka_bootstrap_servers} "
              f"({settings.kafka_partitions} partitions): {' '.join(created)}")  # fmt: skip
    else:
        print(f"all {wanted} topics exist at {settings.kafka_bootstrap_servers} "
              f"({', '.join(TOPICS)} and their {dlq_topic('')} topics)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
