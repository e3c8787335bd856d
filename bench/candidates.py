"""Benchmark: candidate recall of each source and of their union, on a run's test week.

    flock /tmp/heavy.lock .venv/bin/python bench/candidates.py --run OUTPUT_DIR/<run id> \
        --name candidates-demo

Candidate recall at N: the share of the test week's purchases (distinct customer and
article pairs of its buyers) that are among the customer's first N candidates of a
source (`recsys.strategy.methods.SOURCE_METHODS`, each's own list) or of the union of
them all (`recsys.strategy.features.pool`: interleaved by rank, each article once). Every
list is made as of the test week's start, as the flow makes the test week's lists: the
two-tower's from the run's exported customer and article embeddings (made as of that
start), for the customers the model knows. The run's data folder and DuckDB file are
read (run_info.json names them).

The table goes to bench/results/<name>.md (bench/results.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from results import markdown_table, write_result  # noqa: E402

from recsys import run_folder as rf  # noqa: E402
from recsys.settings import load_settings  # noqa: E402
from recsys.store.engine import open_engine  # noqa: E402
from recsys.strategy import features  # noqa: E402
from recsys.strategy.inputs import Candidates, Day, History, week_purchases  # noqa: E402
from recsys.strategy.lists import Lists  # noqa: E402
from recsys.strategy.methods import candidate_lists  # noqa: E402
from recsys.train.embed import read_embeddings, read_query_embeddings  # noqa: E402

DEPTHS = (50, 100, 200)
UNION = "union of all"


def found(lists: Lists, ids: np.ndarray, bought: pd.DataFrame, depth: int) -> int:
    """How many of `bought`'s (customer, article) pairs are in the first `depth` of `lists`."""
    frame = Lists(*(getattr(lists, a)[:, :depth] for a in ("articles", "scores", "sources")))
    listed = frame.to_frame(ids)[["customer_id", "article_id"]].drop_duplicates()
    return len(listed.merge(bought, on=["customer_id", "article_id"]))


def recall_table(run: Path) -> tuple[list[dict], dict]:
    folder = rf.RunFolder(run)
    info = folder.info()
    settings = load_settings(env={"DATA_DIR": info.data_dir, "DUCKDB_PATH": info.duckdb_path or ""})
    start = info.dates["test_start"]
    article_ids, vectors = read_embeddings(folder.file(rf.ARTICLE_EMBEDDINGS), "article_id")
    catalogue = Candidates(vectors, article_ids)
    hits = {name: dict.fromkeys(DEPTHS, 0) for name in [*features.SOURCES, UNION]}
    started = time.monotonic()
    with open_engine(settings, read_only=True) as engine:
        day = Day.read(engine, start, catalogue, info.candidate_rule, max(DEPTHS))
        bought = week_purchases(engine, start, start + timedelta(days=7))
        bought = bought[["customer_id", "article_id"]].drop_duplicates()
        buyers = set(bought["customer_id"])
        history = History.read(engine, start)
        embeddings = folder.file(rf.CUSTOMER_EMBEDDINGS)
        known = pd.read_parquet(embeddings, columns=["customer_id", "warm"])
        known = pd.Index(known.loc[known["warm"], "customer_id"])
        for ids, queries in read_query_embeddings(embeddings):
            mine = pd.Index(ids).isin(buyers)
            if not mine.any():
                continue
            ids, queries = ids[mine], queries[mine]
            customers = history.customers(ids, pd.Index(ids).isin(known), queries)
            theirs = bought[bought["customer_id"].isin(ids)]
            for depth in DEPTHS:
                per_source = candidate_lists(customers, day, True, depth)
                for name, source in per_source.items():
                    hits[name][depth] += found(source, ids, theirs, depth)
                union = features.pool(per_source, depth).lists
                hits[UNION][depth] += found(union, ids, theirs, depth)
    rows = [
        {"source": name, **{f"recall@{d}": round(n[d] / len(bought), 4) for d in DEPTHS}}
        for name, n in hits.items()
    ]
    facts = {
        "week": start.isoformat(),
        "buyers": len(buyers),
        "purchases": len(bought),
        "seconds": round(time.monotonic() - started, 1),
    }
    return rows, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a run folder OUTPUT_DIR/<run id>")
    parser.add_argument("--name", default="candidates-demo", help="bench/results/<name>.md")
    args = parser.parse_args()
    rows, facts = recall_table(args.run)
    text = (
        f"Candidate recall on the test week {facts['week']} ({facts['buyers']:,} buyers, "
        f"{facts['purchases']:,} distinct customer-article purchases), lists as of its start; "
        f"computed in {facts['seconds']} s.\n\n" + markdown_table(rows)
    )
    print(text)
    write_result(args.name, text)


if __name__ == "__main__":
    main()
