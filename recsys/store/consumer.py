"""Kafka -> the embedded engine's base tables, continuously, losing nothing.

Each poll returns a batch of messages. The batch is checked against the JSON contract
(ARCHITECTURE.md) with the loaders' own `check_text`, so it accepts exactly what the
producer sends, and written to DuckDB in one transaction: valid rows to the base
tables, bad messages to `rejects` with topic, partition, offset and reason, and the
next offset of each partition to `kafka_offsets`. The file, not the consumer group,
says where to resume: a crash before the commit re-reads the batch, one after it
does not, and a fresh file starts every topic from the beginning. No message can
stop the consumer: what fails to decode, to type or to insert is a reject.

The DuckDB file is opened for each batch and closed right after, so that readers
(the Streamlit app, the flow) can open it between batches; while a reader holds it,
the consumer waits (and says so), however long the reader takes, and SIGTERM or Ctrl-C
still stops it at once. A service holding the file (`python -m recsys.serve`) is not a
short reader: the consumer refuses to start beside it, naming it (`recsys.store.holder`).

    python -m recsys.store.consumer                  # runs until Ctrl-C
    python -m recsys.store.consumer --idle-stop 5    # stops after 5 s without messages
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from recsys.datasets.hm_schema import TABLES, Column, Kind, Table
from recsys.ingest.kafka_clients import (
    TABLE_TOPICS,
    TOPICS,
    ConfluentClient,
    KafkaSetupError,
    confluent_config,
)
from recsys.ingest.loaders import RowError, check_text, row_error
from recsys.settings import ConfigError, Settings, load_settings
from recsys.store.engine import DuckDBEngine
from recsys.store.holder import FileHeld, Holder

GROUP_ID = "hm-embedded-engine"
BATCH_MESSAGES = 20_000
POLL_TIMEOUT_S = 0.2
JOIN_TIMEOUT_S = 120.0
TOPIC_TABLES = {topic: table for table, topic in TABLE_TOPICS.items()}
# what the database refuses because of a row's content (not a full disk or a lock)
_DATA_ERRORS = (duckdb.DataError, duckdb.IntegrityError, pa.ArrowException)
log = logging.getLogger(__name__)


class ConsumerError(RuntimeError):
    """Kafka is unreachable or refused us; the message names the setting to check."""


@dataclass(frozen=True)
class Committed:
    """What one committed batch changed: its purchases new to the file (distinct events
    per day, customer and article: `DuckDBEngine.write_batch`) and the customers whose
    profile row it wrote. What the service's online state applies after the commit."""

    purchases: pa.Table  # t_dat, customer_id, article_id, units
    customers: list[str]


@dataclass
class ConsumeReport:
    """What a run wrote: valid rows per table and messages kept aside in `rejects`."""

    messages: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    batches: int = 0


class _Number(str):
    """A JSON number, kept as its own text: checked by the loaders' rules, never a float."""


def message_fields(columns: Sequence[Column], value: bytes | None) -> list[str] | str:
    """The text of each column's JSON value ("" for null), or why the message is unusable.

    Numbers stay text so that `check_text` sees exactly what a CSV field would give,
    and the consumer accepts what the producer sends and nothing else. Any failure to
    decode (bad bytes, 200 kB of nested arrays: RecursionError) is a reason, never a crash.
    """
    try:
        record = json.loads(
            value or b"", parse_int=_Number, parse_float=_Number, parse_constant=_Number
        )
    except Exception as error:  # noqa: BLE001 - any input that breaks the decoder is a reject
        return f"not valid JSON: {type(error).__name__}: {str(error)[:200]}"
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    texts = []
    for column in columns:
        field_value = record.get(column.name)
        if field_value is None:
            texts.append("")
            continue
        number = column.kind in (Kind.INT, Kind.FLOAT)
        if not isinstance(field_value, str) or isinstance(field_value, _Number) != number:
            wanted = "a number" if number else "a string"
            return f"{column.name}: expected {wanted}, got {_json_type(field_value)}"
        texts.append(str(field_value))
    return texts


def _json_type(value: Any) -> str:
    if isinstance(value, _Number):
        return f"the number {value[:40]}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return {bool: "a boolean", list: "an array", dict: "an object"}.get(type(value), "null")


def _columns(spec: Table) -> list[Column]:
    """A topic's columns: the table's, and the stable event id for transactions."""
    if spec.name == "transactions":
        return [Column("event_id", Kind.TEXT, required=True), *spec.columns]
    return list(spec.columns)


