"""The Kafka path into the embedded engine, against the real local broker.

Each test starts from deleted topics (`fresh_topics`): the broker is shared with other
tests and what they produced must not leak into the view contents checked here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys import producer as producer_module
from recsys.consumer import ConsumerError, consume
from recsys.engine import DuckDBEngine, load_objects, open_engine
from recsys.producer import create_topics, produce
from recsys.settings import Settings
from tests.fixtures_engine import engine_settings_for, rows_of

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
    monkeypatch.setattr(producer_module, "CONNECT_TIMEOUT_S", 2.0)
    settings = engine_settings_for(tmp_path, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9")
    with pytest.raises(ConsumerError, match="KAFKA_BOOTSTRAP_SERVERS"):
        consume(settings, idle_stop_s=1)
