"""Shared fixtures: one real Kafka broker per test session, and helpers to read topics back.

    def test_x(kafka_broker, fresh_topics):
        settings = kafka_settings(kafka_broker)
        produce(settings, data_dir)
        records = consume_all(kafka_broker.bootstrap, "transactions_topic")

The broker listens on free ports (brokers of other sessions run beside it), keeps its data in
a temp dir, joins consumer groups without delay, and offers a SASL_PLAINTEXT/PLAIN listener
(`sasl_bootstrap`, user SASL_USER / SASL_PASSWORD) for real authentication failures.
Without Java or Maven the Kafka tests skip, naming what to install; with CI=true they fail.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from recsys.ingest.broker import (
    BrokerError,
    LocalBroker,
    MissingToolError,
    fetch_jars,
    free_port,
    require_java,
)
from recsys.ingest.kafka_clients import TOPICS, dlq_topic
from recsys.settings import Settings, load_settings

SASL_USER = "alice"
SASL_PASSWORD = "alice-secret"
TEST_BROKER_CONFIG = {
    "group.initial.rebalance.delay.ms": "0",  # the first consumer's join is not held back
    "group.min.session.timeout.ms": "500",  # so tests may use short session.timeout.ms
    "num.partitions": "3",
}


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A running broker: `.bootstrap`, `.stop()`, `.start()` (same data dir and port)."""
    try:
        require_java()
        fetch_jars()
    except MissingToolError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Kafka tests must run in CI: {exc}")
        pytest.skip(str(exc))
    data_dir = tmp_path_factory.mktemp("kafka-broker")
    broker = _start_on_free_ports(data_dir)
    try:
        yield broker
    finally:
        broker.stop()


def _start_on_free_ports(data_dir: Path, attempts: int = 3) -> LocalBroker:
    """Another session may take a port between our pick and the bind: pick again."""
    for attempt in range(attempts):
        broker = LocalBroker(
            data_dir=data_dir,
            port=free_port(),
            sasl_port=free_port(),
            sasl_users={SASL_USER: SASL_PASSWORD},
            overrides=TEST_BROKER_CONFIG,
        )
        try:
            broker.start()
            return broker
        except BrokerError:
            broker.stop()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture
def fresh_topics(kafka_broker: LocalBroker) -> None:
    """Delete the pipeline topics and their dead-letter topics, so a test sees only its own."""
    delete_topics(kafka_broker.bootstrap, [n for t in TOPICS for n in (t, dlq_topic(t))])


def kafka_settings(broker: LocalBroker, **env: str) -> Settings:
    """Settings pointing at the test broker; `env` adds or overrides variables."""
    return load_settings(env={"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, **env})


def delete_topics(bootstrap: str, names: list[str], timeout: float = 30.0) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    doomed = [n for n in names if n in existing]
    if not doomed:
        return
    for future in admin.delete_topics(doomed, operation_timeout=timeout).values():
        future.result()
    deadline = time.monotonic() + timeout
    while set(doomed) & set(admin.list_topics(timeout=10).topics):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {doomed} still exist after {timeout} s")
        time.sleep(0.2)


@dataclass(frozen=True)
class Record:
    key: str | None
    value: dict
    partition: int
    offset: int
    timestamp_ms: int


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> offset the next message will get (pass to consume_all's `since`).

    A topic created a moment ago may have no leader yet: that error is waited out."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "tests-readback"})
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                return {
                    p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in partitions
                }
            except KafkaException:  # NOT_LEADER_FOR_PARTITION, which is not marked retriable
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        consumer.close()


def consume_all(
    bootstrap: str, topic: str, timeout: float = 30.0, since: dict[int, int] | None = None
) -> list[Record]:
    """Every message of `topic` from the beginning (or the offsets `since`) to its current
    end (no consumer group)."""
    from confluent_kafka import Consumer, TopicPartition

    since = since or {}
    ends = end_offsets(bootstrap, topic)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "tests-readback", "enable.auto.commit": False}
    )
    try:
        todo = {p for p, end in ends.items() if end > since.get(p, 0)}
        consumer.assign([TopicPartition(topic, p, since.get(p, 0)) for p in todo])
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: partitions {sorted(todo)} not read to the end")
            for msg in consumer.consume(10_000, timeout=0.5):
                if msg.error():
                    raise RuntimeError(f"{topic}: {msg.error()}")
                key = msg.key().decode() if msg.key() is not None else None
                records.append(
                    Record(
                        key,
                        json.loads(msg.value()),
                        msg.partition(),
                        msg.offset(),
                        msg.timestamp()[1],
                    )
                )
                if msg.offset() + 1 >= ends[msg.partition()]:
                    todo.discard(msg.partition())
        return records
    finally:
        consumer.close()
