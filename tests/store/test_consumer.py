"""The Kafka path into the embedded engine, against the real local broker.

Each test starts from deleted topics (`fresh_topics`): the broker is shared with other
tests and what they produced must not leak into the view contents checked here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.ingest import kafka_clients
from recsys.ingest.events import DayRange
from recsys.ingest.kafka_clients import create_topics
from recsys.ingest.loaders import RAW_KEPT_CHARS
from recsys.ingest.producer import produce
from recsys.settings import Settings
from recsys.store import engine as engine_module
from recsys.store.consumer import ConsumerError, consume
from recsys.store.engine import DuckDBEngine, open_engine
from recsys.store.sql_objects import load_objects
from tests.csv_cases import TX_HEADER, CsvCase, csv_files
from tests.fixtures_engine import engine_settings_for, rows_of
from tests.fixtures_kafka import SASL_USER, end_offsets

pytestmark = pytest.mark.kafka
IDLE_S = 30.0  # safety net only: a cold broker can take seconds before the first fetch
HEX = "ab" * 32


def send(settings: Settings, topic: str, values: list[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for value in values:
        producer.produce(topic, value=value, key=HEX.encode())
    assert producer.flush(30) == 0


def tx(line: int, day: str, article: str = "0108775015", price: float = 0.05) -> bytes:
    return json.dumps(
        {
            "event_id": f"extra.csv:{line}",
            "t_dat": day,
            "customer_id": HEX,
            "article_id": article,
            "price": price,
            "sales_channel_id": 2,
        }
    ).encode()


@pytest.fixture
def stream_settings(kafka_broker, fresh_topics, tmp_path: Path) -> Settings:  # noqa: ANN001
    settings = engine_settings_for(tmp_path, KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap)
    create_topics(settings)
    return settings


def view_contents(engine: DuckDBEngine) -> dict[str, list[tuple]]:
    return {
        obj.name: sorted(rows_of(engine, f"SELECT * FROM {obj.name}"), key=repr)
        for obj in load_objects()
        if obj.is_view
    }


def test_kafka_path_gives_the_same_views_as_the_csv_path(
    stream_settings: Settings, tiny_data: Path, tmp_path: Path
) -> None:
    summary = produce(stream_settings, tiny_data)
    assert summary.ok
    expected = sum(topic.sent for topic in summary.topics.values())
    report = consume(stream_settings, max_messages=expected, idle_stop_s=IDLE_S)
    assert report.messages == expected
    assert report.rejected == 0 and report.rows["transactions"] > 0

    csv_settings = engine_settings_for(tmp_path / "csv")
    (tmp_path / "csv").mkdir()
    with open_engine(csv_settings) as csv_engine, open_engine(stream_settings) as kafka_engine:
        csv_engine.apply()
        csv_engine.load_csv(tiny_data)
        from_csv, from_kafka = view_contents(csv_engine), view_contents(kafka_engine)
    assert from_kafka["filtered_dataframe_t"], "tiny data should fill the training view"
    for view, rows in from_csv.items():
        assert from_kafka[view] == rows, view


def test_views_follow_new_events_and_absorb_redeliveries(stream_settings: Settings) -> None:
    send(stream_settings, "transactions_topic", [tx(1, "2020-09-01"), tx(2, "2020-09-02")])
    consume(stream_settings, max_messages=2, idle_stop_s=IDLE_S)
    with open_engine(stream_settings, read_only=True) as engine:
        query = "SELECT t_dat, units FROM filtered_dataframe_t ORDER BY t_dat"
        before = rows_of(engine, query)
        assert [units for _, units in before] == [1, 1]

    # event 2 delivered again (absorbed), a second unit on 2020-09-02 (folded), a new day
    send(
        stream_settings,
        "transactions_topic",
        [tx(2, "2020-09-02"), tx(3, "2020-09-02"), tx(4, "2020-09-03", price=0.07)],
    )
    report = consume(stream_settings, max_messages=3, idle_stop_s=IDLE_S)
    assert report.rows == {"transactions": 3}
    with open_engine(stream_settings, read_only=True) as engine:
        after = rows_of(engine, query)
        assert [(str(day), units) for day, units in after] == [
            ("2020-09-01", 1),
            ("2020-09-02", 2),
            ("2020-09-03", 1),
        ]
        # offsets of the first run were committed: nothing was read twice
        assert rows_of(engine, "SELECT COUNT(*) FROM transactions_raw") == [(5,)]


def test_bad_messages_are_counted_and_kept_aside(stream_settings: Settings) -> None:
    bad = [b"{not json", b'["a list"]', tx(9, "2020-02-30"), json.dumps({"t_dat": 1}).encode()]
    send(stream_settings, "transactions_topic", [*bad, tx(10, "2020-09-01")])
    report = consume(stream_settings, max_messages=5, idle_stop_s=IDLE_S)
    assert report.rejected == 4 and report.rows == {"transactions": 1}
    with open_engine(stream_settings, read_only=True) as engine:
        rejects = rows_of(engine, "SELECT source, file, line, reason, raw FROM rejects")
    assert {r[0] for r in rejects} == {"kafka"}
    assert all(r[1].startswith("transactions_topic[") for r in rejects)
    reasons = " | ".join(r[3] for r in rejects)
    for expected in (
        "not valid JSON",
        "expected a JSON object",
        "calendar date",
        "t_dat: expected a string",
    ):
        assert expected in reasons
    assert b"{not json".decode() in {r[4] for r in rejects}


def test_a_failed_database_write_loses_nothing(
    stream_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offsets are committed only after the DuckDB commit: a crash means redelivery."""
    send(stream_settings, "transactions_topic", [tx(1, "2020-09-01"), tx(2, "2020-09-02")])

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(DuckDBEngine, "write_batch", crash)
        with pytest.raises(RuntimeError, match="disk full"):
            consume(stream_settings, idle_stop_s=IDLE_S)
    report = consume(stream_settings, max_messages=2, idle_stop_s=IDLE_S)
    assert report.rows == {"transactions": 2}  # redelivered: the crash lost nothing


