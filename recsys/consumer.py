"""Kafka -> the embedded engine's base tables, continuously, losing nothing.

Each poll returns a batch of messages. The batch is checked against the JSON contract
(ARCHITECTURE.md), written to DuckDB in one transaction (valid rows to the base tables,
bad messages to `rejects` with topic, partition, offset and reason), and only after
that commit are the Kafka offsets committed. A crash in between means the batch is
delivered again: keyed tables simply overwrite, and redelivered transactions are
removed by dedup_transactions_t, so nothing is lost and nothing is counted twice.

The DuckDB file is opened for each batch and closed right after, so that readers
(the Streamlit app, the flow) can open it between batches.

    python -m recsys.consumer                  # runs until Ctrl-C
    python -m recsys.consumer --idle-stop 5    # stops after 5 s without messages
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from recsys.engine import DuckDBEngine, open_engine
from recsys.hm_schema import ID_PATTERNS, TABLES, Column, Kind, Table
from recsys.loaders import RowError
from recsys.producer import TABLE_TOPICS, TOPICS, confluent_config
from recsys.settings import Settings, load_settings

GROUP_ID = "hm-embedded-engine"
BATCH_MESSAGES = 20_000
POLL_TIMEOUT_S = 0.2
CONNECT_TIMEOUT_S = 10.0
JOIN_TIMEOUT_S = 120.0
TOPIC_TABLES = {topic: table for table, topic in TABLE_TOPICS.items()}
_ID_REGEX = {kind: re.compile(pattern) for kind, pattern in ID_PATTERNS.items()}


class ConsumerError(RuntimeError):
    """Kafka is unreachable or refused us; the message names the setting to check."""


@dataclass
class ConsumeReport:
    """What a run wrote: valid rows per table and messages kept aside in `rejects`."""

    messages: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    batches: int = 0


def parse_message(spec: Table, value: bytes | None) -> dict[str, Any] | str:
    """The typed row of one message, or the reason it breaks the contract."""
    try:
        record = json.loads(value or b"")
    except ValueError as error:
        return f"not valid JSON: {error}"
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    row: dict[str, Any] = {}
    columns = list(spec.columns)
    if spec.name == "transactions":
        columns.insert(0, Column("event_id", Kind.TEXT, required=True))
    for column in columns:
        value_or_reason = _field(column, record.get(column.name))
        if isinstance(value_or_reason, _Problem):
            return f"{column.name}: {value_or_reason.reason}"
        row[column.name] = value_or_reason
    return row


@dataclass(frozen=True)
class _Problem:
    reason: str


def _field(column: Column, value: Any) -> Any:
    """Check one JSON value against its column's kind; None stays None unless required."""
    if value is None or value == "":
        return _Problem("missing") if column.required else None
    kind = column.kind
    if kind in (Kind.INT, Kind.FLOAT) and (isinstance(value, bool) or not _is_number(value)):
        return _Problem(f"expected a number, got {value!r}")
    if kind is Kind.INT:
        return int(value) if float(value).is_integer() else _Problem(f"not an integer: {value}")
    if kind is Kind.FLOAT:
        return float(value)
    if not isinstance(value, str):
        return _Problem(f"expected a string, got {value!r}")
    if kind in _ID_REGEX and not _ID_REGEX[kind].match(value):
        return _Problem(f"not a {kind.value.replace('_', ' ')}: {value!r}")
    if kind is Kind.DATE:
        try:
            return dt.date.fromisoformat(value) if len(value) == 10 else _Problem("bad date")
        except ValueError:
            return _Problem(f"not a YYYY-MM-DD date: {value!r}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float)


def _schema(spec: Table) -> pa.Schema:
    schema = spec.arrow_schema
    if spec.name == "transactions":
        schema = schema.insert(0, pa.field("event_id", pa.string()))
    return schema.append(pa.field("_offset", pa.int64()))


def to_batches(messages: Iterable[Any]) -> tuple[dict[str, pa.Table], list[RowError]]:
    """Split confluent-kafka messages into typed Arrow tables per table, and rejects."""
    rows: dict[str, list[dict[str, Any]]] = {table: [] for table in TABLES}
    rejects: list[RowError] = []
    for message in messages:
        topic, value = message.topic(), message.value()
        where = f"{topic}[{message.partition()}]"
        table = TOPIC_TABLES.get(topic)
        parsed = parse_message(TABLES[table], value) if table else f"unknown topic {topic}"
        if isinstance(parsed, str):
            raw = (value or b"").decode("utf-8", errors="replace")
            rejects.append(RowError(where, message.offset(), parsed, raw))
        else:
            rows[table].append({**parsed, "_offset": message.offset()})
    tables = {
        name: pa.Table.from_pylist(found, schema=_schema(TABLES[name]))
        for name, found in rows.items()
        if found
    }
    return tables, rejects


def consume(
    settings: Settings,
    *,
    topics: Iterable[str] = TOPICS,
    group_id: str = GROUP_ID,
    batch_messages: int = BATCH_MESSAGES,
    idle_stop_s: float | None = None,
    max_messages: int | None = None,
    stop: threading.Event | None = None,
    on_batch: Callable[[ConsumeReport], None] | None = None,
) -> ConsumeReport:
    """Consume until `stop` is set, `max_messages` were written, or `idle_stop_s` pass
    without a message (counted once every topic has partitions assigned)."""
    from confluent_kafka import Consumer

    with open_engine(settings, kind="embedded") as engine:
        engine.apply()  # idempotent: the tables exist before the first batch
    consumer = Consumer(
        {
            **confluent_config(settings),
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "topic.metadata.refresh.interval.ms": 5000,  # see topics created after we start
        }
    )
    report = ConsumeReport()
    try:
        _check_connection(consumer, settings)
        wanted, owned = set(topics), set()

        def on_assign(_: Any, partitions: list[Any]) -> None:
            owned.update(p.topic for p in partitions)

        # Idle time counts only once every topic has partitions assigned: right after
        # the topics are created, a first assignment can still miss some of them.
        consumer.subscribe(sorted(wanted), on_assign=on_assign)
        idle_since = time.monotonic()
        while not (stop and stop.is_set()):
            messages = [m for m in consumer.consume(batch_messages, POLL_TIMEOUT_S) if _ok(m)]
            if not messages:
                if not wanted <= owned:
                    idle_since = _check_join(idle_since)
                elif idle_stop_s is not None and time.monotonic() - idle_since > idle_stop_s:
                    break
                continue
            _write(settings, messages, report)
            consumer.commit(asynchronous=False)  # only after the DuckDB commit
            idle_since = time.monotonic()
            if on_batch:
                on_batch(report)
            if max_messages is not None and report.messages >= max_messages:
                break
    finally:
        consumer.close()
    return report


def _check_connection(consumer: Any, settings: Settings) -> None:
    from confluent_kafka import KafkaException

    try:
        consumer.list_topics(timeout=CONNECT_TIMEOUT_S)
    except KafkaException as error:
        raise ConsumerError(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers} "
            f"(KAFKA_BOOTSTRAP_SERVERS) within {CONNECT_TIMEOUT_S:.0f} s: {error}"
        ) from error


