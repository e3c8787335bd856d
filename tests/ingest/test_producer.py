"""The CSV -> Kafka producer against a real broker: nothing lost, nothing altered."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pty
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

from recsys.datasets.hm_schema import TABLES
from recsys.ingest.events import DayRange, TransactionEvents
from recsys.ingest.kafka_clients import TABLE_TOPICS, KafkaSetupError, create_topics, dlq_topic
from recsys.ingest.loaders import RAW_KEPT_CHARS, iter_batches
from recsys.ingest.producer import encode_json, produce
from recsys.ingest.producer import main as producer_main
from recsys.settings import load_settings
from tests.csv_cases import TX_HEADER, CsvCase, csv_files
from tests.fixtures_kafka import (
    SASL_PASSWORD,
    SASL_USER,
    consume_all,
    end_offsets,
    kafka_settings,
)

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ["confluent", "kafka-python"]
KAFKA_PYTHON_LIMIT = 1_000  # kafka-python is ~30k msg/s: keep its tests quick


def expected_messages(
    table: str, data_dir: Path, limit: int | None = None, days: DayRange | None = None
) -> dict[str, dict]:
    """What each valid source row must look like on the topic, by its source line."""
    spec = TABLES[table]
    events = TransactionEvents(days or DayRange())
    rows: dict[str, dict] = {}
    for valid, _ in iter_batches(table, data_dir):
        for row in (events.take(valid) if table == "transactions" else valid).to_pylist():
            line = row.pop("_line")
            row = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
            rows[f"{spec.file}:{line}"] = dict(
                sorted(row.items(), key=lambda i: i[0] != "event_id")
            )
    return dict(list(rows.items())[:limit]) if limit else rows


def typed(record: dict) -> dict:
    """Values with their JSON types, so 1 and 1.0 (or "1") never compare equal."""
    return {k: (type(v).__name__, v) for k, v in record.items()}


@pytest.mark.kafka
@pytest.mark.parametrize("client", CLIENTS)
def test_topics_hold_exactly_the_source_rows(kafka_broker, fresh_topics, tiny_data, client):
    limit = KAFKA_PYTHON_LIMIT if client == "kafka-python" else None
    settings = kafka_settings(kafka_broker, KAFKA_CLIENT=client)

    summary = produce(settings, tiny_data, limit=limit)

    assert summary.ok, summary.table()
    for table, topic in TABLE_TOPICS.items():
        expected = expected_messages(table, tiny_data, limit)
        records = consume_all(kafka_broker.bootstrap, topic)
        counts = summary.topics[topic]
        assert counts.read == counts.sent + counts.rejected == len(expected), topic
        assert len(records) == counts.sent and counts.failed == 0, topic
        key = TABLES[table].key
        assert all(r.key == r.value[key] for r in records), f"{topic}: key is not {key}"
        got = sorted((typed(r.value) for r in records), key=repr)
        assert got == sorted((typed(v) for v in expected.values()), key=repr), topic
    transactions = consume_all(kafka_broker.bootstrap, "transactions_topic")
    assert len({r.value["event_id"] for r in transactions}) == len(transactions)


def test_json_encoding_keeps_types_nulls_and_escapes():
    """Unit check of the vectorised encoder on the awkward values (no broker needed)."""
    spec = TABLES["customers"]
    batch = pa.table(
        {
            "customer_id": ["0" * 64, "a" * 64],
            "FN": [1.0, 1e22],
            "Active": [None, 2.5e-7],
            "club_member_status": ['say "hi"\\ \n\t', None],
            "fashion_news_frequency": ["Ünïcode €", ""],
            "age": pa.array([None, 49], pa.int64()),
            "postal_code": [None, "b" * 64],
        }
    )
    import json

    decoded = [json.loads(v) for v in encode_json(batch, spec).to_pylist()]
    assert decoded[0] == {
        "customer_id": "0" * 64, "FN": 1.0, "Active": None, "club_member_status": 'say "hi"\\ \n\t',
        "fashion_news_frequency": "Ünïcode €", "age": None, "postal_code": None,
    }  # fmt: skip
    assert type(decoded[0]["FN"]) is float and type(decoded[1]["age"]) is int
    assert decoded[1]["Active"] == 2.5e-7 and decoded[1]["fashion_news_frequency"] == ""
    assert decoded[1]["FN"] == 1e22 and type(decoded[1]["FN"]) is float


BAD_LINES = {  # malformed row -> what its reason must mention
    "2020-07-01,{c},0124005001,0.05,1,extra": "expected 5 columns",
    "2020-07-01,{c},0124005001,cheap,1": "price",
    "2020-13-45,{c},0124005001,0.05,1": "t_dat",
    "2020-07-01,,0124005001,0.05,1": "customer_id",
    "2020-07-01,{c},124005001,0.05,1": "article_id",  # lost its leading zero
}


@pytest.fixture
def data_with_bad_rows(tiny_data: Path, tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """The first 200 tiny transactions with malformed rows spliced in; line -> reason."""
    lines = (tiny_data / "transactions_train.csv").read_text().splitlines()[:201]
    customer = lines[1].split(",")[1]
    bad: dict[int, str] = {}
    for i, (text, reason) in enumerate(BAD_LINES.items()):
        at = 10 + 40 * i  # 0-based list index == 1-based line number - 1
        lines.insert(at, text.format(c=customer))
        bad[at + 1] = reason
    (tmp_path / "transactions_train.csv").write_text("\n".join(lines) + "\n")
    return tmp_path, bad


@pytest.mark.kafka
def test_malformed_rows_go_to_the_dead_letter_topic(kafka_broker, fresh_topics, data_with_bad_rows):
    data_dir, bad = data_with_bad_rows
    summary = produce(kafka_settings(kafka_broker), data_dir, topics=["transactions_topic"])

    counts = summary.topics["transactions_topic"]
    assert (counts.read, counts.sent, counts.rejected, counts.failed) == (205, 200, 5, 0)
    letters = consume_all(kafka_broker.bootstrap, dlq_topic("transactions_topic"))
    by_line = {r.value["line"]: r.value for r in letters}
    assert sorted(by_line) == sorted(bad)
    source = (data_dir / "transactions_train.csv").read_text().splitlines()
    for line, reason in bad.items():
        letter = by_line[line]
        assert letter["file"] == "transactions_train.csv"
        assert reason in letter["reason"]
        assert letter["raw"].split(",")[:4] == source[line - 1].split(",")[:4]
    good = consume_all(kafka_broker.bootstrap, "transactions_topic")
    expected = expected_messages("transactions", data_dir)
    assert sorted((typed(r.value) for r in good), key=repr) == sorted(
        (typed(v) for v in expected.values()), key=repr
    )
    assert len(expected) == 200 and not {f"transactions_train.csv:{n}" for n in bad} & set(expected)


def run_cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "kafka" / "producer.py"), "--no-progress", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
    )  # fmt: skip


def cli_env(kafka_broker, data_dir: Path, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    return env | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap,
        "DATA_DIR": str(data_dir),
        **extra,
    }


def start_replay_then_outage(kafka_broker, env, delivery_timeout: str, down_s: float):
    """Replay ~8 s of transactions; once they flow, stop the broker for `down_s` seconds."""
    days = (dt.date(2020, 9, 22) - dt.date(2020, 7, 1)).days  # the tiny scale's date range
    speedup = str(days * 86400 / 8)
    args = ["--topics", "transactions_topic", "--replay", "--speedup", speedup]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "kafka" / "producer.py"), "--no-progress", *args,
         "--delivery-timeout", delivery_timeout],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    wait_until_messages_arrive(kafka_broker.bootstrap, "transactions_topic")
    assert proc.poll() is None, proc.communicate()
    kafka_broker.stop()
    time.sleep(down_s)
    kafka_broker.start()
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out + err


def wait_until_messages_arrive(bootstrap: str, topic: str, timeout: float = 60) -> None:
    """The producer has started (its start-up is slow on a busy machine)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "tests-watch"})
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            partitions = consumer.list_topics(topic, timeout=5).topics[topic].partitions or {}
            try:
                ends = [
                    consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in partitions
                ]
            except KafkaException:  # just created: no leader elected yet
                ends = []
            if sum(ends) > 0:
                return
            time.sleep(0.2)
    finally:
        consumer.close()
    raise TimeoutError(f"no message reached {topic} within {timeout} s")


