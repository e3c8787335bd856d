"""Benchmark: the ranker without the two-tower, by LightGBM objective, on a data folder.

    flock /tmp/heavy.lock .venv/bin/python bench/ranker.py --data data/demo --name ranker-demo

The examples are the flow's (`recsys.train.ranker.examples`) for the ranker that never
sees the model (`ranker_without_tower`), so no model is trained here: the query and
article embeddings the examples read are zeros, unused by that ranker. The weeks are the
flow's as of the test start: `--weeks` training weeks, then the validation week, each as
of its first day; the test week is scored as the flow scores it (lists as of its start,
MAP@12 over its buyers, 95% bootstrap interval). Each objective is trained on the same
examples with the flow's parameters (`recsys.train.ranker.PARAMS`), early-stopped on the
validation week: LambdaRank (the flow's), binary log loss (candidate bought or not,
ranked by probability) and XE-NDCG. Next to them, the repurchase and popular baselines.
The table goes to bench/results/<name>.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from results import markdown_table, write_result  # noqa: E402

from recsys.evaluate.metrics import Scoreboard  # noqa: E402
from recsys.settings import load_settings  # noqa: E402
from recsys.store.engine import open_engine  # noqa: E402
from recsys.strategy.inputs import CandidateRule, Day, History, week_purchases  # noqa: E402
from recsys.strategy.methods import METHODS  # noqa: E402
from recsys.train import ranker  # noqa: E402
from recsys.train.embed import embedding_table  # noqa: E402

NAME = "ranker_without_tower"
OBJECTIVES = {
    "lambdarank": {},
    "binary": {"objective": "binary", "metric": "map", "eval_at": [12]},
    "rank_xendcg": {"objective": "rank_xendcg"},
}
RULE = CandidateRule(days=7, min_purchases=3)


def write_weeks(engine, test: date, weeks: int, articles: np.ndarray, folder: Path) -> None:
    """The ranker's weeks as of the test start, with zero embeddings (unused here)."""
    for start in ranker.week_starts(test, weeks):
        week = ranker.Week(start, folder)
        purchases = week_purchases(engine, start, start + timedelta(days=7))
        purchases.to_parquet(week.purchases, index=False)
        buyers = ranker.sampled_buyers(purchases)
        zeros = np.zeros((len(buyers), 1), dtype="float32")
        pq.write_table(embedding_table("customer_id", buyers, zeros), week.queries)
        np.save(week.vectors, np.zeros((len(articles), 1), dtype="float32"))


def test_week(engine, test: date, models: dict, articles: np.ndarray) -> pd.DataFrame:
    """MAP@12 of each model (as the ranker without the tower) and the baselines."""
    actuals = week_purchases(engine, test, test + timedelta(days=7))
    ids = actuals["customer_id"].unique()
    customers = History.read(engine, test).customers(ids, np.zeros(len(ids), dtype=bool))
    board = Scoreboard(len(articles), pd.Index([]), set(actuals["article_id"]))
    for name in ("repurchase", "popular"):
        day = Day.read(engine, test)
        board.add(name, METHODS[name].rank(customers, day, 100).to_frame(ids), actuals)
    for objective, model in models.items():
        day = Day.read(engine, test, rankers={NAME: model})
        board.add(objective, METHODS[NAME].rank(customers, day, 100).to_frame(ids), actuals)
    return board.metrics().query("segment == 'all'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder with the H&M CSVs")
    parser.add_argument("--weeks", type=int, default=4, help="training weeks before validation")
    parser.add_argument("--name", default="ranker-demo", help="bench/results/<name>.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = load_settings(
            env={"DATA_DIR": str(args.data), "DUCKDB_PATH": str(folder / "hm.duckdb")}
        )
        with open_engine(settings) as engine:
            engine.apply()
            engine.load_csv(args.data)
            last = engine.query("SELECT MAX(t_dat) AS last FROM transactions_t")["last"][0]
            test = pd.Timestamp(last).date() - timedelta(days=6)
            articles = engine.query("SELECT article_id FROM articles_t")["article_id"].to_numpy()
            write_weeks(engine, test, args.weeks, articles, folder)
            weeks = [ranker.Week(s, folder) for s in ranker.week_starts(test, args.weeks)]
            started = time.monotonic()
            parts = [ranker.examples(engine, w, articles, pd.Index([]), RULE)[NAME] for w in weeks]
            made = time.monotonic() - started
            train, validation = ranker.Examples.joined(parts[:-1]), parts[-1]
            fitted, models = {}, {}
            for objective, changes in OBJECTIVES.items():
                params = {**ranker.PARAMS, **changes}
                fitted[objective] = ranker.fit(train, validation, params)
                models[objective] = fitted[objective].model
            scores = test_week(engine, test, models, articles).set_index("model")
    rows = [
        {
            "method": name,
            "test MAP@12": round(scores.loc[name, "map@12"], 4),
            "95% interval": f"{scores.loc[name, 'map@12_low']:.4f}-"
            f"{scores.loc[name, 'map@12_high']:.4f}",
            "recall@12": round(scores.loc[name, "recall@12"], 4),
            "best round": fitted[name].best_iteration if name in fitted else None,
            "training s": round(fitted[name].seconds, 1) if name in fitted else None,
        }
        for name in scores.index
    ]
    text = (
        f"{args.data}: test week {test}, {int(scores['customers'].iloc[0]):,} buyers; "
        f"{args.weeks} training weeks ({len(train.labels):,} rows, {len(train.groups):,} "
        f"buyers with a bought candidate), validation {len(validation.groups):,} buyers; "
        f"examples made in {made:.0f} s.\n\n" + markdown_table(rows)
    )
    print(text)
    write_result(args.name, text)


if __name__ == "__main__":
    main()
