"""`python risingwave/setup.py` as a user types it, against the real local broker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from recsys.ingest.broker import free_port
from recsys.ingest.kafka_clients import TABLE_TOPICS, TOPICS, dlq_topic
from recsys.ingest.loaders import iter_batches

ROOT = Path(__file__).resolve().parents[2]
ALL_TOPICS = {name for topic in TOPICS for name in (topic, dlq_topic(topic))}


def run_setup(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """setup.py in a fresh process; `env` on top of a clean environment (no local.env values)."""
    keep = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    return subprocess.run(
        [sys.executable, "risingwave/setup.py", *args],
        capture_output=True,
        text=True,
        env={**keep, **env},
        cwd=ROOT,
        timeout=120,
    )


def partitions_of(bootstrap: str) -> dict[str, int]:
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    return {name: len(meta.partitions) for name, meta in topics.items() if name in ALL_TOPICS}


@pytest.mark.kafka
def test_risingwave_setup_creates_the_topics_first_and_once(
    kafka_broker, fresh_topics, tmp_path
) -> None:
    closed = free_port()  # nothing listens: RisingWave is "down", the topic step ran before
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap,
        "KAFKA_PARTITIONS": "2",  # not the broker's default (3): the setting is what counts
        "RISINGWAVE_URL": f"postgresql://root@127.0.0.1:{closed}/dev",
        "DUCKDB_PATH": str(tmp_path / "unused.duckdb"),
    }
    assert partitions_of(kafka_broker.bootstrap) == {}

    first = run_setup(**env)

    assert f"created {len(ALL_TOPICS)} of {len(ALL_TOPICS)} topics" in first.stdout, first
    assert partitions_of(kafka_broker.bootstrap) == dict.fromkeys(ALL_TOPICS, 2)
    assert first.returncode == 2 and "cannot connect to RisingWave" in first.stderr

    second = run_setup(**{**env, "KAFKA_PARTITIONS": "4"})  # changes nothing either

    assert f"all {len(ALL_TOPICS)} topics exist" in second.stdout, second
    assert partitions_of(kafka_broker.bootstrap) == dict.fromkeys(ALL_TOPICS, 2)


@pytest.mark.kafka
def test_setup_drop_and_print_create_no_topics(kafka_broker, fresh_topics, tmp_path) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap,
        "RISINGWAVE_URL": f"postgresql://root@127.0.0.1:{free_port()}/dev",
        "DUCKDB_PATH": str(tmp_path / "unused.duckdb"),
    }
    assert run_setup("--print", **env).returncode == 0
    assert run_setup("--drop", **env).returncode == 2  # RisingWave is down
    assert partitions_of(kafka_broker.bootstrap) == {}


def test_setup_load_fills_the_embedded_engine_and_reports_each_table(tiny_data, tmp_path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data, ignore=shutil.ignore_patterns("*.duckdb", "images"))
    with (data / "transactions_train.csv").open("a") as csv:
        csv.write("2020-13-01,nothex,0108775015,0.05,2\n")  # one bad row
    valid = {t: sum(b.num_rows for b, _ in iter_batches(t, data)) for t in TABLE_TOPICS}
    env = {"DATA_DIR": str(data), "DUCKDB_PATH": str(tmp_path / "hm.duckdb")}

    result = run_setup("--engine", "embedded", "--load", **env)

    assert result.returncode == 0, result.stderr
    shown = {
        line.split()[0]: tuple(int(n.replace(",", "")) for n in line.split()[1:])
        for line in result.stdout.splitlines()
        if line.split() and line.split()[0] in valid
    }
    assert shown == {t: (n, int(t == "transactions")) for t, n in valid.items()}
    assert "SELECT * FROM rejects" in result.stdout
    counted = subprocess.run(
        [sys.executable, "-m", "recsys.store.sql", "SELECT COUNT(*) AS n FROM transactions_t"],
        capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT, check=True,
    )  # fmt: skip
    assert str(valid["transactions"]) in counted.stdout  # what a new user runs next


def test_setup_load_refuses_risingwave_and_names_a_missing_file(tmp_path) -> None:
    env = {"DATA_DIR": str(tmp_path), "DUCKDB_PATH": str(tmp_path / "hm.duckdb")}
    refused = run_setup("--engine", "risingwave", "--load", **env)
    assert refused.returncode == 2 and "kafka/producer.py" in refused.stderr

    missing = run_setup("--engine", "embedded", "--load", **env)
    assert missing.returncode == 2 and "articles.csv" in missing.stderr


def test_setup_load_keeps_the_days_asked_for(tiny_data, tmp_path) -> None:
    env = {
        "DATA_DIR": str(tiny_data),
        "DUCKDB_PATH": str(tmp_path / "hm.duckdb"),
        "DATA_UNTIL": "2020-09-16",
    }
    result = run_setup("--engine", "embedded", "--load", **env)
    assert result.returncode == 0, result.stderr
    assert "transactions outside days before 2020-09-16 not loaded" in result.stdout

    bad = run_setup("--engine", "embedded", "--load", "--from", "2020-9-1", **env)
    assert bad.returncode == 2 and "--from='2020-9-1': expected a calendar day" in bad.stderr
