"""Benchmark: the recommendation service under `wrk`, its freshness, memory, start and soak
(not a test).

    python bench/serve.py --name serve-demo                       # everything but the soak
    python bench/serve.py --name serve-full --soak 600            # + a 10-minute soak

Uses the settings of the environment (DATA_DIR, DUCKDB_PATH, OUTPUT_DIR: the newest run).
The load comes from `wrk` (a C client: the load does not eat the service's CPU the way
Python client threads did; `make bench-deps` installs it), one run per level of 1, 8 and
32 connections (`--levels`, `--duration` seconds each, after a warm-up), its Lua script
cycling through customer ids: `--unknown-share` of them ids the data has never seen, the
rest ids the model knows. The service runs as its own process (`python -m recsys.serve`
on a free loopback port); its start is timed from the command to the first /health
answer, its memory is its resident set (VmRSS) after start and after the load.

The floor is one answer in this process without HTTP (`Recommender.recommend` on the
online state: the CPU time of its thread, median over the benchmark's known customers),
next to its parts: the numpy tower and the search over the candidates.

Freshness: a local broker on free ports, the service with its consumer (`--consume
--from-now`) on a copy of the DuckDB file, then `--events` purchases by known customers
of an article new to them, produced at each of `--rates` events/s; each is timed from its
produce call to the first `/customers/<id>/history` answer that holds it. `--pollers`
threads share the events (event i is polled by poller i mod n), each asking for its oldest
event not yet seen: the resolution is one request. Per rate two rounds, other buyers
each: "cold", buyers the service has not answered since it started, and "warm", buyers it
answered once before. The soak (`--soak` seconds) runs on the same service: wrk at 32
connections while purchases arrive at 100/s; errors and memory at its start and end.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results import markdown_table, write_result  # noqa: E402

START_TIMEOUT_S = 900
WARMUP_S = 5
SOAK_CONNECTIONS = 32
SOAK_RATE = 100.0
# wrk's Lua: each thread starts at its own place in the id list and cycles through it;
# `done` prints the figures on one line for this script.
LUA = """
local ids = {}
for line in io.lines("%s") do ids[#ids + 1] = line end
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("position", threads * 7919)
end
function request()
  position = position + 1
  return wrk.format("GET", "/recommendations/" .. ids[position %% #ids + 1] .. "?k=12")
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d %%d %%d\\n", summary.requests,
    e.connect + e.read + e.write + e.timeout, e.status, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


@dataclass
class Service:
    """A running `python -m recsys.serve`: where it listens and what its start took."""

    process: subprocess.Popen
    url: str
    start_s: float

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


@contextmanager
def service(env: dict[str, str], *flags: str) -> Iterator[Service]:
    """`python -m recsys.serve` on a free port, timed to its first /health; stopped after."""
    from recsys.ingest.broker import free_port

    port = free_port()
    env = {**env, "SERVE_HOST": "127.0.0.1", "SERVE_PORT": str(port)}
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "recsys.serve", *flags], cwd=REPO, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the service stopped: {Path(log.name).read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/health", timeout=5).close()
                break
            except OSError:
                if time.monotonic() - began > START_TIMEOUT_S:
                    raise SystemExit("the service did not start in time") from None
                time.sleep(0.2)
        yield Service(process, url, time.monotonic() - began)
    finally:
        process.terminate()
        process.wait(timeout=60)
        os.unlink(log.name)


def wrk(url: str, script: Path, connections: int, seconds: float) -> dict:
    """One wrk run; its figures as a row (latencies in ms)."""
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "10s",
               "-s", str(script), url]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    fields = next(line for line in output.splitlines() if line.startswith("RESULT")).split()[1:]
    requests, errors, status, micros, p50, p95, p99, worst = (int(f) for f in fields)
    return {
        "connections": connections,
        "requests": requests,
        "errors": errors + status,
        "req/s": round(requests / (micros / 1e6), 1),
        "p50 ms": round(p50 / 1e3, 1),
        "p95 ms": round(p95 / 1e3, 1),
        "p99 ms": round(p99 / 1e3, 1),
        "max ms": round(worst / 1e3, 1),
    }


def lua_script(work: Path, ids: list[str]) -> Path:
    (work / "ids.txt").write_text("\n".join(ids) + "\n")
    script = work / "cycle.lua"
    script.write_text(LUA % (work / "ids.txt"))
    return script


def customer_ids(export: Path, unknown_share: float, n: int = 5_000) -> list[str]:
    """Known ids (the model's vocabulary) mixed with ids nobody has, in the given share."""
    import pandas as pd

    vocabulary = export / "workflows/customers/categories/unique.customer_id.parquet"
    known = pd.read_parquet(vocabulary)["customer_id"].dropna().astype(str).tolist()
    rng = random.Random(7)
    picked = rng.sample(known, min(n, len(known)))
    unknown = [f"{rng.getrandbits(256):064x}" for _ in range(int(len(picked) * unknown_share))]
    ids = picked[: len(picked) - len(unknown)] + unknown
    rng.shuffle(ids)
    return ids


def floor(settings, export: Path, ids: list[str], calls: int = 1_000) -> list[dict]:
    """CPU per answer in this process (no HTTP): the median of its thread's CPU time over
    known customers, and of the tower and the search alone."""
    from recsys.run_folder import RunFolder
    from recsys.serve.recommender import Recommender
    from recsys.serve.run import load_run
    from recsys.serve.views import Views

    run = load_run(RunFolder(export))
    views = Views(settings, run)
    try:
        recommender = Recommender(run, views)
        state = views.state
        known = [c for c in ids if state.known(state.row(c))][:calls]
        today = (views.shared.newest_day or date.today()) + timedelta(days=1)
        batches = [state.customers([c], today, queries=True) for c in known]
        codes = [
            run.inputs.assemble(state.profile(state.row(c))[None], today.month,
                                np.full((1, 4), run.inputs.no_article))
            for c in known
        ]  # fmt: skip
        candidates = views.shared.day.candidates
        parts = {
            "whole answer (state, tower, search, strategy)": (
                lambda c: recommender.recommend(c, 12), known),
            "Customers from the state (incl. the tower)": (
                lambda c: state.customers([c], today, queries=True), known),
            "numpy tower": (run.tower, codes),
            f"search over {len(candidates):,} candidates (faiss)": (
                lambda b: candidates.search(b.queries, 12), batches),
        }  # fmt: skip
        rows = []
        for step, (call, items) in parts.items():
            cpu = []
            for item in items:
                began = time.thread_time()
                call(item)
                cpu.append(time.thread_time() - began)
            ms = np.asarray(cpu) * 1e3
            rows.append({"step": step, "p50 ms (CPU)": round(float(np.median(ms)), 3),
                         "p95 ms (CPU)": round(float(np.percentile(ms, 95)), 3)})  # fmt: skip
        return rows
    finally:
        views.close()


def freshness_and_soak(settings, export: Path, env: dict, args, script: Path) -> tuple[list, dict]:
    """Produce -> first history answer holding it, through a real broker and consumer;
    then, with `args.soak`, the soak on the same service."""
    from confluent_kafka import Producer

    from recsys.ingest.broker import LocalBroker, free_port
    from recsys.store.engine import open_engine

    work = Path(tempfile.mkdtemp(prefix="bench-serve-", dir=settings.duckdb_path.parent))
    broker = LocalBroker(data_dir=work / "kafka", port=free_port())
    broker.start()
    try:
        shutil.copy(settings.duckdb_path, work / "hm.duckdb")
        env = {**env, "DUCKDB_PATH": str(work / "hm.duckdb"),
               "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}  # fmt: skip
        with open_engine(settings, read_only=True) as engine:
            newest = engine.rows("SELECT MAX(t_dat) FROM transactions_raw")[0][0]
            buyers = [c for (c,) in engine.rows(
                "SELECT DISTINCT customer_id FROM transactions_raw LIMIT 50000")]  # fmt: skip
        known = set(customer_ids(export, 0.0, n=10**9))
        buyers = [b for b in buyers if b in known]
        article = "0" * 9 + "1"  # an id no customer has bought: it can only be the new one
        day = newest + timedelta(days=1)
        rates = [float(rate) for rate in args.rates.split(",")]
        rng = random.Random(3)
        picked = rng.sample(buyers, min(2 * len(rates) * args.events + 1, len(buyers)))
        n = args.events
        rounds = [picked[1 + i * n : 1 + (i + 1) * n] for i in range(2 * len(rates))]
        with service(env, "--consume", "--from-now") as running:
            host, port = "127.0.0.1", int(running.url.rsplit(":", 1)[1])
            timed = functools.partial(
                _time_events, host, port, broker.bootstrap, article, day, args.pollers, Producer
            )
            timed(rates[0], picked[:1])  # untimed: the group join (seconds) is not freshness
            rows = []
            for rate, cold, warm in zip(rates, rounds[::2], rounds[1::2], strict=True):
                rows.append({"buyers": "cold (not read before)", **timed(rate, cold)})
                _look_up(host, port, warm)
                rows.append({"buyers": "warm (read before)", **timed(rate, warm)})
            soak = _soak(running, script, broker.bootstrap, buyers, day, args.soak)
            return rows, soak
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def _soak(running: Service, script: Path, bootstrap: str, buyers, day, seconds: float) -> dict:
    """wrk at SOAK_CONNECTIONS for `seconds` while purchases arrive at SOAK_RATE per second."""
    if not seconds:
        return {}
    from confluent_kafka import Producer

    stop = threading.Event()

    def purchases() -> None:
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        rng, began, sent = random.Random(11), time.monotonic(), 0
        while not stop.is_set():
            customer = rng.choice(buyers)
            value = {"event_id": f"soak:{sent}", "t_dat": day.isoformat(),
                     "customer_id": customer, "article_id": f"{rng.randrange(10**9):010d}",
                     "price": 0.05, "sales_channel_id": 2}  # fmt: skip
            producer.produce("transactions_topic", json.dumps(value).encode(), customer.encode())
            producer.poll(0)
            sent += 1
            time.sleep(max(0.0, began + sent / SOAK_RATE - time.monotonic()))
        producer.flush(30)

    rss_start = running.rss_mb()
    producer = threading.Thread(target=purchases)
    producer.start()
    try:
        load = wrk(running.url, script, SOAK_CONNECTIONS, seconds)
    finally:
        stop.set()
        producer.join()
    rss_end = running.rss_mb()
    growth = round(100 * (rss_end - rss_start) / rss_start, 1)
    return {**load, "RSS start MB": round(rss_start), "RSS end MB": round(rss_end),
            "RSS growth %": growth}  # fmt: skip


def _look_up(host: str, port: int, customers: list[str]) -> None:
    """One history request per customer, untimed: the service has then answered them."""
    con = http.client.HTTPConnection(host, port, timeout=30)
    for customer in customers:
        con.request("GET", f"/customers/{customer}/history?limit=1")
        con.getresponse().read()
    con.close()


def _time_events(
    host, port, bootstrap, article, day, pollers, producer_class, rate, customers
) -> dict:
    """Produce at `rate`; `pollers` threads share the events, each asking for its oldest
    event not yet seen, again and again, then its next: the resolution is one request."""
    producer = producer_class({"bootstrap.servers": bootstrap, "linger.ms": 0})
    produced: dict[str, float] = {}  # insertion order = produce order
    seen: dict[str, float] = {}
    polls: list[float] = []
    done = threading.Event()

    def poller(share: list[str]) -> None:
        con = http.client.HTTPConnection(host, port, timeout=30)
        while not done.is_set():
            pending = [c for c in share if c in produced and c not in seen]
            if not pending:
                time.sleep(0.001)
                continue
            began = time.perf_counter()
            con.request("GET", f"/customers/{pending[0]}/history?limit=1")
            body = json.loads(con.getresponse().read())
            polls.append(time.perf_counter() - began)
            if body["items"] and body["items"][0]["article_id"] == article:
                seen[pending[0]] = time.perf_counter() - produced[pending[0]]

    threads = [
        threading.Thread(target=poller, args=(customers[i::pollers],)) for i in range(pollers)
    ]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    for customer in customers:
        value = {"event_id": f"bench-serve:{rate}:{customer}", "t_dat": day.isoformat(),
                 "customer_id": customer, "article_id": article, "price": 0.05,
                 "sales_channel_id": 2}  # fmt: skip
        producer.produce("transactions_topic", json.dumps(value).encode(), customer.encode())
        producer.poll(0)
        produced[customer] = time.perf_counter()
        time.sleep(max(0.0, began + len(produced) / rate - time.perf_counter()))  # steady
    producer.flush(30)
    deadline = time.monotonic() + 60
    while len(seen) < len(produced) and time.monotonic() < deadline:
        time.sleep(0.1)
    done.set()
    for thread in threads:
        thread.join()
    seconds = np.asarray(list(seen.values()) or [np.nan])
    return {
        "events": len(produced),
        "seen": len(seen),
        "rate /s": rate,
        "p50 s": round(float(np.percentile(seconds, 50)), 3),
        "p95 s": round(float(np.percentile(seconds, 95)), 3),
        "max s": round(float(seconds.max()), 3),
        "poll p50 ms": round(float(np.median(polls)) * 1e3, 1) if polls else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per level")
    parser.add_argument("--levels", default="1,8,32", help="wrk connections per level")
    parser.add_argument("--unknown-share", type=float, default=0.2)
    parser.add_argument("--events", type=int, default=1_000, help="purchases per round")
    parser.add_argument("--rates", default="100,400", help="events/s, two rounds each")
    parser.add_argument("--pollers", type=int, default=4, help="threads timing the events")
    parser.add_argument("--soak", type=float, default=0, help="seconds of soak (0: none)")
    parser.add_argument("--name", default="serve-demo", help="bench/results/<name>.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: `make bench-deps` installs it (Debian package wrk)")

    from recsys.run_folder import RunFolder
    from recsys.settings import load_settings

    settings = load_settings()
    export = RunFolder.latest(settings).path
    env = dict(os.environ)
    ids = customer_ids(export, args.unknown_share)
    work = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
    script = lua_script(work, ids)
    with service(env) as running:
        health = json.loads(urllib.request.urlopen(f"{running.url}/health").read())
        rss_started = running.rss_mb()
        wrk(running.url, script, 8, WARMUP_S)
        levels = [wrk(running.url, script, int(c), args.duration) for c in args.levels.split(",")]
        memory = {"start s": round(running.start_s, 1), "RSS after start MB": round(rss_started),
                  "RSS after the load MB": round(running.rss_mb())}  # fmt: skip
    steps = floor(settings, export, ids)
    text = (
        f"Run {health['run_id']} on the {health['engine']} engine: {health['customers']:,} "
        f"customers, {health['served_articles']:,} candidate articles; wrk cycling "
        f"{len(ids):,} customer ids, {args.unknown_share:.0%} unknown; {args.duration:g} s "
        f"per level after a {WARMUP_S} s warm-up.\n\n"
        + markdown_table(levels)
        + "\n\nThe service (from the command to its first /health answer):\n\n"
        + markdown_table([memory])
        + "\n\nCPU per answer in-process, no HTTP (known customers):\n\n"
        + markdown_table(steps)
        + "\n"
    )
    fresh, soak = freshness_and_soak(settings, export, env, args, script)
    text += "\nFreshness, produce -> first answer holding it:\n\n" + markdown_table(fresh) + "\n"
    if soak:
        text += (f"\nSoak: {args.soak:g} s at {SOAK_CONNECTIONS} connections while purchases "
                 f"arrive at {SOAK_RATE:g}/s:\n\n" + markdown_table([soak]) + "\n")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    print(text)
    write_result(args.name, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