def to_batches(messages: Sequence[Any]) -> tuple[dict[str, pa.Table], list[RowError]]:
    """Split confluent-kafka messages into typed Arrow tables per table, and rejects."""
    rejects: list[RowError] = []
    by_table: dict[str, list[tuple[Any, list[str]]]] = {}
    for message in messages:
        topic = message.topic()
        table = TOPIC_TABLES.get(topic)
        fields = (
            message_fields(_columns(TABLES[table]), message.value())
            if table
            else f"unknown topic {topic}"
        )
        if isinstance(fields, str):
            rejects.append(_reject(message, fields))
        else:
            by_table.setdefault(table, []).append((message, fields))
    tables = {}
    for table, found in by_table.items():
        columns = _columns(TABLES[table])
        raw = pa.table(
            {c.name: pa.array([f[i] for _, f in found], pa.string()) for i, c in enumerate(columns)}
        )
        typed, bad, reasons = check_text(raw, columns)
        offsets = pa.array([m.offset() for m, _ in found], pa.int64())
        tables[table] = typed.append_column("_offset", offsets).filter(pa.array(~bad))
        rejects += [_reject(found[i][0], reasons[i]) for i in np.flatnonzero(bad)]
    return {name: t for name, t in tables.items() if t.num_rows}, rejects


def _reject(message: Any, reason: str) -> RowError:
    where = f"{message.topic()}[{message.partition()}]"
    return row_error(where, message.offset(), reason, message.value() or b"")


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
    on_commit: Callable[[Committed], None] | None = None,
    held: DuckDBEngine | None = None,
    poll_timeout_s: float = POLL_TIMEOUT_S,
) -> ConsumeReport:
    """Consume until `stop` is set, `max_messages` were written, or `idle_stop_s` pass
    without a message (counted from the moment every topic has partitions assigned and
    each of them was read to its end: a slow group join never counts as idle time).

    Each assigned partition starts where the DuckDB file says it stopped (its
    `kafka_offsets` table), or at the beginning for a file that never saw it: a fresh
    file is never filled from the middle of a topic. `on_commit` sees what each
    committed write changed (`Committed`), before the offsets are committed to Kafka.
    `held`: a writer the caller holds (the service's, as a cursor of its one database),
    used for every batch instead of opening the file for each. `poll_timeout_s`: how long
    a poll gathers messages into one batch (and one transaction) at most.
    """
    from confluent_kafka import Consumer

    with _writer(settings, held) as engine:
        engine.apply()  # idempotent: the tables exist before the first batch
    _check_connection(settings)
    consumer = Consumer(
        {
            **confluent_config(settings),
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "topic.metadata.refresh.interval.ms": 5000,  # see topics created after we start
            "enable.partition.eof": True,  # tells when a partition was read to its end
        }
    )
    report = ConsumeReport()
    try:
        assignment = _Assignment(settings, set(topics), held)
        consumer.subscribe(sorted(assignment.wanted), on_assign=assignment.on_assign)
        subscribed_at, last_message = time.monotonic(), None
        while not (stop and stop.is_set()) and not _reached(report, max_messages):
            polled = consumer.consume(batch_messages, poll_timeout_s)
            messages = [m for m in polled if _ok(m, assignment)]
            if not messages:
                if not assignment.complete:
                    _check_join(subscribed_at)
                elif idle_stop_s is not None and assignment.caught_up_at is not None:
                    quiet_since = max(assignment.caught_up_at, last_message or 0.0)
                    if time.monotonic() - quiet_since > idle_stop_s:
                        break
                continue
            _write(settings, messages, report, on_commit, held)
            _commit(consumer, _next_offsets(messages))
            last_message = time.monotonic()
            if on_batch:
                on_batch(report)
    finally:
        consumer.close()
    return report


def _reached(report: ConsumeReport, max_messages: int | None) -> bool:
    return max_messages is not None and report.messages >= max_messages


class _Assignment:
    """Seeks each partition the group hands us to the file's stored offset, and notes
    when every wanted topic is assigned and read to its end (the idle clock starts then)."""

    def __init__(
        self, settings: Settings, wanted: set[str], held: DuckDBEngine | None = None
    ) -> None:
        self.settings, self.wanted, self.held = settings, wanted, held
        self.owned: set[str] = set()
        self.partitions: set[tuple[str, int]] = set()
        self.at_end: set[tuple[str, int]] = set()
        self.caught_up_at: float | None = None

    @property
    def complete(self) -> bool:
        return self.wanted <= self.owned

    def reached_end(self, topic: str, partition: int) -> None:
        self.at_end.add((topic, partition))
        if self.caught_up_at is None and self.complete and self.partitions <= self.at_end:
            self.caught_up_at = time.monotonic()

    def on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        from confluent_kafka import OFFSET_BEGINNING

        with _writer(self.settings, self.held) as engine:  # waits for readers, never gives up
            stored = engine.kafka_offsets()
        for partition in partitions:
            partition.offset = stored.get((partition.topic, partition.partition), OFFSET_BEGINNING)
        consumer.assign(partitions)
        self.owned.update(p.topic for p in partitions)
        self.partitions = {(p.topic, p.partition) for p in partitions}
        self.at_end, self.caught_up_at = set(), None


def _check_connection(settings: Settings) -> None:
    """The producer's check: fails within seconds, telling wrong credentials from an
    unreachable broker."""
    try:
        ConfluentClient(settings).check_connection()
    except KafkaSetupError as error:
        raise ConsumerError(str(error)) from None


