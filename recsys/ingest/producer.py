"""CSV -> Kafka: every row of the H&M files becomes one typed JSON message, and none is lost.

Rows come from `recsys.ingest.loaders` (typed and validated); valid rows go to their topic,
rejected rows to `<topic>.dlq` with file, line, reason and the raw text. Each transaction
carries an `event_id` made from its content (`recsys.ingest.events`): a re-run after a failure,
or the same rows in another file, is deduplicated downstream exactly, while a new day's
file adds new events. `days` (the CLI's `--from`/`--until`) sends only some days'
transactions: the initial load leaves a week out, a replay sends it.

The producer is idempotent (acks=all) and waits for every delivery report: a message
that finally fails is counted, named, and makes the run's `Summary.ok` false (and the
CLI's exit code non-zero).

The Kafka clients, topics and connection settings are `recsys.ingest.kafka_clients`'.

    from recsys.ingest.producer import produce
    summary = produce(load_settings(), data_dir, topics=["transactions_topic"], limit=1000)
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from recsys.datasets.hm_schema import ID_PATTERNS, TABLES, Kind, Table
from recsys.ingest.events import DayRange, TransactionEvents, add_day_arguments, day_range
from recsys.ingest.kafka_clients import (
    DELIVERY_TIMEOUT_S,
    TABLE_TOPICS,
    TOPICS,
    Client,
    KafkaSetupError,
    dlq_topic,
    ensure_topics,
    make_client,
)
from recsys.ingest.loaders import RowError, iter_batches
from recsys.settings import ConfigError, Settings, load_settings

BATCH_ROWS = 50_000  # loader batch: larger ones cost memory and were no faster (docs/kafka.md)
FAILED_IDS_SHOWN = 20
EXIT_INTERRUPTED = 130  # the shell's code for a run ended by Ctrl-C (128 + SIGINT)
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'  # what JSON requires escaping inside a string
# validated to digits / hex / YYYY-MM-DD by the loaders: nothing to escape
_PLAIN_TEXT_KINDS = {*ID_PATTERNS, Kind.DATE}


@dataclass
class TopicSummary:
    """Counts for one topic. `read` counts the file's lines after the header (equal to
    sent + rejected + skipped unless interrupted); `skipped` counts valid transactions
    outside the day range; `failed` counts both kinds of message."""

    topic: str
    read: int = 0
    sent: int = 0
    rejected: int = 0
    skipped: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    value_bytes: int = 0  # JSON bytes of the messages sent to the topic (not the DLQ)
    failed_ids: list[str] = field(default_factory=list)  # the first few, for the report

    @property
    def rate(self) -> float:
        return (self.sent + self.rejected) / self.elapsed_s if self.elapsed_s else 0.0


@dataclass
class Summary:
    topics: dict[str, TopicSummary]
    interrupted: bool = False  # stopped early (Ctrl-C): what was read is still delivered
    days: DayRange = field(default_factory=DayRange)  # the transactions' days sent

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(t.failed == 0 for t in self.topics.values())

    def table(self) -> str:
        head = (
            f"{'topic':<20} {'read':>11} {'sent':>11} {'rejected':>9} {'failed':>7} "
            f"{'seconds':>8} {'msg/s':>9}"
        )
        rows = [
            f"{t.topic:<20} {t.read:>11,} {t.sent:>11,} {t.rejected:>9,} {t.failed:>7,} "
            f"{t.elapsed_s:>8.1f} {t.rate:>9,.0f}"
            for t in self.topics.values()
        ]
        notes = [
            f"{t.topic}: {t.skipped:,} rows outside {self.days} not sent"
            for t in self.topics.values()
            if t.skipped
        ] + [
            f"{t.topic}: {t.failed:,} not delivered, e.g. {', '.join(t.failed_ids)}"
            for t in self.topics.values()
            if t.failed
        ]
        return "\n".join([head, *rows, *notes])


# ---------------------------------------------------------------- JSON, built per batch


def encode_json(batch: pa.Table, spec: Table) -> pa.Array:
    """One JSON object per row (binary array), built with Arrow string kernels, not per row.

    An `event_id` column (transactions, from `TransactionEvents`) comes first.
    Text that can never need escaping (validated ids, dates, event ids) and is never null
    gets its quotes from the literal parts: the hot path for transactions is one join.
    """
    parts: list = ["{"]
    if "event_id" in batch.column_names:
        parts += ['"event_id":"', batch.column("event_id").combine_chunks(), '",']
    for i, column in enumerate(spec.columns):
        values = batch.column(column.name).combine_chunks()
        name = ("," if i else "") + json.dumps(column.name) + ":"
        if column.required and column.kind in _PLAIN_TEXT_KINDS:
            parts += [name + '"', pc.cast(values, pa.string()), '"']
        else:
            parts += [name, _json_values(values, column.kind)]
    parts.append("}")
    return pc.binary_join_element_wise(*_merge_literals(parts), "").cast(pa.binary())


def _merge_literals(parts: list) -> list:
    """Adjacent literal strings joined into one: fewer arguments for the join kernel."""
    merged: list = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return merged


def _json_values(values: pa.Array, kind: Kind) -> pa.Array:
    """JSON text of each value: strings quoted (escaped), floats keep a '.', nulls -> null."""
    if kind in _PLAIN_TEXT_KINDS:
        text = pc.binary_join_element_wise('"', pc.cast(values, pa.string()), '"', "")
    elif kind is Kind.TEXT:
        text = pc.binary_join_element_wise('"', values, '"', "")
        needs_escape = pc.fill_null(pc.match_substring_regex(values, _NEEDS_ESCAPE), False)
        if pc.any(needs_escape).as_py():  # rare (quotes in detail_desc): json.dumps those
            rows = np.flatnonzero(needs_escape.to_numpy(zero_copy_only=False))
            escaped = [json.dumps(v, ensure_ascii=False) for v in values.take(rows).to_pylist()]
            text = pc.replace_with_mask(text, needs_escape, pa.array(escaped))
    elif kind is Kind.FLOAT:  # Arrow prints 1.0 as "1"; JSON readers would see an int
        text = pc.cast(values, pa.string())
        exponent = pc.match_substring(text, "e")  # 1e+22 is a valid JSON float as it is
        integral = pc.and_(pc.equal(pc.floor(values), values), pc.invert(exponent))
        text = pc.if_else(integral, pc.binary_join_element_wise(text, ".0", ""), text)
    elif kind is Kind.INT:
        text = pc.cast(values, pa.string())
    else:
        raise TypeError(f"no JSON encoding for {kind}")
    return pc.fill_null(text, "null")


def dead_letter(error: RowError) -> bytes:
    """The DLQ record: `raw` is cut by the loader (RAW_KEPT_CHARS), `raw_bytes` is the
    whole line's size, so a 10 MB line still fits under the broker's message limit."""
    record = {"file": error.file, "line": error.line, "reason": error.reason}
    record |= {"raw": error.raw, "raw_bytes": error.raw_bytes}
    return json.dumps(record, ensure_ascii=False).encode()


# ---------------------------------------------------------------- the producer
def produce(
    settings: Settings,
    data_dir: Path | str | None = None,
    topics: list[str] | tuple[str, ...] | None = None,
    limit: int | None = None,
    replay_speedup: float | None = None,
    *,
    days: DayRange | None = None,
    progress: bool = False,
    delivery_timeout_s: float = DELIVERY_TIMEOUT_S,
    stop: threading.Event | None = None,
) -> Summary:
    """Send the CSV rows of `data_dir` to their topics; wait for every delivery report.

    `limit` caps the rows read per topic; `replay_speedup` paces transactions by t_dat
    (one day of data per 86400 / speedup seconds); `days` keeps only the transactions of
    those days (the other files are sent whole; malformed lines are reported whatever
    their day, which may not be readable). Raises KafkaSetupError when Kafka is
    unreachable or rejects the credentials; delivery failures are in the Summary.
    Setting `stop` (the CLI's Ctrl-C) ends the run after the chunk being sent; what was
    sent is still flushed and counted, and the Summary says it was interrupted.
    """
    stop = stop or threading.Event()
    days = days or DayRange()
    data_dir = Path(data_dir or settings.data_dir)
    topics = list(topics or TOPICS)
    unknown = sorted(set(topics) - set(TOPICS))
    if unknown:
        raise KafkaSetupError(f"unknown topic(s) {unknown}: choose from {list(TOPICS)}")
    for table, topic in TABLE_TOPICS.items():  # fail on a missing file before sending anything
        if topic in topics and not (data_dir / TABLES[table].file).is_file():
            raise FileNotFoundError(
                f"{data_dir / TABLES[table].file}: not found (needed for {topic})"
            )
    client = make_client(settings, delivery_timeout_s)
    try:
        ensure_topics(client, topics, settings.kafka_partitions)
        summaries = {}
        for table, topic in TABLE_TOPICS.items():  # dimension topics first
            if topic in topics and not stop.is_set():
                pacer = (
                    _Pacer(replay_speedup) if replay_speedup and table == "transactions" else None
                )
                events = TransactionEvents(days) if table == "transactions" else None
                summaries[topic] = _produce_table(
                    client, TABLES[table], data_dir, limit, pacer, events, progress, stop
                )
        return Summary(summaries, interrupted=stop.is_set(), days=days)
    finally:
        client.close()


def _produce_table(
    client: Client,
    spec: Table,
    data_dir: Path,
    limit: int | None,
    pacer: _Pacer | None,
    events: TransactionEvents | None,
    progress: bool,
    stop: threading.Event,
) -> TopicSummary:
    """One file to its topic. `events` (transactions only) cuts the rows to its day range
    and adds the event ids, in file order, before replay pacing reorders them."""
    topic = TABLE_TOPICS[spec.name]
    summary = TopicSummary(topic)
    started = time.perf_counter()
    with _progress_bar(topic, data_dir / spec.file, enabled=progress) as bar:
        for valid, errors in _read(spec, data_dir, limit):
            if errors:
                client.send(dlq_topic(topic), [dead_letter(e) for e in errors],
                            [f"{e.file}:{e.line}".encode() for e in errors])  # fmt: skip
                summary.rejected += len(errors)
                bar.update(len(errors))
            rows = valid
            if events is not None:
                rows = events.take(valid)
                summary.skipped += valid.num_rows - rows.num_rows
                bar.update(valid.num_rows - rows.num_rows)
            for chunk in pacer.paced(rows, client, stop) if pacer else [rows]:
                values = encode_json(chunk, spec)
                summary.value_bytes += pc.sum(pc.binary_length(values)).as_py() or 0
                client.send(topic, _as_bytes(values), _as_bytes(chunk.column(spec.key)))
                summary.sent += chunk.num_rows
                bar.update(chunk.num_rows, chunk)
                if stop.is_set():
                    break
            if stop.is_set():  # lines of this batch not sent are not counted as read
                summary.read = summary.sent + summary.rejected + summary.skipped
                break
            summary.read += _lines_of(valid, errors)
        failed = client.flush()
    ids = failed.get(topic, []) + failed.get(dlq_topic(topic), [])
    summary.failed = len(ids)
    summary.failed_ids = ids[:FAILED_IDS_SHOWN]
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _lines_of(valid: pa.Table, errors: list[RowError]) -> int:
    """Lines a loader batch covers (its lines are consecutive): counted from the line
    numbers, not from the rows, so a line that went missing would show."""
    numbers = [*valid.column("_line").to_numpy(), *(e.line for e in errors)]
    return int(max(numbers) - min(numbers) + 1) if numbers else 0


def _as_bytes(values: pa.Array | pa.ChunkedArray) -> list[bytes]:
    """Python bytes per value; via NumPy, 3x faster than pyarrow 14's to_pylist()."""
    return values.cast(pa.binary()).to_numpy(zero_copy_only=False).tolist()


def _read(
    spec: Table, data_dir: Path, limit: int | None
) -> Iterator[tuple[pa.Table, list[RowError]]]:
    """The loader's batches, cut after `limit` rows (valid or not) in file order."""
    left = limit
    for valid, errors in iter_batches(spec.name, data_dir, batch_rows=BATCH_ROWS):
        if left is not None and valid.num_rows + len(errors) > left:
            lines = np.sort(
                np.concatenate([valid.column("_line").to_numpy(), [e.line for e in errors]])
            )
            last = lines[left - 1] if left else 0
            valid = valid.filter(pc.less_equal(valid.column("_line"), last))
            errors = [e for e in errors if e.line <= last]
        yield valid, errors
        if left is not None:
            left -= valid.num_rows + len(errors)
            if left <= 0:
                return


class _Pacer:
    """Replay: the rows of day d are sent at start + (d - first day) * 86400 / speedup s.

    Days are whole (t_dat has no time), so each day's rows go out together when its
    slot begins. The Kaggle file is in date order; a row dated earlier than the day
    being replayed is late and goes out at once.
    """

    def __init__(self, speedup: float) -> None:
        if speedup <= 0:
            raise KafkaSetupError(f"--speedup must be positive, got {speedup}")
        self.seconds_per_day = 86400 / speedup
        self.first_day: int | None = None
        self.started = 0.0

    def paced(self, batch: pa.Table, client: Client, stop: threading.Event) -> Iterator[pa.Table]:
        days = pc.cast(batch.column("t_dat"), pa.int32()).to_numpy()
        order = np.argsort(days, kind="stable")
        batch, days = batch.take(order), days[order]
        if self.first_day is None and len(days):
            self.first_day, self.started = int(days[0]), time.monotonic()
        bounds = np.flatnonzero(np.diff(days)) + 1
        for start, end in zip([0, *bounds], [*bounds, len(days)], strict=True):
            if start == end:
                continue
            due = self.started + (int(days[start]) - self.first_day) * self.seconds_per_day
            while not stop.is_set() and (left := due - time.monotonic()) > 0:
                client.wait(min(left, 0.5))
            if stop.is_set():
                return
            yield batch.slice(start, end - start)


class _progress_bar:  # noqa: N801 - used as a context manager like open()
    """tqdm bar with rate and ETA; the total is estimated from the file size."""

    def __init__(self, topic: str, path: Path, enabled: bool) -> None:
        self._path, self._bar = path, None
        if enabled:
            self._bar = tqdm(desc=topic, unit=" msg", unit_scale=True, dynamic_ncols=True)

    def update(self, rows: int, batch: pa.Table | None = None) -> None:
        if self._bar is None:
            return
        if self._bar.total is None and batch is not None and batch.num_rows:  # CSV bytes/row
            names = [n for n in batch.column_names if n not in ("_line", "event_id")]
            text_bytes = sum(
                pc.sum(pc.binary_length(pc.cast(batch.column(n), pa.string()))).as_py() or 0
                for n in names
            )
            per_row = text_bytes / batch.num_rows + len(names)  # a comma or newline each
            self._bar.total = int(self._path.stat().st_size / per_row)
        self._bar.update(rows)

    def __enter__(self) -> _progress_bar:
        return self

    def __exit__(self, *_exc) -> None:
        if self._bar is not None:
            self._bar.total = self._bar.n
            self._bar.close()


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python kafka/producer.py",
        description="Produce the H&M CSV files to Kafka (settings: KAFKA_* in local.env).",
    )
    parser.add_argument("--data", type=Path, default=None, help="data dir (default: DATA_DIR)")
    add = parser.add_argument
    add("--topics", nargs="+", default=list(TOPICS), choices=TOPICS, metavar="TOPIC",
        help=f"default: all of {' '.join(TOPICS)}")  # fmt: skip
    add("--replay", action="store_true", help="pace transactions by t_dat")
    add("--speedup", type=float, default=86400.0,
        help="with --replay: one day of data takes 86400/N s (default: 1 s)")  # fmt: skip
    add("--limit", type=int, default=None, help="at most N rows read per topic")
    add_day_arguments(parser)
    add("--delivery-timeout", type=float, default=DELIVERY_TIMEOUT_S,
        help="seconds before an unacknowledged message counts as failed")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    days = day_range(args, parser)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, _first_interrupt(stop))
    try:
        settings = load_settings()
        print(f"producing to {settings.kafka_bootstrap_servers} with {settings.kafka_client} "
              f"({settings.kafka_security_protocol})", file=sys.stderr)  # fmt: skip
        summary = produce(
            settings,
            args.data,
            topics=args.topics,
            limit=args.limit,
            replay_speedup=args.speedup if args.replay else None,
            days=days,
            progress=not args.no_progress and sys.stderr.isatty(),
            delivery_timeout_s=args.delivery_timeout,
            stop=stop,
        )
    except (KafkaSetupError, ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted twice: stopped without waiting for delivery reports; run the "
            "producer again (re-sent rows are deduplicated downstream)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    print(summary.table())
    if summary.interrupted:
        print(
            "interrupted: the rows counted above were sent; the rest of the files was not "
            "read. Run the producer again to send everything (re-sent rows are deduplicated "
            "downstream by event_id; the other topics are keyed upserts).",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if not summary.ok:
        print("some messages were not delivered: run the producer again; transactions are "
              "deduplicated downstream by event_id, the other topics are keyed upserts.",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _first_interrupt(stop: threading.Event):  # noqa: ANN202 - a signal handler
    """Ctrl-C: finish the chunk being sent, flush, print the summary; a second one quits."""

    def handler(_signum: int, _frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("\nstopping: waiting for the messages already sent (Ctrl-C again to quit now)",
              file=sys.stderr)  # fmt: skip

    return handler


if __name__ == "__main__":
    sys.exit(main())