def test_unreachable_kafka_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_clients, "CONNECT_TIMEOUT_S", 2.0)
    settings = engine_settings_for(tmp_path, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9")
    with pytest.raises(ConsumerError, match="KAFKA_BOOTSTRAP_SERVERS"):
        consume(settings, idle_stop_s=1)


# ---------------------------------------------------------------- bad input (issue 14)

NESTED = b"[" * 100_000 + b"]" * 100_000  # 200 kB: RecursionError in json.loads
GOOD = json.loads(tx(0, "2020-09-01"))


def message(**changes: object) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


POISON = {  # message -> what its reason must mention
    NESTED: "not valid JSON: RecursionError",
    message(sales_channel_id=10**30): "sales_channel_id is not an integer within BIGINT",
    message(event_id="e-nan").replace(b"0.05", b"NaN"): "price is not a finite number",
    message(event_id="e-inf").replace(b"0.05", b"1e999"): "price is not a finite number",
    message(t_dat="2020-02-30"): "t_dat is not a calendar date",
    message(price="0.05"): "price: expected a number",
    message(article_id=108775015): "article_id: expected a string",
    message(sales_channel_id=True): "sales_channel_id: expected a number",
    message(customer_id=None): "empty customer_id",
    b'{"event_id": "\xff"}': "not valid JSON",
    b"": "not valid JSON",
}


def stored_rows(settings: Settings) -> dict[str, dict]:
    """transactions_raw by event id: column -> value."""
    with open_engine(settings, read_only=True) as engine:
        rows = rows_of(engine, "SELECT * FROM transactions_raw")
        columns = list(engine.query("SELECT * FROM transactions_raw LIMIT 0").columns)
    return {row["event_id"]: row for row in (dict(zip(columns, r, strict=True)) for r in rows)}


def test_poison_messages_do_not_stop_consumer(stream_settings: Settings) -> None:
    good = [tx(n, "2020-09-01") for n in range(1, 4)]
    send(stream_settings, "transactions_topic", [good[0], *POISON, *good[1:]])
    report = consume(stream_settings, max_messages=len(POISON) + 3, idle_stop_s=IDLE_S)
    assert report.rejected == len(POISON) and report.rows == {"transactions": 3}
    with open_engine(stream_settings, read_only=True) as engine:
        rejects = rows_of(engine, "SELECT line, reason, raw FROM rejects ORDER BY line")
    assert [line for line, _, _ in rejects] == list(range(1, len(POISON) + 1))  # offsets
    for (_, reason, raw), expected in zip(rejects, POISON.values(), strict=True):
        assert expected in reason and len(raw) <= RAW_KEPT_CHARS
    assert sorted(stored_rows(stream_settings)) == [f"extra.csv:{n}" for n in (1, 2, 3)]


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=csv_files(max_lines=30), poison=st.lists(st.sampled_from(list(POISON)), max_size=6))
def test_consumer_accepts_exactly_what_the_producer_sends(
    stream_settings: Settings, case: CsvCase, poison: list[bytes]
) -> None:
    """Random CSV files through the real producer, poison pills beside them: the file gets
    exactly the good rows (values exact), every poison pill is a reject. Each example uses
    a new DuckDB file that starts where the topic ended before the example."""
    bootstrap = stream_settings.kafka_bootstrap_servers
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "transactions_train.csv").write_bytes(case.data)
        example = engine_settings_for(data, KAFKA_BOOTSTRAP_SERVERS=bootstrap)
        since = end_offsets(bootstrap, "transactions_topic")
        with open_engine(example) as engine:
            engine.apply()
            engine.write_batch({}, offsets={("transactions_topic", p): o for p, o in since.items()})
        produce(example, data, topics=["transactions_topic"])
        send(example, "transactions_topic", poison)
        new = sum(end_offsets(bootstrap, "transactions_topic").values()) - sum(since.values())
        report = consume(example, max_messages=new, idle_stop_s=IDLE_S)
        rows = stored_rows(example)
    assert (report.messages, report.rejected) == (new, len(poison))
    assert {
        event_id: {k: v for k, v in row.items() if k != "event_id"}
        for event_id, row in rows.items()
    } == {case.event_ids()[line]: row.values() for line, row in case.good.items()}


