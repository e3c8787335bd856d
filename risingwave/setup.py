"""Create (or drop) every table and view of risingwave/*.sql, in dependency order.

    python risingwave/setup.py                      # engine chosen by RISINGWAVE_URL
    python risingwave/setup.py --engine embedded    # DuckDB file at DUCKDB_PATH
    python risingwave/setup.py --print              # show the SQL, secrets masked
    python risingwave/setup.py --drop               # remove everything, reverse order

For RisingWave the Kafka topics (and their dead-letter topics) are created first, with
KAFKA_PARTITIONS partitions: RisingWave refuses a Kafka table whose topic does not exist,
and does not ask the broker to create it.

Re-running is safe: existing topics are kept, every statement is CREATE ... IF NOT EXISTS
(views in DuckDB are CREATE OR REPLACE with the same text), and existing training
settings are kept.
"""

from __future__ import annotations

import argparse
import sys

from recsys.engine import EngineError, open_engine, rendered_statements
from recsys.producer import TOPICS, ProducerError, create_topics, dlq_topic
from recsys.settings import ConfigError, Settings, load_settings


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
        if kind == "risingwave" and not args.drop:
            ensure_topics(settings)
        with open_engine(settings, kind=kind) as engine:
            if args.drop:
                engine.drop()
                print(f"dropped every object ({kind})")
            else:
                engine.apply()
                print(f"applied {len(rendered_statements(kind, settings))} objects ({kind})")
    except (ConfigError, EngineError, ProducerError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


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
