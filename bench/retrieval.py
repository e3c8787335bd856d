"""Benchmark: the two-tower alone on the validation week, over a sweep of training choices.

    flock /tmp/heavy.lock .venv/bin/python bench/retrieval.py --name retrieval-10m \
        --point lr=0.01,bs=1024,epochs=1 --point lr=0.01,bs=1024,epochs=3 ...

Reads the views of the engine the settings name (DUCKDB_PATH: a file the flow or
bench/flow.py loaded), cuts the weeks as the flow does (the last week is the test week,
the week before it validation) and, for each `--point`, trains the flow's model on the
training rows before validation and scores it on the validation week against the whole
candidate set, with popularity beside it: what the flow's grid search sees, without the
rest of the flow. Points with the same training window share their prepared and encoded
rows (the slow part of a run before training). Keys of a point: lr, bs, epochs, logq
(strength of the logQ correction), dim, ids (0: no customer-id embedding in the query
tower), weeks (training window; 0: all). Each trained point is scored under every
`--priors` strength (`CandidateRule.prior`: the log of the candidates' recent units added
to the model's score).
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

from results import markdown_table, write_result  # noqa: E402

from recsys.evaluate.scoring import score_week  # noqa: E402
from recsys.settings import load_settings  # noqa: E402
from recsys.store.engine import open_engine  # noqa: E402
from recsys.strategy.inputs import CandidateRule, week_purchases  # noqa: E402
from recsys.train import pipeline, plan, source, towers  # noqa: E402
from recsys.train.pipeline import Branch, RowSettings  # noqa: E402

KEYS = {"lr": "learning_rate", "bs": "batch_size", "epochs": "epochs", "logq": "logq",
        "dim": "embedding_dim", "ids": "customer_ids"}  # fmt: skip


def parse_point(text: str) -> tuple[int, towers.HyperParameters]:
    """`lr=0.01,bs=1024,epochs=1,logq=1,weeks=12` -> (weeks, HyperParameters)."""
    values = dict(part.split("=", 1) for part in text.split(","))
    weeks = int(values.pop("weeks", 12))
    unknown = set(values) - set(KEYS)
    if unknown:
        raise SystemExit(f"--point {text!r}: unknown keys {sorted(unknown)}; use {sorted(KEYS)}")
    fields = {"learning_rate": 0.01, "batch_size": 1024, "epochs": 1}
    for key, value in values.items():
        fields[KEYS[key]] = float(value) if key in ("lr", "logq") else int(value)
    fields["customer_ids"] = bool(fields.get("customer_ids", True))
    params = towers.HyperParameters(**fields)
    params.validate()
    return weeks, params


def measure(
    engine, weeks: int, points: list[towers.HyperParameters], priors: list[float], work: Path
) -> list[dict]:
    """Prepare the window's rows once, then train and score each point on validation."""
    first, last = source.date_range(engine)
    dates = plan.split_dates(first, last, "", "", weeks)
    day, rows_cut = dates["validation_start"], RowSettings(2, 500_000, 1.0)
    articles = source.articles(engine)
    actuals = week_purchases(engine, day, dates["test_start"])
    epochs = max(p.epochs for p in points)
    parts, sales = pipeline.training_rows(engine, day, dates["train_start"], rows_cut, epochs, work)
    encoded = pipeline.encode(parts, sales, work)
    features = pipeline.fitted_features(work)
    profile = plan.data_profile(engine.count("dedup_transactions_t"))
    rule = CandidateRule(profile["candidate_days"], profile["candidate_min_purchases"])
    rows = []
    for params in points:
        started = time.perf_counter()
        result = towers.train(encoded.parts, features.schema, encoded.item_frequencies, params)
        trained_s = time.perf_counter() - started
        branch = Branch(work / f"point-{len(rows)}", articles["article_id"].to_numpy())
        branch.path.mkdir(parents=True, exist_ok=True)
        catalogue = pipeline.catalogue(result.model, features, articles)
        buyers = {"validation": actuals["customer_id"].unique()}
        _write_queries(engine, result.model, features, day, branch, buyers)
        for prior in priors:
            weighted = CandidateRule(rule.days, rule.min_purchases, prior)
            board = score_week(engine, day, branch.queries("validation"), catalogue, actuals,
                               features.known_customers, weighted,
                               methods=("two_tower", "popular"))  # fmt: skip
            model, popular = board.summary("two_tower"), board.summary("popular")
            row = _row(weeks, params, parts.rows, trained_s, result, model, popular)
            rows.append({**row, "prior": prior})
            print(rows[-1], flush=True)
    return rows


def _write_queries(engine, model, features, day, branch: Branch, buyers: dict) -> None:
    from recsys.train.embed import write_query_embeddings

    for split, ids in buyers.items():
        write_query_embeddings(engine, features, model.query_encoder, day,
                               branch.queries(split), ids)  # fmt: skip


def _row(weeks, params, train_rows, trained_s, result, model: dict, popular: dict) -> dict:
    return {
        "weeks": weeks or "all",
        "lr": params.learning_rate,
        "batch": params.batch_size,
        "epochs": params.epochs,
        "logq": params.logq,
        "dim": params.embedding_dim,
        "customer ids": "yes" if params.customer_ids else "no",
        "train rows": train_rows,
        "examples/s": round(result.examples_per_second),
        "train min": round(trained_s / 60, 1),
        "final loss": round(result.history["loss"][-1], 3),
        "two_tower MAP@12": round(model["map@12"], 5),
        "recall@12": round(model["recall@12"], 4),
        "recall@100": round(model["recall@100"], 4),
        "coverage": round(model["coverage"], 4),
        "popular MAP@12": round(popular["map@12"], 5),
        "x popular": round(model["map@12"] / popular["map@12"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--point", action="append", required=True, help="lr=..,bs=..,epochs=..")
    parser.add_argument("--name", default="retrieval", help="bench/results/NAME.md")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp dir)")
    parser.add_argument("--priors", default="0", help="prior strengths, comma-separated")
    args = parser.parse_args()
    points = [parse_point(p) for p in args.point]
    settings = load_settings()
    rows = []
    with open_engine(settings) as engine, tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for weeks in dict.fromkeys(w for w, _ in points):
            same = [p for w, p in points if w == weeks]
            priors = [float(p) for p in args.priors.split(",")]
            rows += measure(engine, weeks, same, priors, Path(tmp) / f"weeks-{weeks}")
    text = (
        f"Data: {settings.duckdb_path}. Validation week, whole candidate set (the flow's "
        "candidate rule), two-tower alone against the popular list.\n\n" + markdown_table(rows)
    )
    write_result(args.name, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