def test_fresh_database_file_starts_from_the_beginning(
    stream_settings: Settings, tmp_path: Path
) -> None:
    """The group has committed offsets for another file: a new file still gets everything,
    and the first file, consumed again, gets nothing twice."""
    send(stream_settings, "transactions_topic", [tx(n, "2020-09-01") for n in range(5)])
    assert consume(stream_settings, max_messages=5, idle_stop_s=IDLE_S).messages == 5
    fresh = engine_settings_for(
        tmp_path / "fresh", KAFKA_BOOTSTRAP_SERVERS=stream_settings.kafka_bootstrap_servers
    )
    (tmp_path / "fresh").mkdir()
    assert consume(fresh, max_messages=5, idle_stop_s=IDLE_S).messages == 5
    assert len(stored_rows(fresh)) == 5
    assert consume(stream_settings, idle_stop_s=1).messages == 0
    with open_engine(stream_settings, read_only=True) as engine:
        assert rows_of(engine, "SELECT topic, SUM(next_offset) FROM kafka_offsets GROUP BY 1") == [
            ("transactions_topic", 5)
        ]


def test_long_reader_does_not_stop_consumer(
    stream_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A reader holds the file longer than readers may wait: the consumer waits, reports, writes."""
    monkeypatch.setattr(engine_module, "LOCK_RETRY_SECONDS", 0.5)  # what a reader would wait
    monkeypatch.setattr(engine_module, "LOCK_REPORT_S", 1.0)
    with open_engine(stream_settings) as engine:
        engine.apply()
    hold_s = 4
    reader = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], "
         "read_only=True); print('holding', flush=True); time.sleep(float(sys.argv[2]))",
         str(stream_settings.duckdb_path), str(hold_s)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert reader.stdout.readline().strip() == "holding"
    started = time.monotonic()
    send(stream_settings, "transactions_topic", [tx(1, "2020-09-01"), tx(2, "2020-09-02")])
    with caplog.at_level(logging.WARNING, logger="recsys.store.engine"):
        report = consume(stream_settings, max_messages=2, idle_stop_s=IDLE_S)
    assert reader.wait(timeout=30) == 0
    assert report.rows == {"transactions": 2}
    assert time.monotonic() - started >= hold_s - 1
    assert "waiting" in caplog.text and str(stream_settings.duckdb_path) in caplog.text


def test_idle_stop_starts_after_assignment(stream_settings: Settings) -> None:
    """An idle limit shorter than the group join still reads what is waiting."""
    send(stream_settings, "transactions_topic", [tx(n, "2020-09-01") for n in range(50)])
    report = consume(stream_settings, idle_stop_s=0.2)
    assert report.rows == {"transactions": 50}


def test_wrong_kafka_credentials_are_named_as_such(kafka_broker, tmp_path: Path) -> None:
    settings_ = engine_settings_for(
        tmp_path,
        KAFKA_BOOTSTRAP_SERVERS=kafka_broker.sasl_bootstrap,
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_API_KEY=SASL_USER,
        KAFKA_API_SECRET="wrong-secret",
    )
    started = time.monotonic()
    with pytest.raises(ConsumerError, match="rejected the credentials"):
        consume(settings_, idle_stop_s=1)
    assert time.monotonic() - started < 12


# ---------------------------------------------------------------- event ids and days (issue 12)


def expected_dedup(lines: list[str]) -> list[tuple]:
    """dedup_transactions_t computed from CSV lines, every line a purchase: (day, customer,
    article) -> units = lines, price and channel = their highest."""
    groups: dict[tuple, list[tuple[float, int]]] = {}
    for line in lines:
        day, customer, article, price, channel = line.split(",")
        key = (dt.date.fromisoformat(day), customer, article)
        groups.setdefault(key, []).append((float(price), int(channel)))
    return sorted(
        (*key, len(v), max(p for p, _ in v), max(c for _, c in v)) for key, v in groups.items()
    )


def send_files(settings: Settings, folder: Path, *files: list[str]) -> None:
    """Each of `files` (lines) as a transactions file through the real producer, then
    the consumer until it has written them all."""
    sent = 0
    for number, lines in enumerate(files):
        path = folder / f"file-{number}" / "transactions_train.csv"
        path.parent.mkdir(parents=True)
        path.write_text(TX_HEADER.decode() + "\n".join(lines) + "\n")
        topic = produce(settings, path.parent, topics=["transactions_topic"]).topics
        assert (topic["transactions_topic"].sent, topic["transactions_topic"].failed) == (
            len(lines),
            0,
        )
        sent += len(lines)
    assert consume(settings, max_messages=sent, idle_stop_s=IDLE_S).messages == sent


def dedup_rows(settings: Settings) -> list[tuple]:
    with open_engine(settings, read_only=True) as engine:
        return rows_of(engine, "SELECT * FROM dedup_transactions_t ORDER BY ALL")


def test_a_new_days_file_adds_its_rows_and_a_resent_or_reordered_file_adds_nothing(
    stream_settings: Settings, tiny_data: Path, tmp_path: Path
) -> None:
    """A shop's daily files, all named transactions_train.csv: each new day's rows are
    new events; the same file again, or its rows reordered and split, are redeliveries.
    Identical lines (several units) are separate purchases throughout."""
    lines = (tiny_data / "transactions_train.csv").read_text().splitlines()[1:]
    lines = [line for line in lines if line >= "2020-09-08"]  # three weeks: quick
    yesterday = [line for line in lines if line < "2020-09-22"]
    today = [line for line in lines if line >= "2020-09-22"]
    assert len(set(today)) < len(today), "the day should hold identical lines"

    send_files(stream_settings, tmp_path / "yesterday", yesterday)
    assert dedup_rows(stream_settings) == expected_dedup(yesterday)
    send_files(stream_settings, tmp_path / "today", today)
    whole = dedup_rows(stream_settings)
    assert whole == expected_dedup(yesterday + today)  # every row of the new file counted

    shuffled = random.Random(12).sample(lines, len(lines))
    half = len(lines) // 2
    send_files(stream_settings, tmp_path / "again", today, shuffled[:half], shuffled[half:])
    assert dedup_rows(stream_settings) == whole
    with open_engine(stream_settings, read_only=True) as engine:
        deliveries, events = rows_of(
            engine, "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM transactions_t"
        )[0]
    assert (deliveries, events) == (2 * len(lines) + len(today), len(lines))


def test_csv_load_until_a_day_then_kafka_from_it_gives_the_whole_files_views(
    stream_settings: Settings, tiny_data: Path, tmp_path: Path
) -> None:
    """The live shop's path: the CSV load leaves the last week out (DATA_UNTIL), the
    producer replays it (--from); the views equal a load of the whole file, and sending
    the whole file again through Kafka changes nothing (the CSV path's ids are the
    producer's)."""
    data, day = tmp_path / "data", dt.date(2020, 9, 16)
    data.mkdir()
    for name in ("articles.csv", "customers.csv", "images.csv"):
        (data / name).symlink_to(tiny_data / name)
    lines = (tiny_data / "transactions_train.csv").read_text().splitlines()
    recent = [line for line in lines[1:] if line >= "2020-09-08"]  # two weeks: quick
    (data / "transactions_train.csv").write_text("\n".join([lines[0], *recent]) + "\n")
    live = engine_settings_for(
        tmp_path,
        KAFKA_BOOTSTRAP_SERVERS=stream_settings.kafka_bootstrap_servers,
        DATA_UNTIL=day.isoformat(),
    )
    with open_engine(live) as engine:
        engine.apply()
        loaded = engine.load_csv(data)
        assert loaded.skipped > 0
        assert rows_of(engine, "SELECT MAX(t_dat) FROM transactions_t") == [
            (day - dt.timedelta(1),)
        ]
    replay = produce(live, data, topics=["transactions_topic"], days=DayRange(since=day))
    sent = replay.topics["transactions_topic"].sent
    assert sent == loaded.skipped
    assert consume(live, max_messages=sent, idle_stop_s=IDLE_S).messages == sent

    csv_settings = engine_settings_for(tmp_path / "csv")
    (tmp_path / "csv").mkdir()
    with open_engine(csv_settings) as csv_engine:
        csv_engine.apply()
        csv_engine.load_csv(data)
        whole = view_contents(csv_engine)
    with open_engine(live, read_only=True) as engine:
        assert view_contents(engine) == whole

    again = produce(live, data, topics=["transactions_topic"]).topics["transactions_topic"]
    assert consume(live, max_messages=again.sent, idle_stop_s=IDLE_S).messages == again.sent
    assert dedup_rows(live) == sorted(whole["dedup_transactions_t"])
    with open_engine(live, read_only=True) as engine:
        assert rows_of(engine, "SELECT COUNT(DISTINCT event_id) FROM transactions_t") == [
            (len(whole["transactions_t"]),)
        ]