def _check_join(asked_at: float) -> float:
    """Still waiting for the group to hand us partitions; give up after JOIN_TIMEOUT_S."""
    if time.monotonic() - asked_at > JOIN_TIMEOUT_S:
        raise ConsumerError(
            f"not all topics were assigned within {JOIN_TIMEOUT_S:.0f} s: do they exist? "
            "(python kafka/producer.py creates them)"
        )
    return asked_at


def _ok(message: Any) -> bool:
    """Skip end-of-partition events; anything else that is an error stops the run."""
    from confluent_kafka import KafkaError

    error = message.error()
    if error is None:
        return True
    if error.code() == KafkaError._PARTITION_EOF:
        return False
    raise ConsumerError(f"Kafka error on {message.topic()}: {error}")


def _write(settings: Settings, messages: list[Any], report: ConsumeReport) -> None:
    tables, rejects = to_batches(messages)
    engine = DuckDBEngine(settings)  # held only for this batch
    try:
        engine.write_batch(tables, rejects, source="kafka", order_column="_offset")
    finally:
        engine.close()
    report.messages += len(messages)
    report.batches += 1
    report.rejected += len(rejects)
    for name, table in tables.items():
        report.rows[name] = report.rows.get(name, 0) + table.num_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle-stop", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds without a message")  # fmt: skip
    parser.add_argument("--group", default=GROUP_ID, help="Kafka consumer group id")
    args = parser.parse_args(argv)
    settings = load_settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def show(report: ConsumeReport) -> None:
        print(f"\r{report.messages:,} messages, {report.rejected:,} rejected", end="", flush=True)

    try:
        report = consume(
            settings, group_id=args.group, idle_stop_s=args.idle_stop, stop=stop, on_batch=show
        )
    except KeyboardInterrupt:
        print("\nstopped")
        return 0
    except ConsumerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\nrows written: {report.rows}; rejected messages: {report.rejected} (table rejects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
