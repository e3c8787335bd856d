"""Producer throughput, side by side with Kafka's own ProducerPerformance, in one run.

    flock /tmp/heavy.lock .venv/bin/python bench/producer.py --data /work/hm-full

Starts a throw-away local broker (temp data dir, free port), then on that broker:
  1. our producer with confluent-kafka: the whole transactions file (CSV read, validation,
     JSON encoding, delivery reports included);
  2. the same on the first --small-rows rows, to show that memory does not grow with size;
  3. our producer with kafka-python on the first --kafka-python-rows rows (it is ~10x slower);
  4. org.apache.kafka.tools.ProducerPerformance: as many records as run 1, of run 1's
     average JSON size, with the same producer settings (acks=all, idempotence, linger 20 ms,
     1 MB batches). Its records carry no key; ours carry a 64-byte customer_id.
Each runs in its own process, so peak memory (max RSS) is measured per producer.
Prints a Markdown table and writes it to bench/results/producer-<data dir name>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from results import write_result

from recsys.ingest.broker import LocalBroker, free_port, java_command, kafka_version

PP_SETTINGS = ["acks=all", "enable.idempotence=true", "linger.ms=20", "batch.size=1000000"]


@dataclass
class Run:
    name: str
    records: int
    value_bytes: int
    seconds: float
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.value_bytes / self.seconds / 1e6


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run a command; its stdout and its peak RSS in MB (from wait4, this child only)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]}... exited {proc.returncode}:\n{text[-3000:]}")
    return text, usage.ru_maxrss / 1024


def our_producer(broker: LocalBroker, data: Path, client: str, limit: int | None) -> Run:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "KAFKA_CLIENT": client}
    env = {k: v for k, v in env.items() if k not in ("KAFKA_API_KEY", "KAFKA_API_SECRET")}
    cmd = [sys.executable, __file__, "--child", str(data), "--limit", str(limit or 0)]
    text, rss = run_measured(cmd, env)
    result = json.loads(text.strip().splitlines()[-1])
    label = f"kafka/producer.py, {client}" + (f", first {limit:,} rows" if limit else "")
    return Run(label, result["sent"], result["value_bytes"], result["elapsed_s"], rss)


def child(data: Path, limit: int) -> None:
    """Runs in the measured process: produce, then print the topic summary as JSON."""
    from recsys.ingest.producer import produce
    from recsys.settings import load_settings

    summary = produce(load_settings(), data, topics=["transactions_topic"], limit=limit or None)
    counts = summary.topics["transactions_topic"]
    if not summary.ok:
        raise SystemExit(summary.table())
    print(json.dumps({k: getattr(counts, k) for k in ("sent", "value_bytes", "elapsed_s")}))


def producer_performance(broker: LocalBroker, records: int, record_size: int) -> Run:
    from recsys.ingest.kafka_clients import create_topics
    from recsys.settings import load_settings

    settings = load_settings(env={"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap})
    create_topics(settings, ["pp_transactions"])  # same partitions as the real topic
    cmd = java_command(
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic", "pp_transactions", "--num-records", str(records),
        "--record-size", str(record_size), "--throughput", "-1",
        "--producer-props", f"bootstrap.servers={broker.bootstrap}", *PP_SETTINGS,
        jvm_opts=["-Xmx1g"],
    )  # fmt: skip
    started = time.perf_counter()
    text, rss = run_measured(cmd)
    wall = time.perf_counter() - started
    final = [line for line in text.splitlines() if "99.9th" in line][-1]
    rate = float(re.search(r"([\d.]+) records/sec", final).group(1))
    seconds = records / rate  # its own timing (excludes JVM start), as it reports
    print(
        f"ProducerPerformance: {final.strip()} (wall {wall:.1f} s with JVM start)", file=sys.stderr
    )
    return Run("ProducerPerformance (Java)", records, records * record_size, seconds, rss)


def table(runs: list[Run], reference: Run) -> str:
    lines = [
        "| producer | records | avg value (B) | seconds | msg/s | MB/s | peak RSS (MB) | vs Java |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.name} | {r.records:,} | {r.value_bytes / r.records:.0f} | {r.seconds:.1f} "
            f"| {r.rate:,.0f} | {r.mb_per_s:.1f} | {r.peak_rss_mb:,.0f} "
            f"| {r.rate / reference.rate:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/hm-full"))
    parser.add_argument("--kafka-python-rows", type=int, default=300_000)
    parser.add_argument("--small-rows", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=0, help="cap the big run (for a quick try)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.limit)
        return
    csv = args.data / "transactions_train.csv"
    if not csv.is_file():
        raise SystemExit(f"{csv}: not found (generate it, or pass --data DIR)")
    work = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    broker = LocalBroker(data_dir=work, port=free_port())
    broker.start()
    try:
        full = our_producer(broker, args.data, "confluent", args.limit or None)
        small = our_producer(broker, args.data, "confluent", args.small_rows)
        slow = our_producer(broker, args.data, "kafka-python", args.kafka_python_rows)
        reference = producer_performance(
            broker, full.records, round(full.value_bytes / full.records)
        )
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    size = f"{csv.stat().st_size / 1e9:.2f} GB"
    text = (
        f"Kafka {kafka_version()}, one local broker; {csv.name} of {args.data.name} ({size})\n\n"
        + table([full, small, slow, reference], reference)
    )
    print(text)
    write_result(
        f"producer-{args.data.name}" + (f"-first-{args.limit}" if args.limit else ""), text
    )


if __name__ == "__main__":
    main()
