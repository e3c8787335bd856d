"""The service and the consumer as real processes, against the real broker: crashes
(`kill -9`) and a broker restart in the middle of a replay lose no purchase and count none
twice; SIGTERM and Ctrl-C stop them within 5 s with their offsets committed; one holder
of the DuckDB file at a time, said clearly; `make live` ends on Ctrl-C with a summary."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from recsys.ingest.broker import free_port
from recsys.ingest.kafka_clients import create_topics
from recsys.settings import Settings, load_settings
from recsys.store.engine import DuckDBEngine
from recsys.store.holder import BOTH

pytestmark = pytest.mark.kafka
REPO_ROOT = Path(__file__).resolve().parents[2]
EVENTS = 600
RATE = 100.0  # events/s: a replay of 6 s, long enough to crash in its middle
STOP_S = 5.0


@dataclass
class Shop:
    """A copy of the tiny run's DuckDB file, the settings that name it and the broker."""

    env: dict[str, str]
    settings: Settings
    url: str
    events: list[dict]  # what the replay produces, each event once
    started: list[subprocess.Popen] = field(default_factory=list)  # killed at the end

    def start(self, *command: str, log: str = "process") -> subprocess.Popen:
        out = open(self.settings.duckdb_path.parent / f"{log}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen([sys.executable, *command], cwd=REPO_ROOT, env=self.env,
                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        self.started.append(process)
        return process

    def log(self, name: str = "process") -> str:
        return (self.settings.duckdb_path.parent / f"{name}.log").read_text(errors="replace")


@pytest.fixture
def shop(tiny_flow_run, kafka_broker, fresh_topics, tmp_path: Path) -> Iterator[Shop]:  # noqa: ANN001
    shutil.copy(tiny_flow_run.env["DUCKDB_PATH"], tmp_path / "hm.duckdb")
    port = free_port()
    env = {**tiny_flow_run.env, "DUCKDB_PATH": str(tmp_path / "hm.duckdb"),
           "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap, "SERVE_PORT": str(port),
           "SERVE_HOST": "127.0.0.1", "PYTHONPATH": str(REPO_ROOT)}  # fmt: skip
    settings = load_settings(env=env)
    create_topics(settings)  # a standalone consumer waits for them (the producer makes them)
    with DuckDBEngine(settings, read_only=True) as engine:
        day = engine.rows("SELECT MAX(t_dat) FROM transactions_raw")[0][0] + timedelta(days=1)
        buyers = [c for (c,) in engine.rows(
            "SELECT DISTINCT customer_id FROM transactions_raw ORDER BY 1 LIMIT 200")]  # fmt: skip
        articles = [a for (a,) in engine.rows(
            "SELECT DISTINCT article_id FROM articles_raw ORDER BY 1 LIMIT 3")]  # fmt: skip
    events = [
        {"event_id": f"replay:{i}", "t_dat": day.isoformat(), "customer_id": buyers[i // 3],
         "article_id": articles[i % 3], "price": 0.05, "sales_channel_id": 2}
        for i in range(EVENTS)
    ]  # fmt: skip
    shop = Shop(env, settings, f"http://127.0.0.1:{port}", events)
    yield shop
    for process in shop.started:  # a test that failed half-way leaves none running
        if process.poll() is None:
            process.kill()
            process.wait()


@contextmanager
def replaying(shop: Shop, events: list[dict], rate: float = RATE) -> Iterator[threading.Thread]:
    """Produce `events` at `rate` per second in a thread (each once, keyed by customer)."""
    from confluent_kafka import Producer

    def run() -> None:
        producer = Producer({"bootstrap.servers": shop.settings.kafka_bootstrap_servers})
        began = time.monotonic()
        for i, event in enumerate(events):
            producer.produce("transactions_topic", json.dumps(event).encode(),
                             event["customer_id"].encode())  # fmt: skip
            producer.poll(0)
            time.sleep(max(0.0, began + (i + 1) / rate - time.monotonic()))
        assert producer.flush(60) == 0

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield thread
    finally:
        thread.join()


def health(shop: Shop) -> dict | None:
    try:
        with urllib.request.urlopen(f"{shop.url}/health", timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


def wait_until(check, what: str, timeout: float = 120.0, process=None):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert process is None or process.poll() is None, f"exited {process.returncode}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def in_file(shop: Shop) -> tuple[int, int, int]:
    """(rows of the replay's events, distinct events, stored next offsets summed) of the
    file: with the producer sending each event once, all three equal when nothing was
    lost or written twice."""
    with DuckDBEngine(shop.settings, read_only=True) as engine:
        [(rows, distinct)] = engine.rows(
            "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM transactions_raw "
            "WHERE event_id LIKE 'replay:%'"
        )
        stored = engine.kafka_offsets()
    return rows, distinct, sum(o for (t, _), o in stored.items() if t == "transactions_topic")


def assert_every_event_once(shop: Shop) -> None:
    assert in_file(shop) == (EVENTS, EVENTS, EVENTS)


def service_histories(shop: Shop) -> dict[str, list[tuple]]:
    """Every buyer's history as the service's state answers it."""
    histories = {}
    for customer in dict.fromkeys(e["customer_id"] for e in shop.events):
        with urllib.request.urlopen(f"{shop.url}/customers/{customer}/history") as response:
            items = json.loads(response.read())["items"]
        histories[customer] = [(i["article_id"], i["t_dat"], i["units"]) for i in items]
    return histories


def assert_state_was_the_views(shop: Shop, histories: dict[str, list[tuple]]) -> None:
    """The service's answers are customer_recent_articles_t's rows of the file (whose
    events are each there once: `assert_every_event_once`), new purchases included."""
    with DuckDBEngine(shop.settings, read_only=True) as engine:
        for customer, history in histories.items():
            rows = engine.rows(
                "SELECT article_id, CAST(last_t_dat AS VARCHAR), units "
                "FROM customer_recent_articles_t WHERE customer_id = $1",
                [customer],
            )
            assert sorted(history) == sorted(rows), customer  # the order: tests/serve/test_state
            assert history[0][1] == shop.events[0]["t_dat"], customer


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> float:
    """Send `sig`; seconds until the process is gone."""
    began = time.monotonic()
    process.send_signal(sig)
    process.wait(timeout=60)
    return time.monotonic() - began


def serving(shop: Shop) -> subprocess.Popen:
    service = shop.start("-m", "recsys.serve", "--consume", log="service")
    wait_until(lambda: health(shop), "the service", process=service)
    return service


def test_kill_9_of_the_service_mid_replay_loses_and_repeats_nothing(shop: Shop) -> None:
    service = serving(shop)
    with replaying(shop, shop.events):
        wait_until(lambda: in_state(shop, 50), "the first purchases in the service")
        service.kill()  # SIGKILL: no shutdown, the state is lost, the file's last batch stays
        service.wait()
        assert health(shop) is None
    service = serving(shop)
    try:
        wait_until(lambda: (health(shop) or {}).get("consumer_lag") == 0, "lag 0")
        histories = service_histories(shop)
    finally:
        stop(service)
    assert_every_event_once(shop)
    assert_state_was_the_views(shop, histories)


def in_state(shop: Shop, customers: int) -> bool:
    """Whether the service's state holds the purchases of the first `customers` buyers."""
    customer = shop.events[3 * customers - 1]["customer_id"]
    try:
        with urllib.request.urlopen(f"{shop.url}/customers/{customer}/history?limit=1") as r:
            items = json.loads(r.read())["items"]
    except OSError:
        return False
    return bool(items) and items[0]["t_dat"] == shop.events[0]["t_dat"]


def test_kill_9_of_a_standalone_consumer_mid_replay_loses_and_repeats_nothing(shop: Shop) -> None:
    consumer = shop.start("-m", "recsys.store.consumer", log="consumer")
    with replaying(shop, shop.events):
        wait_until(lambda: in_file_now(shop) > 0, "the first batch", 60, consumer)
        consumer.kill()
        consumer.wait()
    rows = in_file(shop)[0]
    assert 0 < rows < EVENTS, "killed in the middle of the replay"
    again = shop.start("-m", "recsys.store.consumer", "--idle-stop", "3", log="consumer")
    assert again.wait(timeout=120) == 0, shop.log("consumer")
    assert_every_event_once(shop)


def test_a_broker_restarted_mid_replay_loses_and_repeats_nothing(shop: Shop, kafka_broker) -> None:  # noqa: ANN001
    consumer = shop.start("-m", "recsys.store.consumer", log="consumer")
    half = EVENTS // 2
    try:
        with replaying(shop, shop.events[:half]):
            pass
        wait_until(lambda: in_file_now(shop) == half, "the first half in the file", 60, consumer)
        kafka_broker.stop()
        time.sleep(3)  # the consumer polls a broker that is gone
        kafka_broker.start()
        with replaying(shop, shop.events[half:]):
            pass
        wait_until(lambda: in_file_now(shop) == EVENTS, "the second half", 120, consumer)
    finally:
        stop(consumer)
    assert_every_event_once(shop)


def in_file_now(shop: Shop) -> int:
    """The replay's rows in the file, read between the consumer's batches."""
    return in_file(shop)[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_stops_the_service_and_its_consumer_with_offsets_committed(
    shop: Shop, sig: int
) -> None:
    service = serving(shop)
    with replaying(shop, shop.events):
        wait_until(lambda: in_state(shop, 30), "purchases in the service")
        took = stop(service, sig)
    assert took < STOP_S, f"stopped after {took:.1f} s"
    assert "Traceback" not in shop.log("service")
    assert_offsets_committed(shop)


def test_a_signal_stops_a_standalone_consumer_with_offsets_committed(shop: Shop) -> None:
    consumer = shop.start("-m", "recsys.store.consumer", log="consumer")
    with replaying(shop, shop.events):
        wait_until(lambda: in_file_now(shop) > 0, "the first batch", 60, consumer)
        took = stop(consumer)
    assert took < STOP_S, f"stopped after {took:.1f} s"
    assert consumer.returncode == 0 and "Traceback" not in shop.log("consumer")
    assert_offsets_committed(shop)


def assert_offsets_committed(shop: Shop) -> None:
    """The file holds exactly the events up to its stored offsets (none after them), and
    the consumer group's committed offsets are the file's."""
    from confluent_kafka import Consumer, TopicPartition

    rows, distinct, stored = in_file(shop)
    assert 0 < rows == distinct == stored
    with DuckDBEngine(shop.settings, read_only=True) as engine:
        offsets = engine.kafka_offsets()
    group = Consumer({"bootstrap.servers": shop.settings.kafka_bootstrap_servers,
                      "group.id": "hm-embedded-engine"})  # fmt: skip
    try:
        wanted = [TopicPartition(t, p) for (t, p) in offsets]
        committed = {(c.topic, c.partition): c.offset for c in group.committed(wanted, timeout=10)}
    finally:
        group.close()
    assert committed == offsets


def test_one_holder_of_the_file_and_the_second_says_who(shop: Shop) -> None:
    """A consumer beside a service, and a service beside a consumer, stop at once naming
    the other process and the command that does both."""
    service = shop.start("-m", "recsys.serve", log="service")
    try:
        wait_until(lambda: health(shop), "the service", process=service)
        consumer = shop.start("-m", "recsys.store.consumer", log="consumer")
        assert consumer.wait(timeout=60) == 2
        said = shop.log("consumer")
        assert f"process {service.pid} " in said and BOTH in said, said
    finally:
        stop(service)
    consumer = shop.start("-m", "recsys.store.consumer", log="consumer2")
    try:
        wait_until(lambda: Path(f"{shop.settings.duckdb_path}.holder").read_text(), "the claim")
        service = shop.start("-m", "recsys.serve", "--consume", log="service2")
        assert service.wait(timeout=60) == 2
        said = shop.log("service2")
        assert f"process {consumer.pid} " in said and BOTH in said, said
    finally:
        stop(consumer)


def test_make_live_ends_on_ctrl_c_with_a_summary(
    tiny_flow_run, kafka_broker, fresh_topics, tmp_path: Path
) -> None:  # noqa: ANN001
    """`make live`'s script: the views without the test week, the service with its
    consumer, the week replayed; Ctrl-C stops them and says where the shop was."""
    port = free_port()
    env = {**tiny_flow_run.env, "DUCKDB_PATH": str(tmp_path / "hm.duckdb"),
           "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap, "SERVE_PORT": str(port),
           "PYTHONPATH": str(REPO_ROOT)}  # fmt: skip
    shop = subprocess.Popen(
        [sys.executable, "-m", "recsys.serve.shop", "--speedup", str(86_400 * 7 / 5)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(shop.stdout))
    reader.start()
    try:
        wait_until(lambda: any("replay done" in line for line in lines), "the replay", 300, shop)
        url = f"http://127.0.0.1:{port}/health"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert json.loads(response.read())["consumer"] == "running"
        shop.send_signal(signal.SIGINT)
        assert shop.wait(timeout=60) == 0
    finally:
        if shop.poll() is None:
            shop.kill()
        reader.join()
    output = "".join(lines)
    assert "stopped after" in output and "Traceback" not in output, output[-3000:]
    assert os.path.exists(tmp_path / "hm.duckdb")
