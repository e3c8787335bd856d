"""Benchmark: training fed from encoded Parquet parts (the flow) vs from memory (the bound).

    .venv/bin/python bench/loader.py --data data/demo --rows 1000000

The first `--rows` purchases of the data folder (joined with customers and articles) are
prepared and encoded once by the project's NVTabular workflows; then the same model is
trained two epochs on the same rows, in the same order, fed (a) from one in-memory frame
and (b) from Parquet parts of `--part-rows` rows read by Merlin's Loader, as the flow does,
`--rounds` times, interleaved. Epoch 1 includes graph tracing; the table gives epoch 2's
examples/s and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("DASK_DATAFRAME__QUERY_PLANNING", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402
from results import write_result  # noqa: E402

from recsys.train import towers  # noqa: E402
from recsys.train.features import fit_features  # noqa: E402


def training_rows(data: Path, rows: int) -> pd.DataFrame:
    """The first `rows` purchases with their customer and article columns."""
    ids = {"customer_id": str, "article_id": str, "postal_code": str}
    frame = pd.read_csv(data / "transactions_train.csv", dtype=ids, nrows=rows)
    frame["t_dat"] = pd.to_datetime(frame["t_dat"])
    frame = frame.merge(pd.read_csv(data / "customers.csv", dtype=ids), on="customer_id")
    return frame.merge(pd.read_csv(data / "articles.csv", dtype=ids), on="article_id")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--part-rows", type=int, default=500_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="loader")
    args = parser.parse_args()
    frame = training_rows(args.data, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        cutoff = frame["t_dat"].max() + pd.Timedelta(days=1)
        features = fit_features(frame, cutoff, Path(tmp) / "workflows")
        encoded = features.interactions(frame)
        parts = []
        for number, start in enumerate(range(0, len(encoded), args.part_rows)):
            path = Path(tmp) / f"part-{number:05d}.parquet"
            encoded.iloc[start : start + args.part_rows].to_parquet(path, index=False)
            parts.append(path)
        frequencies = features.item_frequencies(encoded)
        params = towers.HyperParameters(0.01, args.batch_size, epochs=2)
        feeds = {"in-memory frame": encoded, f"{len(parts)} Parquet parts": [parts]}
        rates: dict[str, list[float]] = {name: [] for name in feeds}
        for _ in range(args.rounds):  # interleaved: a change of machine load hits both
            for name, source in feeds.items():
                result = towers.train(source, features.schema, frequencies, params)
                rates[name].append(result.examples / result.seconds_per_epoch[1])
    memory, disk = (statistics.median(r) for r in rates.values())
    lines = [
        f"data: {args.data}, first {len(encoded):,} training rows, batch {args.batch_size}, "
        f"{args.rounds} interleaved round(s)",
        "",
        "| fed from | epoch-2 examples/s, each round | median |",
        "|---|---|---:|",
        *(
            f"| {name} | {', '.join(f'{r:,.0f}' for r in runs)} | {statistics.median(runs):,.0f} |"
            for name, runs in rates.items()
        ),
        f"| **ratio parts / memory** | | **{disk / memory:.2f}** |",
    ]
    text = "\n".join(lines)
    print(text)
    write_result(args.name, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
