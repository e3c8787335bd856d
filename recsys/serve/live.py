"""The Kafka consumer inside the service's process (`python -m recsys.serve --consume`).

Why in the same process: on the embedded engine DuckDB lets one process open a file that
is written, so a consumer process and a service process cannot share it (the reader
blocks the writer or the other way round, and opening the file per request costs
tens of milliseconds). In one process the consumer's batches and the requests' queries
go to the same DuckDB database: writes commit while queries run, each query sees the
last committed batch.

Each committed batch is applied to the online state (`recsys.serve.state`) before its
offsets are committed to Kafka: the purchases new to the file, and the profiles of the
customers it wrote, read back from customers_t. DuckDB stays the durable store: a crash
loses the state, and the next start builds it again from the file, which holds exactly
the batches whose offsets it stored.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from recsys.ingest.kafka_clients import TOPICS, confluent_config, create_topics
from recsys.serve.state import PROFILE_SQL
from recsys.serve.views import Views
from recsys.settings import Settings
from recsys.store.consumer import Committed, consume
from recsys.store.engine import DuckDBEngine

WATERMARK_TIMEOUT_S = 1.0
# A poll gathers at most this long into one batch: a purchase may wait that long before its
# write (with the standalone consumer's 0.2 s, freshness p95 at 100 purchases/s was 0.45 s
# on the demo data, bench/results/serve-demo.md at 57f0ada); at 400 purchases/s this is
# 20 small transactions a second on the held database.
LIVE_POLL_S = 0.05
TOPIC_READY_S = 30.0
log = logging.getLogger(__name__)


@dataclass
class LiveConsumer:
    """The consumer thread, its last error, and how far behind the topics it is."""

    settings: Settings
    views: Views  # the service's held engine (offsets are read through a cursor) and state
    error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _client: object = None

    def start(self, from_now: bool = False) -> LiveConsumer:
        """Start consuming where the file says; `from_now`: a file that never consumed
        starts at the topics' current end (its past came from the CSV load)."""
        create_topics(self.settings)  # the consumer waits for every topic to exist
        if from_now and not self.engine.for_thread().kafka_offsets():
            self.engine.write_batch({}, offsets=self._ends())
        self._thread = threading.Thread(target=self._run, name="kafka-consumer", daemon=True)
        self._thread.start()
        return self

    @property
    def engine(self) -> DuckDBEngine:
        return self.views.engine

    def _run(self) -> None:
        try:
            held = self.engine.for_thread()  # the service's database, this thread's cursor
            consume(self.settings, stop=self._stop, on_commit=self._apply, held=held,
                    poll_timeout_s=LIVE_POLL_S)  # fmt: skip
        except Exception as error:  # noqa: BLE001 - the service keeps answering; /health says
            self.error = f"{type(error).__name__}: {error}"
            log.error("the Kafka consumer stopped: %s", self.error)

    def _apply(self, committed: Committed) -> None:
        """One committed batch into the online state; a newer day wakes the shared reads."""
        state, newest = self.views.state, self.views.state.newest_day
        if committed.customers:
            sql = f"{PROFILE_SQL} WHERE customer_id IN (SELECT UNNEST(CAST($1 AS VARCHAR[])))"
            state.set_profiles(self.engine.for_thread().query(sql, [committed.customers]))
        state.apply(committed.purchases)
        if state.newest_day != newest:
            self.views.new_day.set()

    def status(self) -> str:
        """For /health: "running", or "stopped: <why>" once the thread has ended."""
        if self._thread.is_alive():
            return "running"
        return f"stopped: {self.error or 'asked to stop'}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def lag(self) -> int | None:
        """Messages on the broker not yet in the views (None when the broker does not say)."""
        stored = self.engine.for_thread().kafka_offsets()
        if not stored or self.error:
            return None
        try:
            with self._lock:
                client = self._watermarks()
                ends = [
                    client.get_watermark_offsets(_partition(t, p), timeout=WATERMARK_TIMEOUT_S)[1]
                    for t, p in stored
                ]
        except Exception:  # noqa: BLE001 - an unreachable broker: lag unknown
            return None
        return int(sum(max(end - stored[key], 0) for key, end in zip(stored, ends, strict=True)))

    def _ends(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> the offset the next message will get, for every topic.

        A topic created a moment ago may have no leader yet: that is waited out."""
        from confluent_kafka import KafkaException

        client = self._watermarks()
        deadline = time.monotonic() + TOPIC_READY_S
        while True:
            try:
                metadata = client.list_topics(timeout=10).topics
                return {
                    (topic, p): client.get_watermark_offsets(_partition(topic, p), timeout=10)[1]
                    for topic in TOPICS
                    for p in metadata[topic].partitions
                }
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _watermarks(self):
        from confluent_kafka import Consumer

        if self._client is None:
            self._client = Consumer({**confluent_config(self.settings), "group.id": "hm-serve-lag"})
        return self._client


def _partition(topic: str, partition: int):
    from confluent_kafka import TopicPartition

    return TopicPartition(topic, partition)
