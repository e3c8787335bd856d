"""Kafka clients of the project: topic names, connection settings, the producing clients.

One place for what every Kafka user here shares: the topics and their dead-letter topics,
librdkafka's and kafka-python's connection settings (address, SASL credentials from the
settings), topic creation, and the two producing clients behind one interface (setting
KAFKA_CLIENT): `confluent` (librdkafka, the fast path, default) and `kafka-python` (pure
Python, about 15x slower: it builds record batches and hashes keys in Python, per record;
see docs/kafka.md). The producer (`recsys.ingest.producer`), the embedded engine's consumer
(`recsys.store.consumer`) and the service's in-process consumer use them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Protocol

import confluent_kafka
import kafka
import kafka.admin
import kafka.errors
from confluent_kafka.admin import AdminClient

from recsys.settings import Settings

TABLE_TOPICS = {
    "articles": "articles_topic",
    "customers": "customers_topic",
    "images": "images_topic",
    "transactions": "transactions_topic",  # last: the others are what it refers to
}
TOPICS = tuple(TABLE_TOPICS.values())
CONNECT_TIMEOUT_S = 10.0
DELIVERY_TIMEOUT_S = 120.0  # a message not acknowledged by then is reported as failed


class KafkaSetupError(RuntimeError):
    """Kafka is unreachable, rejects the credentials, or a setting is wrong."""


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


class Client(Protocol):
    """What the producer needs from a Kafka client library."""

    def check_connection(self) -> set[str]:
        """Existing topic names; raises KafkaSetupError within seconds if Kafka is unusable."""
        ...

    def create_topics(self, names: list[str], partitions: int) -> None: ...

    def send(self, topic: str, values: list[bytes], keys: list[bytes]) -> None:
        """Enqueue; blocks while the client's buffer is full."""
        ...

    def wait(self, seconds: float) -> None:
        """Sleep while still serving delivery reports (replay pacing)."""
        ...

    def flush(self) -> dict[str, list[str]]:
        """Wait for every delivery report; return topic -> ids of messages that failed."""
        ...

    def close(self) -> None: ...


def replication_factor(brokers: int) -> int:
    """3 copies where the cluster has them (Confluent Cloud requires 3), else one per broker."""
    return min(3, brokers)


def _failed_id(key: bytes | None, value: bytes | None) -> str:
    """Name a failed message by its source: event_id, dead letter's file:line, or key."""
    try:
        record = json.loads(value or b"{}")
    except ValueError:
        record = {}
    if "event_id" in record:
        return str(record["event_id"])
    if "line" in record:
        return f"{record.get('file')}:{record['line']}"
    return f"key={(key or b'').decode(errors='replace')}"


def _connection_error(settings: Settings, detail: str) -> KafkaSetupError:
    where = f"Kafka at {settings.kafka_bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS)"
    lowered = detail.lower()
    if "auth" in lowered or "sasl" in lowered:
        return KafkaSetupError(
            f"{where} rejected the credentials (KAFKA_API_KEY / KAFKA_API_SECRET): {detail}"
        )
    return KafkaSetupError(
        f"cannot reach {where} within {CONNECT_TIMEOUT_S:.0f} s: {detail}. "
        "Is the broker running (`make kafka-up`) and the address right?"
    )


def confluent_config(settings: Settings) -> dict[str, object]:
    """librdkafka connection settings (shared with consumers): address and security."""
    config: dict[str, object] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        config |= {
            "sasl.mechanisms": "PLAIN",
            "sasl.username": settings.kafka_api_key,
            "sasl.password": settings.kafka_api_secret,
        }
    return config


def kafka_python_config(settings: Settings) -> dict[str, object]:
    """kafka-python connection settings (shared with consumers): address and security."""
    config: dict[str, object] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        config |= {
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": settings.kafka_api_key,
            "sasl_plain_password": settings.kafka_api_secret,
        }
    return config


