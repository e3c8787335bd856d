"""Benchmark: the recommendation service's latency, throughput and freshness (not a test).

    nice -n 19 python bench/serve.py --duration 60 --name serve-demo            # latency
    nice -n 19 python bench/serve.py --duration 60 --freshness --name serve-demo  # + freshness

Uses the settings of the environment (DATA_DIR, DUCKDB_PATH, OUTPUT_DIR: the newest run).
The service runs as its own process (`python -m recsys.serve` on a free loopback port);
the clients are threads of this process, each with one keep-alive connection, asking
`/recommendations/<id>` for random customers: `--unknown-share` of them ids the data has
never seen, the rest ids the model knows. Both processes share the machine's cores.

The floor is what one answer cannot go below: one call of the query tower plus one faiss
search, in this process, without HTTP or database; next to it the same tower through
Keras `model.predict` (what a naive service would call) and as an eager call.

Freshness (`--freshness`): a local broker on free ports, the service with its consumer
(`--consume --from-now`) on a copy of the DuckDB file, then `--events` purchases by
known customers of articles new to them, produced at each of `--rates` events/s (the
issue's 100, and 25, where the service has spare capacity); each is timed
from its produce call to the first `/customers/<id>/history` answer that holds it (its
`as_of` then holds the day too). `--pollers` threads share the events (event i is
polled by poller i mod n): each asks for its oldest event not yet seen until it is
there, then its next, so the printed poll time is the resolution, and a poller never
waits behind another's events. Every event needs one answer at least: at a rate near
what the service answers per second, the figure measures that capacity as much as the
consumer's delay. Two rounds per rate, other buyers each: "cold", buyers the service
has not read since it started, and "warm", buyers it answered once before the round (a
service in use has read their rows before; a first look-up also loads their index path).
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Keras predict logs every call

from results import markdown_table, write_result  # noqa: E402

START_TIMEOUT_S = 900
WARMUP_S = 2.0


@dataclass
class Level:
    clients: int
    latencies: list[float]
    errors: int
    seconds: float

    def row(self) -> dict:
        ms = np.asarray(self.latencies) * 1e3
        return {
            "clients": self.clients,
            "requests": len(self.latencies),
            "errors": self.errors,
            "req/s": round(len(self.latencies) / self.seconds, 1),
            "p50 ms": round(float(np.percentile(ms, 50)), 1),
            "p95 ms": round(float(np.percentile(ms, 95)), 1),
            "p99 ms": round(float(np.percentile(ms, 99)), 1),
        }


@contextmanager
def service(env: dict[str, str], *flags: str):
    """`python -m recsys.serve` on a free port; yields (host, port); stopped at the end."""
    from recsys.ingest.broker import free_port

    port = free_port()
    env = {**env, "SERVE_HOST": "127.0.0.1", "SERVE_PORT": str(port)}
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "recsys.serve", *flags], cwd=REPO, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the service stopped: {Path(log.name).read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the service did not start in time") from None
                time.sleep(0.5)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        process.wait(timeout=60)
        os.unlink(log.name)


def load_level(host: str, port: int, ids: list[str], clients: int, seconds: float) -> Level:
    """`clients` threads asking for random customers for `seconds` (after a warm-up)."""
    start = time.monotonic() + WARMUP_S
    stop = start + seconds
    results: list[tuple[list[float], int]] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        con = http.client.HTTPConnection(host, port, timeout=30)
        latencies, errors = [], 0
        while (now := time.monotonic()) < stop:
            began = time.perf_counter()
            try:
                con.request("GET", f"/recommendations/{rng.choice(ids)}?k=12")
                response = con.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                con = http.client.HTTPConnection(host, port, timeout=30)
            took = time.perf_counter() - began
            if now >= start and ok:
                latencies.append(took)
            elif now >= start:
                errors += 1
        results.append((latencies, errors))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = [x for lat, _ in results for x in lat]
    return Level(clients, latencies, sum(e for _, e in results), seconds)


def customer_ids(export: Path, unknown_share: float, n: int = 5_000) -> list[str]:
    """Known ids (the model's vocabulary) mixed with ids nobody has, in the given share."""
    import pandas as pd

    vocabulary = export / "workflows/customers/categories/unique.customer_id.parquet"
    known = pd.read_parquet(vocabulary)["customer_id"].dropna().astype(str).tolist()
    rng = random.Random(7)
    picked = rng.sample(known, min(n, len(known)))
    unknown = [f"{rng.getrandbits(256):064x}" for _ in range(int(len(picked) * unknown_share))]
    return picked[: len(picked) - len(unknown)] + unknown


def floor(settings, export: Path, ids: list[str], calls: int = 300) -> list[dict]:
    """Per-call time of the tower (direct, eager, Keras predict) and of one faiss search;
    and of a whole answer in this process, without HTTP (the service's own code on the
    views, one thread; also as the CPU time of its thread, which the machine's other
    load changes less)."""
    import pandas as pd

    from recsys.evaluate.scoring import customers_as_of
    from recsys.serve.recommender import Recommender
    from recsys.serve.run import load_run
    from recsys.serve.views import Views
    from recsys.store.engine import open_engine
    from recsys.train.features import FittedFeatures, prepare_customers
    from recsys.train.recent_articles import customer_slices
    from recsys.train.towers import embed

    run = load_run(export)
    with open_engine(settings, read_only=True) as engine:
        when = pd.Timestamp(date.today())
        # one slice of the customers: all of them at once run out of DuckDB's memory on
        # the full data (the look-back over every purchase)
        some = customers_as_of(when.date(), customer_slices()[0])
        profiles = engine.query(f"{some} LIMIT {calls}")
    encoded = [
        run.encoder.encode(prepare_customers(profiles.iloc[[i]], when)) for i in range(calls)
    ]
    features = FittedFeatures.load(export / "workflows")

    def per_call(fn, items) -> float:
        began = time.perf_counter()
        for item in items:
            fn(item)
        return (time.perf_counter() - began) / len(items) * 1e3

    queries = [run.tower(e) for e in encoded]
    direct = per_call(run.tower, encoded)
    search = per_call(lambda q: run.index.search(q, 12), queries)
    eager = per_call(lambda e: run.tower.model(e, training=False), encoded[:50])
    frames = [features.customers(prepare_customers(profiles.iloc[[i]], when)) for i in range(20)]
    predict = per_call(lambda f: embed(run.tower.model, f, features.schema), frames)
    views = Views(settings, run)
    try:
        recommender = Recommender(run, views)
        asked = ids[:calls]
        for customer in asked:  # the encoded profiles are cached by value, as in the service
            recommender.recommend(customer, 12)
        began = time.thread_time()
        answer = per_call(lambda customer: recommender.recommend(customer, 12), asked)
        answer_cpu = (time.thread_time() - began) / len(asked) * 1e3
    finally:
        views.close()
    return [
        {"step": "query tower, tf.function (the service)", "ms per call": round(direct, 3)},
        {"step": "faiss search, top 12", "ms per call": round(search, 3)},
        {"step": "floor: tower + search", "ms per call": round(direct + search, 3)},
        {"step": "query tower, eager Keras call", "ms per call": round(eager, 3)},
        {"step": "query tower, Keras model.predict", "ms per call": round(predict, 3)},
        {"step": "whole answer in-process, CPU of its thread", "ms per call":
         round(answer_cpu, 3)},
        {"step": "whole answer in-process (views + tower + search)", "ms per call":
         round(answer, 3)},
    ]  # fmt: skip


def freshness(
    settings, export: Path, env: dict, events: int, rates: list[float], pollers: int
) -> list[dict]:
    """Produce -> first history answer holding it, through a real broker and consumer:
    per rate, one row for buyers the service has not read yet, one for buyers it has."""
    from confluent_kafka import Producer

    from recsys.ingest.broker import LocalBroker, free_port
    from recsys.store.engine import open_engine

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    broker = LocalBroker(data_dir=work / "kafka", port=free_port())
    broker.start()
    try:
        shutil.copy(settings.duckdb_path, work / "hm.duckdb")
        env = {**env, "DUCKDB_PATH": str(work / "hm.duckdb"),
               "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}  # fmt: skip
        with open_engine(settings, read_only=True) as engine:
            newest = engine.query("SELECT MAX(t_dat) AS d FROM transactions_t").iloc[0, 0]
            # From the base table: on the full data DuckDB would compute the whole view
            # (every customer's top 12) and run out of its memory limit.
            buyers = engine.query("SELECT DISTINCT customer_id FROM transactions_raw LIMIT 20000")[
                "customer_id"
            ].tolist()
        known = set(customer_ids(export, 0.0, n=10**9))
        buyers = [b for b in buyers if b in known]
        article = "0" * 9 + "1"  # an id no customer has bought: it can only be the new one
        day = (np.datetime64(newest, "D") + 1).astype(date) if newest else date.today()
        picked = random.Random(3).sample(buyers, min(2 * len(rates) * events + 1, len(buyers)))
        rounds = [picked[1 + i * events : 1 + (i + 1) * events] for i in range(2 * len(rates))]
        with service(env, "--consume", "--from-now") as (host, port):
            timed = functools.partial(
                _time_events, host, port, broker.bootstrap, article, day, pollers, Producer
            )
            timed(rates[0], picked[:1])  # untimed: the group join (seconds) is not freshness
            rows = []
            for rate, cold, warm in zip(rates, rounds[::2], rounds[1::2], strict=True):
                rows.append({"buyers": "cold", **timed(rate, cold)})
                _look_up(host, port, warm)
                rows.append({"buyers": "warm", **timed(rate, warm)})
            return rows
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def _look_up(host: str, port: int, customers: list[str]) -> None:
    """One history request per customer, untimed: the service has then read their rows."""
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
        value = {"event_id": f"bench-serve:{customer}", "t_dat": day.isoformat(),
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
        "pollers": pollers,
        "p50 s": round(float(np.percentile(seconds, 50)), 3),
        "p95 s": round(float(np.percentile(seconds, 95)), 3),
        "max s": round(float(seconds.max()), 3),
        "poll p50 ms": round(float(np.median(polls)) * 1e3, 1) if polls else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per level")
    parser.add_argument("--levels", default="1,8,32", help="concurrent clients per level")
    parser.add_argument("--unknown-share", type=float, default=0.2)
    parser.add_argument("--freshness", action="store_true")
    parser.add_argument("--events", type=int, default=250)
    parser.add_argument("--rates", default="100,25", help="events/s, one freshness round each")
    parser.add_argument("--pollers", type=int, default=4, help="threads timing the events")
    parser.add_argument("--name", default="serve-demo", help="bench/results/<name>.md")
    args = parser.parse_args()

    from recsys.serve.run import latest_export
    from recsys.settings import load_settings

    settings = load_settings()
    export = latest_export(settings)
    env = dict(os.environ)
    ids = customer_ids(export, args.unknown_share)
    with service(env) as (host, port):
        health = json.loads(urllib.request.urlopen(f"http://{host}:{port}/health").read())
        levels = [
            load_level(host, port, ids, int(c), args.duration) for c in args.levels.split(",")
        ]
    steps = floor(settings, export, ids)
    p50_one = levels[0].row()["p50 ms"]
    floor_ms, answer_ms = steps[2]["ms per call"], steps[-1]["ms per call"]
    text = (
        f"Run {health['run_id']} on the {health['engine']} engine: {health['customers']:,} "
        f"customers, {health['served_articles']:,} articles in the index; "
        f"{len(ids):,} customer ids, {args.unknown_share:.0%} unknown; "
        f"{args.duration:g} s per level.\n\n"
        + markdown_table([level.row() for level in levels])
        + "\n\n"
        + markdown_table(steps)
        + f"\n\nOne client's p50 is {p50_one / floor_ms:,.0f}x the floor ({floor_ms} ms); "
        f"a whole answer in-process is {answer_ms / floor_ms:,.1f}x the floor.\n"
    )
    if args.freshness:
        rates = [float(rate) for rate in args.rates.split(",")]
        fresh = freshness(settings, export, env, args.events, rates, args.pollers)
        text += "\nFreshness, produce -> first answer holding it:\n\n" + markdown_table(fresh)
    print(text)
    write_result(args.name, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
