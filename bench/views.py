"""Benchmark: filtered_dataframe_t in the embedded engine vs. the same logic in pandas,
and freshness of the Kafka path. Prints a table; numbers are measured side by side.

    flock /tmp/heavy.lock python bench/views.py --data /work/hm-full
    flock /tmp/heavy.lock python bench/views.py --data /work/hm-full --transactions 15000000
    flock /tmp/heavy.lock python bench/views.py --data data/demo --freshness

pandas runs out of memory on the full transactions file in 24 GB, so the side-by-side
ratio is measured on its first N transactions (`--transactions`) with the full
catalogue and customers.

Each side runs in its own child process so that its peak memory (max RSS) is its own.

"compute" is every row and every column of the training frame, made the same way on
both sides (`--sink`):
  arrow    (default) what a program reading the view gets: the embedded engine
           streams the result as Arrow record batches and the bench walks all of
           them; pandas builds its frame in memory. Nothing is written.
  parquet  both write the frame to Parquet (adds the encoder's cost on both sides;
           on the full data the engine took the same wall time either way).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results import markdown_table, write_result  # noqa: E402

MIN_PURCHASES = 5
CUTOFF = dt.date(2020, 9, 16)  # the last week of the H&M data is the test week


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_embedded(data: Path, work: Path, sink: str) -> dict:
    from recsys.settings import load_settings
    from recsys.store.engine import open_engine

    settings = load_settings(env={"DATA_DIR": str(data), "DUCKDB_PATH": str(work / "b.duckdb")})
    started = time.perf_counter()
    with open_engine(settings) as engine:
        engine.apply()
        report = engine.load_csv(data)
        loaded = time.perf_counter()
        engine.set_training_settings(min_purchases=MIN_PURCHASES, cutoff=CUTOFF)
        if sink == "parquet":
            out = work / "embedded.parquet"
            engine.execute(f"COPY (SELECT * FROM filtered_dataframe_t) TO '{out}'")
            done = time.perf_counter()
            rows = engine.query(f"SELECT COUNT(*) FROM read_parquet('{out}')").iloc[0, 0]
        else:
            rows = 0
            for batch in engine.record_batches("SELECT * FROM filtered_dataframe_t"):
                rows += batch.num_rows
            done = time.perf_counter()
    return {
        "load_s": loaded - started,
        "compute_s": done - loaded,
        "rows": int(rows),
        "rejected": report.rejected,
        "peak_mb": _peak_mb(),
        "file_mb": settings.duckdb_path.stat().st_size / 1e6,
    }


def run_pandas(data: Path, work: Path, sink: str) -> dict:
    """The same rules as the SQL (cleaning, dedup, fold, joins, filter), written plainly."""
    import pandas as pd

    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(data / name, engine="pyarrow", dtype_backend="pyarrow", dtype=str)

    started = time.perf_counter()
    tx = read("transactions_train.csv")
    articles, customers, images = read("articles.csv"), read("customers.csv"), read("images.csv")
    loaded = time.perf_counter()

    tx["t_dat"] = pd.to_datetime(tx["t_dat"])
    tx["price"] = tx["price"].astype("float64")
    tx["sales_channel_id"] = tx["sales_channel_id"].astype("int64")
    tx["event_id"] = "transactions_train.csv:" + (tx.index + 2).astype(str)
    tx = tx.drop_duplicates("event_id")
    dedup = (
        tx.groupby(["t_dat", "customer_id", "article_id"], observed=True)
        .agg(
            units=("event_id", "size"),
            price=("price", "max"),
            sales_channel_id=("sales_channel_id", "max"),
        )
        .reset_index()
    )
    for column in ("FN", "Active"):
        customers[column] = customers[column].astype("float64").fillna(0.0)
    customers["age"] = customers["age"].astype("float64").astype("Int64")
    frequency = customers["fashion_news_frequency"].fillna("NONE")
    customers["fashion_news_frequency"] = frequency.where(frequency.str.upper() != "NONE", "NONE")
    article_columns = [
        *("article_id", "product_code", "prod_name", "product_type_no", "product_type_name"),
        *("product_group_name", "graphical_appearance_no", "colour_group_code"),
        *("colour_group_name", "perceived_colour_value_id", "perceived_colour_master_id"),
        *("department_no", "index_code", "index_group_no", "section_no", "garment_group_no"),
    ]
    metadata = articles[article_columns].merge(images, on="article_id", how="left")
    joined = dedup.merge(metadata, on="article_id", how="left").merge(
        customers, on="customer_id", how="left"
    )
    before = joined[joined["t_dat"] < pd.Timestamp(CUTOFF)]
    counts = before.groupby("customer_id", observed=True).size()
    keep = counts[counts >= MIN_PURCHASES].index
    result = before[before["customer_id"].isin(keep)]
    if sink == "parquet":
        result.to_parquet(work / "pandas.parquet")
    done = time.perf_counter()
    return {
        "load_s": loaded - started,
        "compute_s": done - loaded,
        "rows": len(result),
        "peak_mb": _peak_mb(),
    }


def first_transactions(data: Path, count: int, work: Path) -> Path:
    """A data folder with the first `count` transactions of `data` and all of its other files."""
    subset = work / f"first-{count}"
    subset.mkdir()
    for source in data.glob("*.csv"):
        if source.name != "transactions_train.csv":
            (subset / source.name).symlink_to(source.resolve())
    with (
        (data / "transactions_train.csv").open("rb") as full,
        (subset / "transactions_train.csv").open("wb") as part,
    ):
        for _, line in zip(range(count + 1), full, strict=False):  # + 1: the header
            part.write(line)
    return subset


def in_child(side: str, data: Path, work: Path, sink: str) -> dict:
    """Run one side in a fresh interpreter: its max RSS is then its own."""
    command = [sys.executable, __file__, "--child", side, "--data", str(data), "--work", str(work)]
    command += ["--sink", sink]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode < 0:  # SIGKILL here has so far always been the kernel's OOM killer
        name = signal.Signals(-out.returncode).name
        return {"error": f"killed by {name} (out of memory? see `dmesg`)"}
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def freshness(data: Path, work: Path, rate: int, seconds: float, probes_every: float) -> dict:
    """Produce transactions at a steady rate; time each probe until it shows in the view."""
    from confluent_kafka import Producer

    from recsys.datasets.hm_schema import TABLES
    from recsys.ingest.broker import LocalBroker, free_port
    from recsys.ingest.events import TransactionEvents
    from recsys.ingest.kafka_clients import create_topics
    from recsys.ingest.loaders import iter_batches
    from recsys.ingest.producer import encode_json, produce
    from recsys.settings import load_settings
    from recsys.store.engine import open_engine

    broker = LocalBroker(data_dir=work / "kafka", port=free_port())
    broker.start()
    try:
        settings = load_settings(
            env={
                "DATA_DIR": str(data),
                "DUCKDB_PATH": str(work / "fresh.duckdb"),
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            }
        )
        create_topics(settings)
        produce(settings, data, topics=["articles_topic", "customers_topic", "images_topic"])
        with open_engine(settings) as engine:
            engine.apply()
            engine.set_training_settings(min_purchases=1, cutoff=dt.date(9999, 12, 31))
        env = {
            **os.environ,
            "DATA_DIR": str(data),
            "DUCKDB_PATH": str(work / "fresh.duckdb"),
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        }
        consumer = subprocess.Popen(  # its own process, as in real use
            [sys.executable, "-m", "recsys.store.consumer"], env=env, cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
        batch = next(iter_batches("transactions", data, batch_rows=rate * int(seconds + 1)))[0]
        batch = TransactionEvents().take(batch)
        values = encode_json(batch, TABLES["transactions"]).to_pylist()
        _wait_until_consuming(producer, settings)  # group join and first batch: not measured
        latencies, pending = [], {}
        started, sent, probe_no = time.monotonic(), 0, 0
        next_probe = started
        while time.monotonic() - started < seconds or pending:
            now = time.monotonic()
            due = min(int((now - started) * rate), len(values))
            for value in values[sent:due]:
                producer.produce("transactions_topic", value=value)
            sent = max(sent, due)
            if now >= next_probe and now - started < seconds:
                probe_no += 1
                customer, value = _probe(probe_no)
                producer.produce("transactions_topic", value=value)
                pending[customer] = time.monotonic()
                next_probe = now + probes_every
            producer.poll(0)
            producer.flush(0.05)
            if pending:
                with open_engine(settings, read_only=True) as reader:
                    seen = reader.query(
                        "SELECT DISTINCT customer_id FROM filtered_dataframe_t "
                        "WHERE customer_id IN (SELECT UNNEST($1))",
                        [list(pending)],
                    )["customer_id"]
                for customer in seen:
                    latencies.append(time.monotonic() - pending.pop(customer))
                time.sleep(0.2)  # leave the file to the consumer between checks
            if time.monotonic() - started > seconds + 30:
                break  # probes that never showed are reported as missing
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(timeout=60)
    finally:
        broker.stop()
    latencies.sort()
    return {
        "rate": rate,
        "probes": probe_no,
        "missing": probe_no - len(latencies),
        "p50_s": latencies[len(latencies) // 2] if latencies else None,
        "p95_s": latencies[int(len(latencies) * 0.95)] if latencies else None,
        "max_s": latencies[-1] if latencies else None,
    }


def _probe(number: int) -> tuple[str, bytes]:
    """A purchase by a customer of its own, so its arrival is unambiguous."""
    customer = f"{number:064x}"
    event = {
        "event_id": f"probe:{number}",
        "t_dat": "2020-09-22",
        "customer_id": customer,
        "article_id": "0000000001",
        "price": 0.01,
        "sales_channel_id": 1,
    }
    return customer, json.dumps(event).encode()


def _wait_until_consuming(producer: object, settings: object, timeout: float = 120.0) -> None:
    from recsys.store.engine import open_engine

    customer, value = _probe(0)
    producer.produce("transactions_topic", value=value)
    producer.flush(10)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open_engine(settings, read_only=True) as reader:
            query = "SELECT COUNT(*) FROM transactions_raw WHERE customer_id = $1"
            if reader.query(query, [customer]).iloc[0, 0]:
                return
        time.sleep(0.2)
    raise RuntimeError("the consumer wrote nothing within 120 s")


def result_table(results: dict[str, dict]) -> list[str]:
    """Markdown lines: one row per side, then the speed-up when both finished."""
    rows = []
    for name, r in results.items():
        if "error" in r:
            figures = dict.fromkeys(("load s", "compute s", "total s", "peak MB", "rows"))
            rows.append({"engine": name, **figures, "note": f"failed: {r['error']}"})
            continue
        rows.append(
            {
                "engine": name,
                "load s": round(r["load_s"], 1),
                "compute s": round(r["compute_s"], 1),
                "total s": round(r["load_s"] + r["compute_s"], 1),
                "peak MB": round(r["peak_mb"]),
                "rows": r["rows"],
                "note": f"DuckDB file {r['file_mb']:,.0f} MB" if "file_mb" in r else "",
            }
        )
    lines = markdown_table(rows).splitlines()
    ok = [r for r in results.values() if "error" not in r]
    if len(ok) == 2:
        embedded, pandas = ok
        speedup = (pandas["load_s"] + pandas["compute_s"]) / (
            embedded["load_s"] + embedded["compute_s"]
        )
        lines += ["", f"speed-up embedded vs pandas: {speedup:.1f}x; same rows: "
                  f"{embedded['rows'] == pandas['rows']}"]  # fmt: skip
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument(
        "--transactions", type=int, help="use only the first N transactions (default: all)"
    )
    parser.add_argument(
        "--sink", choices=["arrow", "parquet"], default="arrow", help="see the module docstring"
    )
    parser.add_argument("--freshness", action="store_true", help="also measure the Kafka path")
    parser.add_argument("--rate", type=int, default=2000, help="transactions/s for freshness")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--child", choices=["embedded", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side = run_embedded if args.child == "embedded" else run_pandas
        print(json.dumps(side(args.data, args.work, args.sink)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-views-") as tmp:
        work = Path(tmp)
        data = args.data
        if args.transactions:
            data = first_transactions(args.data, args.transactions, work)
        results = {"embedded (DuckDB views)": in_child("embedded", data, work, args.sink)}
        if not args.skip_pandas:
            results["pandas"] = in_child("pandas", data, work, args.sink)
        lines = [
            f"filtered_dataframe_t, N={MIN_PURCHASES}, cutoff={CUTOFF}, data={args.data.name}"
            f"{f' (first {args.transactions:,} transactions)' if args.transactions else ''}, "
            f"every row and column to {args.sink}",
            "",
            *result_table(results),
        ]
        if args.freshness:
            f = freshness(args.data, work, args.rate, args.seconds, probes_every=0.5)
            shown = {k: "-" if f[k] is None else f"{f[k]:.2f}" for k in ("p50_s", "p95_s", "max_s")}
            lines += [
                "",
                f"freshness at {f['rate']:,} tx/s: p50 {shown['p50_s']} s, p95 {shown['p95_s']} s,"
                f" max {shown['max_s']} s over {f['probes']} probes ({f['missing']} missing)",
            ]
    print("\n".join(lines))
    name = f"views-{args.data.name}" + (f"-first-{args.transactions}" if args.transactions else "")
    write_result(name + ("-freshness" if args.freshness else ""), "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