class ConfluentClient:
    """librdkafka: batching, CRCs and network I/O in C threads; Python only calls produce()."""

    QUEUE_MESSAGES = 100_000  # bounds memory: the queue holds copies of the messages

    def __init__(self, settings: Settings, delivery_timeout_s: float = DELIVERY_TIMEOUT_S) -> None:
        self._settings = settings
        self._delivery_timeout_ms = int(delivery_timeout_s * 1000)
        self._errors: list[str] = []
        self._failed: dict[str, list[str]] = {}
        self._producer: confluent_kafka.Producer | None = None  # created on the first send

    def _started(self) -> confluent_kafka.Producer:
        if self._producer is None:
            self._producer = confluent_kafka.Producer(
                confluent_config(self._settings)
                | {
                    "enable.idempotence": True,
                    "acks": "all",
                    # Java's and kafka-python's partitioner: a key lands in the same partition
                    # whichever client produced it (librdkafka's default hashes differently)
                    "partitioner": "murmur2_random",
                    "linger.ms": 20,
                    "batch.size": 1_000_000,
                    "message.timeout.ms": self._delivery_timeout_ms,
                    "queue.buffering.max.messages": self.QUEUE_MESSAGES,
                    "queue.buffering.max.kbytes": 512 * 1024,
                    "delivery.report.only.error": True,  # successes need no Python callback
                    "on_delivery": self._on_delivery,
                    "error_cb": self._on_error,
                }
            )
        return self._producer

    def _on_delivery(self, err, msg) -> None:  # only called for failures
        if err is not None:
            ids = self._failed.setdefault(msg.topic(), [])
            ids.append(_failed_id(msg.key(), msg.value()))

    def _on_error(self, err) -> None:
        self._errors.append(f"{err.name()}: {err.str()}")

    def check_connection(self) -> set[str]:
        admin = AdminClient(confluent_config(self._settings) | {"error_cb": self._on_error})
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            try:
                return set(admin.list_topics(timeout=1).topics)
            except confluent_kafka.KafkaException as exc:
                admin.poll(0)  # serves error_cb: authentication and resolve errors arrive there
                fatal = [e for e in self._errors if "AUTHENTICATION" in e or "RESOLVE" in e]
                if fatal or time.monotonic() > deadline:
                    raise _connection_error(
                        self._settings, (fatal or self._errors or [str(exc)])[-1]
                    ) from None

    def create_topics(self, names: list[str], partitions: int) -> None:
        admin = AdminClient(confluent_config(self._settings))
        brokers = len(admin.list_topics(timeout=CONNECT_TIMEOUT_S).brokers)
        replicas = replication_factor(brokers)
        new = [confluent_kafka.admin.NewTopic(n, partitions, replicas) for n in names]
        futures = admin.create_topics(new)
        for name, future in futures.items():
            try:
                future.result(timeout=CONNECT_TIMEOUT_S)
            except Exception as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise KafkaSetupError(f"cannot create topic {name}: {exc}") from exc

    def send(self, topic: str, values: list[bytes], keys: list[bytes]) -> None:
        producer = self._started()
        produce, poll, i, end = producer.produce, producer.poll, 0, len(values)
        while i < end:
            try:
                for i in range(i, end):  # noqa: B020 - `i` survives the exception: resume there
                    produce(topic, values[i], keys[i])
                i = end
            except BufferError:  # queue full: let librdkafka deliver, then resume at row i
                poll(0.05)
            except confluent_kafka.KafkaException as exc:  # fatal, e.g. idempotent state lost
                raise KafkaSetupError(
                    f"{topic}: the producer failed after {i:,} of {end:,} rows of this batch: "
                    f"{exc}. Run it again: re-sent rows are deduplicated downstream."
                ) from exc
        poll(0)

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._started().poll(min(left, 0.5))

    def flush(self) -> dict[str, list[str]]:
        while self._producer is not None and self._producer.flush(1.0):
            pass  # every message gets a report by message.timeout.ms at the latest
        failed, self._failed = self._failed, {}
        return failed

    def close(self) -> None:
        self.flush()
        self._producer = None  # it refers back to us (callbacks): drop it now, not at GC


