"""Benchmark: two-tower training throughput, and full-catalogue top-12 scoring throughput.

    flock /tmp/heavy.lock .venv/bin/python bench/train.py --data-dir data/demo
    flock /tmp/heavy.lock .venv/bin/python bench/train.py --data-dir /work/hm-full \
        --max-rows 2000000

Training: the last `--max-rows` purchases of each data dir (all of them by default),
encoded by the project's NVTabular workflow, trained with the project's model at each
batch size for two epochs; epoch 1 includes graph tracing, epoch 2 is the steady
rate. The projected full epoch is (rows of the whole file) / (epoch-2 rate).

Scoring: `Candidates.search` (faiss, exact inner product) of random query embeddings over a
random catalogue at the full H&M size (1,371,980 customers x 105,542 articles), timed
on `--scoring-customers` of them and projected to all customers.

The tables go to bench/results/train-<data dir names>.md (bench/results.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DASK_DATAFRAME__QUERY_PLANNING", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.csv as pa_csv  # noqa: E402
from results import markdown_table, write_result  # noqa: E402

from recsys.strategy.inputs import Candidates  # noqa: E402
from recsys.train import towers  # noqa: E402
from recsys.train.features import fit_features  # noqa: E402

FULL_CUSTOMERS = 1_371_980
FULL_ARTICLES = 105_542


def training_frame(data_dir: Path, max_rows: int | None) -> tuple[pd.DataFrame, int]:
    """The last `max_rows` purchases joined with customer and article columns; total rows."""
    strings = {"customer_id": "string", "article_id": "string", "postal_code": "string"}
    import pyarrow as pa

    types = {k: pa.string() for k in strings}
    tx = pa_csv.read_csv(
        data_dir / "transactions_train.csv",
        convert_options=pa_csv.ConvertOptions(column_types=types),
    )
    total = tx.num_rows
    if max_rows and tx.num_rows > max_rows:
        tx = tx.slice(tx.num_rows - max_rows)
    frame = tx.to_pandas()
    frame["t_dat"] = pd.to_datetime(frame["t_dat"])
    customers = pd.read_csv(
        data_dir / "customers.csv", dtype={"customer_id": str, "postal_code": str}
    )
    articles = pd.read_csv(data_dir / "articles.csv", dtype={"article_id": str})
    frame = frame.merge(customers, on="customer_id", how="left")
    return frame.merge(articles, on="article_id", how="left"), total


def bench_training(data_dir: Path, max_rows: int | None, batch_sizes: list[int]) -> list[dict]:
    frame, total = training_frame(data_dir, max_rows)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cutoff = frame["t_dat"].max() + pd.Timedelta(days=1)
        features = fit_features(frame, cutoff, Path(tmp))
        encoded = features.interactions(frame)
        prep = time.perf_counter() - start
        freq = features.item_frequencies(encoded)
        rows = []
        for batch in batch_sizes:
            params = towers.HyperParameters(learning_rate=0.01, batch_size=batch, epochs=2)
            result = towers.train(encoded, features.schema, freq, params)
            first, steady = result.seconds_per_epoch
            rate = len(encoded) / steady
            rows.append(
                {
                    "data": data_dir.name,
                    "rows timed": len(encoded),
                    "rows in file": total,
                    "batch": batch,
                    "fit+encode s": round(prep, 1),
                    "epoch 1 s": round(first, 1),
                    "epoch 2 s": round(steady, 1),
                    "examples/s": round(rate),
                    "full epoch (min)": round(total / rate / 60, 1),
                    "device": result.device,
                }
            )
            print(rows[-1], flush=True)
    return rows


def bench_scoring(customers: int, dim: int = 64) -> dict:
    rng = np.random.default_rng(0)
    items = rng.standard_normal((FULL_ARTICLES, dim), dtype=np.float32)
    queries = rng.standard_normal((customers, dim), dtype=np.float32)
    start = time.perf_counter()
    Candidates(items, np.arange(len(items))).search(queries, 12)
    seconds = time.perf_counter() - start
    rate = customers / seconds
    return {
        "customers timed": customers,
        "articles": FULL_ARTICLES,
        "seconds": round(seconds, 1),
        "customers/s": round(rate),
        "all 1,371,980 customers (min)": round(FULL_CUSTOMERS / rate / 60, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        action="append",
        default=[],
        help="a folder with the H&M CSVs (repeatable)",
    )
    parser.add_argument(
        "--max-rows", type=int, default=None, help="time training on the last N purchases only"
    )
    parser.add_argument("--batch-sizes", default="1024,4096")
    parser.add_argument(
        "--scoring-customers",
        type=int,
        default=200_000,
        help=f"customers scored for the projection (max {FULL_CUSTOMERS})",
    )
    args = parser.parse_args()
    batches = [int(b) for b in args.batch_sizes.split(",")]
    training = [row for d in args.data_dir for row in bench_training(d, args.max_rows, batches)]
    scoring = bench_scoring(args.scoring_customers)
    parts = []
    if training:
        parts += ["Training (two-tower, in-batch negatives + logQ):", markdown_table(training)]
    parts += ["Scoring (top-12, exact inner product with faiss, 64-d):", markdown_table([scoring])]
    text = "\n\n".join(parts)
    print(text)
    write_result("-".join(["train", *(d.name for d in args.data_dir)]), text)


if __name__ == "__main__":
    main()