def assert_exactly_once_after_dedup(kafka_broker, tiny_data: Path) -> None:
    records = consume_all(kafka_broker.bootstrap, "transactions_topic")
    unique = {r.value["event_id"]: r.value for r in records}
    expected = {v["event_id"]: v for v in expected_messages("transactions", tiny_data).values()}
    assert len(unique) == len(expected)
    assert all(typed(unique[k]) == typed(v) for k, v in expected.items())


@pytest.mark.kafka
@pytest.mark.slow
def test_broker_restart_mid_run_loses_nothing(kafka_broker, fresh_topics, tiny_data):
    env = cli_env(kafka_broker, tiny_data)
    code, output = start_replay_then_outage(kafka_broker, env, delivery_timeout="120", down_s=1)

    assert code == 0, output  # the outage is shorter than the delivery timeout: all delivered
    assert "transactions_topic" in output and " 15,000 " in output
    assert_exactly_once_after_dedup(kafka_broker, tiny_data)


@pytest.mark.kafka
@pytest.mark.slow
def test_undelivered_messages_are_named_and_a_rerun_completes(
    kafka_broker, fresh_topics, tiny_data
):
    env = cli_env(kafka_broker, tiny_data)
    code, output = start_replay_then_outage(kafka_broker, env, delivery_timeout="1", down_s=4)

    assert code == 1, output
    assert re.search(r"not delivered, e\.g\. 2020-\d\d-\d\d:[0-9a-f]{16}:\d+", output), output
    rerun = run_cli("--topics", "transactions_topic", env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert_exactly_once_after_dedup(kafka_broker, tiny_data)


@pytest.mark.kafka
@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_address_fails_fast_with_a_clear_message(tiny_data, client):
    from recsys.ingest.broker import free_port

    settings = load_settings(
        env={"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", "KAFKA_CLIENT": client}
    )
    started = time.monotonic()
    with pytest.raises(
        KafkaSetupError, match=r"cannot reach Kafka at 127\.0\.0\.1:\d+ \(KAFKA_BOOTSTRAP"
    ):
        produce(settings, tiny_data)
    assert time.monotonic() - started < 20


@pytest.mark.kafka
@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_credentials_fail_fast_with_a_clear_message(kafka_broker, tiny_data, client):
    def sasl(password: str):
        return load_settings(
            env={
                "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.sasl_bootstrap,
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_API_KEY": SASL_USER,
                "KAFKA_API_SECRET": password,
                "KAFKA_CLIENT": client,
            }
        )

    create_topics(sasl(SASL_PASSWORD), ["images_topic"])  # the listener itself works
    started = time.monotonic()
    with pytest.raises(KafkaSetupError, match=r"rejected the credentials \(KAFKA_API_KEY"):
        produce(sasl("wrong-secret"), tiny_data)
    assert time.monotonic() - started < 20


@pytest.mark.kafka
def test_cli_reports_a_summary_and_exit_code(kafka_broker, fresh_topics, tiny_data):
    result = run_cli(
        "--topics", "customers_topic", "--limit", "50", env=cli_env(kafka_broker, tiny_data)
    )
    assert result.returncode == 0, result.stderr
    assert "customers_topic" in result.stdout and " 50 " in result.stdout

    missing = run_cli(env=cli_env(kafka_broker, tiny_data / "nowhere"))
    assert missing.returncode == 2 and "nowhere/articles.csv" in missing.stderr


@pytest.mark.kafka
def test_until_then_from_send_every_transaction_once(kafka_broker, fresh_topics, tiny_data):
    """`--until D` then `--from D`: the whole file, each row once, with the whole file's ids."""
    day, settings = dt.date(2020, 9, 1), kafka_settings(kafka_broker)
    topic = ["transactions_topic"]
    first = produce(settings, tiny_data, topics=topic, days=DayRange(until=day))
    since = end_offsets(kafka_broker.bootstrap, topic[0])
    second = produce(settings, tiny_data, topics=topic, days=DayRange(since=day))

    records = consume_all(kafka_broker.bootstrap, topic[0])
    later = consume_all(kafka_broker.bootstrap, topic[0], since=since)
    expected = expected_messages("transactions", tiny_data)
    assert sorted((typed(r.value) for r in records), key=repr) == sorted(
        (typed(v) for v in expected.values()), key=repr
    )
    assert len({r.value["event_id"] for r in records}) == len(records) == len(expected)
    assert min(r.value["t_dat"] for r in later) == day.isoformat()
    assert 0 < len(later) < len(records)
    before, after = first.topics[topic[0]], second.topics[topic[0]]
    assert (before.sent, after.sent) == (len(records) - len(later), len(later))
    assert (before.skipped, after.skipped) == (after.sent, before.sent)
    assert all(c.read == c.sent + c.rejected + c.skipped for c in (before, after))
    assert f"{before.skipped:,} rows outside days before 2020-09-01 not sent" in first.table()


@pytest.mark.kafka
def test_cli_days_are_checked_and_reported(
    kafka_broker, fresh_topics, tiny_data, capsys, monkeypatch
):
    """The command line's --from/--until (run in this process: python startup is slow)."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_broker.bootstrap)
    monkeypatch.setenv("DATA_DIR", str(tiny_data))
    for argv, message in [
        (["--until", "2020-09-31"], "--until='2020-09-31': expected a calendar day"),
        (["--from", "2020-09-10", "--until", "2020-09-10"], "is not before --until"),
    ]:
        with pytest.raises(SystemExit) as exited:
            producer_main(["--topics", "transactions_topic", *argv])
        assert exited.value.code == 2 and message in capsys.readouterr().err
    assert producer_main(["--topics", "transactions_topic", "--from", "2020-09-15"]) == 0
    assert "rows outside days from 2020-09-15 not sent" in capsys.readouterr().out
    days = {r.value["t_dat"] for r in consume_all(kafka_broker.bootstrap, "transactions_topic")}
    assert min(days) == "2020-09-15"


@pytest.mark.kafka
def test_replay_paces_transactions_by_day(kafka_broker, fresh_topics, tiny_data, tmp_path):
    lines = (tiny_data / "transactions_train.csv").read_text().splitlines()
    days = sorted({line[:10] for line in lines[1:]})[:4]
    kept = [lines[0], *(line for line in lines[1:] if line[:10] in days)]
    (tmp_path / "transactions_train.csv").write_text("\n".join(kept) + "\n")
    first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
    seconds_per_day = 0.5

    started = time.monotonic()
    summary = produce(kafka_settings(kafka_broker), tmp_path, topics=["transactions_topic"],
                      replay_speedup=86400 / seconds_per_day)  # fmt: skip
    elapsed = time.monotonic() - started

    assert summary.ok and summary.topics["transactions_topic"].sent == len(kept) - 1
    assert elapsed >= (last - first).days * seconds_per_day
    records = sorted(
        consume_all(kafka_broker.bootstrap, "transactions_topic"), key=lambda r: r.timestamp_ms
    )
    assert [r.value["t_dat"] for r in records] == sorted(r.value["t_dat"] for r in records)


# ---------------------------------------------------------------- bad input (issue 14)


@pytest.mark.kafka
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=csv_files(max_lines=40))
def test_producer_sends_every_good_row_and_reports_every_bad_line(
    kafka_broker, fresh_topics, case: CsvCase
):
    """The same random files as the loader's test, through the real broker: the topic holds
    exactly the good rows (values exact), the dead-letter topic every other line, with
    the fast path's reasons. Each example reads what it produced (topics are not recreated
    per example: a just-recreated topic can briefly lack a leader)."""
    topics = ["transactions_topic", "transactions_topic.dlq"]
    create_topics(kafka_settings(kafka_broker), topics=["transactions_topic"])
    since = {topic: end_offsets(kafka_broker.bootstrap, topic) for topic in topics}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "transactions_train.csv").write_bytes(case.data)
        summary = produce(kafka_settings(kafka_broker), tmp, topics=["transactions_topic"])
        fast_path = {e.line: e.reason for _, errors in iter_batches("transactions", tmp)
                     for e in errors}  # fmt: skip
    counts = summary.topics["transactions_topic"]
    bad_lines = case.lines - len(case.good)
    assert (counts.read, counts.sent, counts.rejected) == (case.lines, len(case.good), bad_lines)
    sent = {r.value.pop("event_id"): r.value for r in
            consume_all(kafka_broker.bootstrap, topics[0], since=since[topics[0]])}  # fmt: skip
    ids = case.event_ids()
    assert sent == {
        ids[line]: {**row.values(), "t_dat": row.t_dat.isoformat()}
        for line, row in case.good.items()
    }
    letters = consume_all(kafka_broker.bootstrap, topics[1], since=since[topics[1]])
    assert {r.value["line"]: r.value["reason"] for r in letters} == fast_path
    assert all(len(r.value["raw"]) <= RAW_KEPT_CHARS for r in letters)


@pytest.mark.kafka
def test_huge_line_dead_letter_is_truncated_with_its_size(kafka_broker, fresh_topics, tmp_path):
    good = "2020-09-01," + "a" * 64 + ",0108775015,0.05,2\n"
    huge = good.replace(",2\n", "," + "x" * 10_000_000 + "\n")  # line 102
    body = (good * 100 + huge + good * 14_000).encode() + b"2020-09-01,\xff\n"
    (tmp_path / "transactions_train.csv").write_bytes(TX_HEADER + body)
    summary = produce(kafka_settings(kafka_broker), tmp_path, topics=["transactions_topic"])
    counts = summary.topics["transactions_topic"]
    assert summary.ok and (counts.read, counts.sent, counts.rejected) == (14_102, 14_100, 2)
    letters = {
        r.value["line"]: r.value
        for r in consume_all(kafka_broker.bootstrap, "transactions_topic.dlq")
    }
    assert letters[102]["raw_bytes"] == len(huge.encode()) - 1
    assert len(letters[102]["raw"]) == RAW_KEPT_CHARS
    assert letters[14_103]["reason"] == "not UTF-8 text"


@pytest.mark.kafka
def test_ctrl_c_flushes_prints_the_summary_and_exits_130(kafka_broker, fresh_topics, tiny_data):
    """On a terminal the bar counts messages as they go out; Ctrl-C ends with the summary."""
    master, terminal = pty.openpty()
    env = cli_env(kafka_broker, tiny_data)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "kafka" / "producer.py"), "--topics", "transactions_topic",
         "--replay", "--speedup", "43200"],  # 2 s per day of data
        stdout=subprocess.PIPE, stderr=terminal, stdin=subprocess.DEVNULL, env=env, cwd=ROOT,
    )  # fmt: skip
    os.close(terminal)
    shown = b""
    while not re.search(rb"%[ |]*[1-9][0-9.]*k?/", shown):  # the bar counts real messages
        shown += os.read(master, 4096)  # (an error here: the run ended without counting)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    with contextlib.suppress(OSError):
        while chunk := os.read(master, 65536):
            shown += chunk
    os.close(master)
    assert proc.returncode == 130, shown.decode(errors="replace")
    assert b"Traceback" not in shown and b"interrupted" in shown
    row = next(line for line in stdout.decode().splitlines() if line.startswith("transactions"))
    read, sent, rejected = (int(v.replace(",", "")) for v in row.split()[1:4])
    assert sent > 0 and read == sent + rejected
    assert len(consume_all(kafka_broker.bootstrap, "transactions_topic")) == sent