class KafkaPythonClient:
    """kafka-python: the named client; every record is encoded into batches in Python."""

    def __init__(self, settings: Settings, delivery_timeout_s: float = DELIVERY_TIMEOUT_S) -> None:
        self._settings = settings
        self._config = kafka_python_config(settings) | {
            "request_timeout_ms": int(CONNECT_TIMEOUT_S * 1000),
            "api_version_auto_timeout_ms": int(CONNECT_TIMEOUT_S * 1000),
        }
        self._delivery_timeout_ms = int(delivery_timeout_s * 1000)
        self._producer = None
        self._failed: dict[str, list[str]] = {}

    def check_connection(self) -> set[str]:
        # kafka-python raises a generic error when SASL fails; the reason is only logged
        errors = _ErrorLog("kafka.conn")
        try:
            with errors:
                admin = kafka.KafkaAdminClient(**self._config)
        except kafka.errors.KafkaError as exc:
            auth = [m for m in errors.messages if "Authentication" in m]
            detail = auth[-1] if auth else f"{type(exc).__name__}: {exc}"
            raise _connection_error(self._settings, detail) from None
        try:
            return set(admin.list_topics())
        finally:
            admin.close()

    def create_topics(self, names: list[str], partitions: int) -> None:
        admin = kafka.KafkaAdminClient(**self._config)
        try:
            replicas = replication_factor(len(admin.describe_cluster()["brokers"]))
            for name in names:
                with contextlib.suppress(kafka.errors.TopicAlreadyExistsError):
                    admin.create_topics([kafka.admin.NewTopic(name, partitions, replicas)])
        finally:
            admin.close()

    def _started(self):
        if self._producer is None:
            self._producer = kafka.KafkaProducer(
                **self._config,
                enable_idempotence=True,
                acks="all",
                linger_ms=20,
                batch_size=256 * 1024,
                delivery_timeout_ms=self._delivery_timeout_ms,
            )
        return self._producer

    def _on_failure(self, topic: str, key: bytes, value: bytes, _exc: Exception) -> None:
        self._failed.setdefault(topic, []).append(_failed_id(key, value))

    def send(self, topic: str, values: list[bytes], keys: list[bytes]) -> None:
        send, on_failure = self._started().send, self._on_failure
        for value, key in zip(values, keys, strict=True):
            send(topic, value=value, key=key).add_errback(on_failure, topic, key, value)

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)  # its I/O thread delivers meanwhile

    def flush(self) -> dict[str, list[str]]:
        if self._producer is not None:
            self._producer.flush()  # returns when every future is done (delivery timeout)
        failed, self._failed = self._failed, {}
        return failed

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush()
            self._producer.close()


class _ErrorLog(logging.Handler):
    """Collects a logger's ERROR messages while active (a context manager)."""

    def __init__(self, logger: str) -> None:
        super().__init__(logging.ERROR)
        self._logger = logging.getLogger(logger)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> _ErrorLog:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *_exc) -> None:
        self._logger.removeHandler(self)


def make_client(settings: Settings, delivery_timeout_s: float = DELIVERY_TIMEOUT_S) -> Client:
    client = ConfluentClient if settings.kafka_client == "confluent" else KafkaPythonClient
    return client(settings, delivery_timeout_s)


def create_topics(
    settings: Settings, topics: list[str] | tuple[str, ...] = TOPICS, partitions: int | None = None
) -> list[str]:
    """Create the missing topics and their dead-letter topics; return the ones created."""
    client = make_client(settings)
    try:
        return ensure_topics(client, list(topics), partitions or settings.kafka_partitions)
    finally:
        client.close()


def ensure_topics(client: Client, topics: list[str], partitions: int) -> list[str]:
    existing = client.check_connection()
    wanted = [name for topic in topics for name in (topic, dlq_topic(topic))]
    missing = [name for name in wanted if name not in existing]
    if missing:
        client.create_topics(missing, partitions)
    return missing