def _check_join(subscribed_at: float) -> None:
    """Still waiting for the group to hand us partitions; give up after JOIN_TIMEOUT_S."""
    if time.monotonic() - subscribed_at > JOIN_TIMEOUT_S:
        raise ConsumerError(
            f"not all topics were assigned within {JOIN_TIMEOUT_S:.0f} s: do they exist? "
            "(python kafka/producer.py creates them)"
        )


def _ok(message: Any, assignment: _Assignment) -> bool:
    """Note end-of-partition events and skip the broker's passing outages (librdkafka
    reconnects by itself: a broker restarted mid-replay loses nothing, since the file
    holds the offsets); any other error stops the run."""
    from confluent_kafka import KafkaError

    error = message.error()
    if error is None:
        return True
    if error.code() == KafkaError._PARTITION_EOF:
        assignment.reached_end(message.topic(), message.partition())
        return False
    passing = (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT)
    if error.code() in passing or error.retriable():
        log.warning("Kafka: %s (retrying)", error)
        return False
    raise ConsumerError(f"Kafka error on {message.topic()}: {error}")


def _commit(consumer: Any, offsets: dict[tuple[str, int], int]) -> None:
    """Tell the group how far we are (for lag monitoring): the offsets the file has just
    stored, after its commit (a commit of the consumer's own positions was one past the
    file's on some partitions: tests/serve/test_serve_processes.py). The DuckDB file holds
    the offsets that count, so a refused commit (the group moved on while we waited for a
    reader) is reported, not fatal."""
    from confluent_kafka import KafkaException, TopicPartition

    try:
        partitions = [TopicPartition(t, p, offset) for (t, p), offset in offsets.items()]
        consumer.commit(offsets=partitions, asynchronous=False)
    except KafkaException as error:
        log.warning("offset commit to Kafka failed (the DuckDB file has them): %s", error)


def _write(
    settings: Settings,
    messages: list[Any],
    report: ConsumeReport,
    on_commit: Callable[[Committed], None] | None = None,
    held: DuckDBEngine | None = None,
) -> None:
    """Write one batch; a batch the database refuses is split until the message it
    refuses is alone, and that one goes to `rejects`: the others are written."""
    tables, rejects = to_batches(messages)
    offsets = _next_offsets(messages)
    try:
        new = _write_once(settings, tables, rejects, offsets, on_commit is not None, held)
    except _DATA_ERRORS as error:
        if len(messages) > 1:
            half = len(messages) // 2
            _write(settings, messages[:half], report, on_commit, held)
            _write(settings, messages[half:], report, on_commit, held)
            return
        tables, rejects = {}, [_reject(messages[0], f"not written: {error}")]
        new = _write_once(settings, tables, rejects, offsets, on_commit is not None, held)
    if on_commit is not None:
        customers = tables.get("customers")
        ids = [] if customers is None else customers.column("customer_id").to_pylist()
        on_commit(Committed(new, ids))
    report.messages += len(messages)
    report.batches += 1
    report.rejected += len(rejects)
    for name, table in tables.items():
        report.rows[name] = report.rows.get(name, 0) + table.num_rows


def _write_once(
    settings: Settings,
    tables: dict[str, pa.Table],
    rejects: list[RowError],
    offsets: dict[tuple[str, int], int],
    new_purchases: bool = False,
    held: DuckDBEngine | None = None,
) -> pa.Table | None:
    with _writer(settings, held) as engine:
        return engine.write_batch(
            tables, rejects, source="kafka", order_column="_offset", offsets=offsets,
            new_purchases=new_purchases,
        )  # fmt: skip


@contextmanager
def _writer(settings: Settings, held: DuckDBEngine | None) -> Iterator[DuckDBEngine]:
    """`held`, or the file opened for this batch alone (readers get in between batches)."""
    if held is not None:
        yield held
        return
    engine = DuckDBEngine(settings)
    try:
        yield engine
    finally:
        engine.close()


def _next_offsets(messages: list[Any]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the offset after the last message of the batch."""
    offsets: dict[tuple[str, int], int] = {}
    for message in messages:
        key = (message.topic(), message.partition())
        offsets[key] = max(offsets.get(key, 0), message.offset() + 1)
    return offsets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle-stop", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds without a message")  # fmt: skip
    parser.add_argument("--group", default=GROUP_ID, help="Kafka consumer group id")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="\n%(levelname)s %(message)s")
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        holder = Holder(settings.duckdb_path, "consumer")
    except FileHeld as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # SIGTERM as Ctrl-C: it also ends a wait for a reader's lock. Each batch is one
    # transaction with its offsets, so stopping anywhere loses and repeats nothing.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    def show(report: ConsumeReport) -> None:
        print(f"\r{report.messages:,} messages, {report.rejected:,} rejected", end="", flush=True)

    try:
        report = consume(settings, group_id=args.group, idle_stop_s=args.idle_stop, on_batch=show)
    except KeyboardInterrupt:
        print("\nstopped")
        return 0
    except ConsumerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        holder.release()
    print(f"\nrows written: {report.rows}; rejected messages: {report.rejected} (table rejects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
