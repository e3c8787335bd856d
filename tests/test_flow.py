"""MyMerlinFlow end to end on the tiny data (Metaflow local runtime), and its bad-input guards."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from recsys.evaluate.metrics import METRIC_COLUMNS
from recsys.run_folder import RunFolder
from recsys.strategy.features import FEATURES
from recsys.strategy.methods import METHODS
from recsys.train import plan
from recsys.train.runtime import isolated_flow_env as flow_env
from recsys.train.tracking import read_offline_archive
from tests.fixtures_flow import TINY_ARGS, FlowRun, run_flow

MODELS = {*METHODS, "served"}
BASELINES = {"popular", "repurchase", "bought_together", "same_product", "popular_by_age",
             "ranker_without_tower"}  # fmt: skip


def test_export_follows_the_contract(tiny_flow_run: FlowRun) -> None:
    out = tiny_flow_run.export_dir
    for name in (
        "predictions.parquet",
        "metrics.parquet",
        "test_actuals.parquet",
        "articles.parquet",
        "customer_embeddings.parquet",
        "article_embeddings.parquet",
        "differences.parquet",
        "rankers/ranker.txt",
        "rankers/ranker_without_tower.txt",
        "ranker_importance.parquet",
        "query_tower.npz",  # the service's numpy tower: written by the export, not the service
        "run_info.json",
    ):
        assert (out / name).is_file(), f"{name} missing from {out}"
    assert (out / "query_tower" / "saved_model.pb").is_file()
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert set(metrics["model"]) == MODELS
    assert set(metrics["segment"]) == {"warm", "cold", "all"}
    intervals = [f"{m}_{side}" for m in ("map@12", "recall@12") for side in ("low", "high")]
    assert list(metrics.columns) == ["model", "segment", *METRIC_COLUMNS, *intervals]
    assert (metrics["map@12_low"] <= metrics["map@12"] + 1e-12).all()
    assert (metrics["map@12"] <= metrics["map@12_high"] + 1e-12).all()
    differences = pd.read_parquet(out / "differences.parquet")
    assert set(differences["baseline"]) == BASELINES
    assert (differences["low"] <= differences["high"]).all()
    importance = pd.read_parquet(out / "ranker_importance.parquet")
    assert list(importance.columns) == ["ranker", "feature", "gain", "splits"]
    for name, part in importance.groupby("ranker"):
        assert set(part["feature"]) == set(FEATURES) and part["gain"].sum() > 0
        assert name == "ranker" or part.loc[part["feature"] == "tower_score", "gain"].sum() == 0
        facts = RunFolder(out).info().rankers[name]
        assert facts["best_iteration"] >= 1 and 0 < facts["candidate_recall_validation"] <= 1
    assert set(importance["ranker"]) == {"ranker", "ranker_without_tower"}
    articles = pd.read_parquet(out / "articles.parquet")
    assert {"article_id", "image_path", "prod_name"} <= set(articles.columns)


def kaggle_ap_at_12(predicted: list[str], actual: set[str]) -> float:
    """The competition's AP@12, written apart from recsys.evaluate.metrics: a repeated article
    counts once, the denominator is min(12, distinct articles bought)."""
    hits, total, seen = 0, 0.0, set()
    for rank, article in enumerate(predicted[:12], start=1):
        if article in actual and article not in seen:
            hits += 1
            total += hits / rank
        seen.add(article)
    return total / min(12, len(actual))


def test_the_exported_predictions_score_exactly_the_reported_served_figures(
    tiny_flow_run: FlowRun,
) -> None:
    out = tiny_flow_run.export_dir
    predictions = pd.read_parquet(out / "predictions.parquet").sort_values(["customer_id", "rank"])
    lists = predictions.groupby("customer_id")["article_id"].agg(list).to_dict()
    bought = pd.read_parquet(out / "test_actuals.parquet").groupby("customer_id")["article_id"]
    aps, recalls = [], []
    for customer, articles in bought:
        actual, predicted = set(articles), lists.get(customer, [])
        aps.append(kaggle_ap_at_12(predicted, actual))
        recalls.append(len(actual & set(predicted[:12])) / len(actual))
    metrics = pd.read_parquet(out / "metrics.parquet").set_index(["model", "segment"])
    served = metrics.loc[("served", "all")]
    assert served["customers"] == len(aps)
    assert served["map@12"] == pytest.approx(sum(aps) / len(aps), rel=1e-9)
    assert served["recall@12"] == pytest.approx(sum(recalls) / len(recalls), rel=1e-9)


def test_the_backtest_scores_each_week_as_the_test_week_is_scored(tiny_flow_run: FlowRun) -> None:
    out = tiny_flow_run.export_dir
    backtest = pd.read_parquet(out / "backtest.parquet")
    info = json.loads((out / "run_info.json").read_text())
    test_start = info["dates"]["test_start"]
    weeks = list(dict.fromkeys(backtest["week"]))
    assert weeks == [
        (date.fromisoformat(test_start) - timedelta(days=7)).isoformat(),
        test_start,
        "pooled",
    ]
    every = backtest[backtest["segment"] == "all"].set_index(["week", "model"])
    assert {"two_tower", "served", "popular", "repurchase"} <= set(every.loc["pooled"].index)
    by_week = every.loc[weeks[:2], "customers"].groupby(level="week").first()
    assert every.loc[("pooled", "served"), "customers"] == by_week.sum()
    pooled = every.loc["pooled"]
    assert (pooled["map@12_low"] <= pooled["map@12"]).all()
    assert (pooled["map@12"] <= pooled["map@12_high"]).all()
    # The last backtest week is the test week: the baselines do not depend on the model,
    # so their figures equal the test week's exactly (same customers, same lists).
    test = pd.read_parquet(out / "metrics.parquet").set_index(["model", "segment"])
    for baseline in ("popular", "repurchase"):
        row = every.loc[(test_start, baseline)]
        assert row["map@12"] == pytest.approx(test.loc[(baseline, "all"), "map@12"], rel=1e-12)
        assert row["customers"] == test.loc[(baseline, "all"), "customers"]
    differences = pd.read_parquet(out / "backtest_differences.parquet")
    assert set(differences["week"]) == set(weeks)
    assert set(differences["baseline"]) == BASELINES


def test_every_customer_gets_twelve_distinct_articles(tiny_flow_run: FlowRun) -> None:
    predictions = pd.read_parquet(tiny_flow_run.export_dir / "predictions.parquet")
    customers = pd.read_csv(tiny_flow_run.data_dir / "customers.csv", dtype=str)
    assert set(predictions["customer_id"]) == set(customers["customer_id"])
    per_customer = predictions.groupby("customer_id")
    assert (per_customer.size() == 12).all()
    assert (per_customer["article_id"].nunique() == 12).all()
    assert sorted(predictions["rank"].unique()) == list(range(1, 13))
    assert set(predictions["article_id"]) <= set(
        pd.read_csv(tiny_flow_run.data_dir / "articles.csv", dtype=str)["article_id"]
    )
    served = RunFolder(tiny_flow_run.export_dir).info().served
    sources = {"model", "repurchase", "popular", "bought_together", "same_product",
               "popular_by_age"}  # fmt: skip
    assert set(predictions["source"]) <= sources
    model_rows = predictions[predictions["source"] == "model"]
    assert model_rows["score"].notna().all()
    # Customers the model was trained on get its choice; everyone else the other method,
    # which never ranks with the model.
    embeddings = pd.read_parquet(tiny_flow_run.export_dir / "customer_embeddings.parquet")
    warm = set(embeddings.loc[embeddings["warm"], "customer_id"])
    assert set(model_rows["customer_id"]) <= warm
    cold = predictions[~predictions["customer_id"].isin(warm)]
    assert "model" not in set(cold["source"]) and len(cold)
    assert not METHODS[served.cold].uses_model
    if served.warm.startswith("ranker"):  # a ranker scores all it ranks, best first
        mine = predictions[predictions["customer_id"].isin(warm)]
        assert mine["score"].notna().all()
        assert (mine.groupby("customer_id")["score"].diff().dropna() <= 0).all()


def test_splits_default_to_the_last_two_weeks(tiny_flow_run: FlowRun) -> None:
    info = json.loads((tiny_flow_run.export_dir / "run_info.json").read_text())
    dates = {k: date.fromisoformat(v) for k, v in info["dates"].items()}
    tx = pd.read_csv(tiny_flow_run.data_dir / "transactions_train.csv", usecols=["t_dat"])
    last = date.fromisoformat(tx["t_dat"].max())
    assert dates["end"] == last
    assert dates["test_start"] == last - timedelta(days=6)
    assert dates["validation_start"] == last - timedelta(days=13)
    actuals = pd.read_parquet(tiny_flow_run.export_dir / "test_actuals.parquet")
    assert pd.to_datetime(actuals["t_dat"]).dt.date.min() >= dates["test_start"]
    assert info["rows"]["train"] > 0 and info["best_hyperparameters"]["epochs"] == 2


def test_workflow_vocabulary_never_saw_validation_or_test_rows(tiny_flow_run: FlowRun) -> None:
    info = json.loads((tiny_flow_run.export_dir / "run_info.json").read_text())
    validation_start = info["dates"]["validation_start"]
    vocab = pd.read_parquet(
        tiny_flow_run.export_dir
        / "workflows"
        / "articles"
        / "categories"
        / "unique.article_id.parquet"
    )
    tx = pd.read_csv(tiny_flow_run.data_dir / "transactions_train.csv", dtype=str)
    before = set(tx.loc[tx["t_dat"] < validation_start, "article_id"])
    only_later = set(tx.loc[tx["t_dat"] >= validation_start, "article_id"]) - before
    known = set(vocab["article_id"].dropna())
    assert known <= before
    assert only_later, "the tiny data should launch articles during the last two weeks"
    assert not known & only_later


def test_comet_offline_archives_hold_parameters_and_metrics(tiny_flow_run: FlowRun) -> None:
    archives = sorted((tiny_flow_run.export_dir / "comet").glob("*.zip"))
    assert len(archives) == 4  # two grid points, the rankers and the evaluation summary
    contents = [read_offline_archive(a) for a in archives]
    training = [(p, m) for p, m in contents if "validation_map@12" in m]
    assert len(training) == 2
    assert {p["learning_rate"] for p, _ in training} == {0.01, 0.003}
    for params, metrics in training:
        assert params["batch_size"] == 256 and params["metaflow_run"] == tiny_flow_run.run_id
        assert len(metrics["train_loss"]) == 2  # one value per epoch
    rankers = [(p, m) for p, m in contents if "ranker_validation_map@12" in m]
    assert len(rankers) == 1 and rankers[0][0]["ranker_objective"] == "lambdarank"
    for name in ("ranker", "ranker_without_tower"):
        rounds = rankers[0][1][f"{name}_validation_map@12"]
        assert len(rounds) >= rankers[0][1][f"{name}_best_iteration"][0] >= 1
    summary = [m for _, m in contents if "test/two_tower/all_map@12" in m]
    assert summary and "test/popular/all_map@12" in summary[0]
    assert "COMET_API_KEY=<your key> comet upload" in tiny_flow_run.output


def test_run_is_found_through_metaflow_with_its_card(tiny_flow_run: FlowRun) -> None:
    # In a fresh process: Metaflow reads its datastore settings once, at import.
    script = f"""
import metaflow
metaflow.namespace(None)
run = metaflow.Run("MyMerlinFlow/{tiny_flow_run.run_id}")
assert run.successful
print("EXPORT", run.data.export_dir)
print("MODELS", sorted(set(run.data.metrics["model"])))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], env=tiny_flow_run.env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"EXPORT {tiny_flow_run.export_dir}" in result.stdout
    assert f"MODELS {sorted(MODELS)}" in result.stdout
    cards = list(
        tiny_flow_run.metaflow_root.glob(
            f"**/{tiny_flow_run.run_id}/steps/evaluate/tasks/*/cards/*evaluation*.html"
        )
    )
    assert len(cards) == 1
    # The card's content is a base64 JSON blob: window.__MF_DATA__["<id>"] = "<base64>"
    blob = re.search(r'__MF_DATA__\["[^"]+"\] = "([^"]+)"', cards[0].read_text()).group(1)
    content = base64.b64decode(blob).decode()
    assert "Test MAP@12 by segment" in content and "Training loss per epoch" in content


DEFAULTS = plan.Parameters(
    engine="auto", test_start="", validation_start="", min_purchases=2, learning_rates="",
    batch_sizes="", epochs=0, train_weeks=-1, candidate_days=-1, candidate_min_purchases=0,
    candidate_prior=-1.0,
    ranker_weeks=0, backtest_weeks=0, embedding_dim=64, top_k=12, sample_fraction=1.0,
    part_rows=500_000,
)  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"learning_rates": "0"}, "learning rate 0.0"),
        ({"batch_sizes": "1"}, "in-batch negatives need >= 2"),
        ({"batch_sizes": "big"}, "expected comma-separated numbers"),
        ({"test_start": "2020-13-40"}, "expected YYYY-MM-DD"),
        ({"top_k": 0}, "--top-k 0: expected 1..100"),
        ({"engine": "postgres"}, "--engine 'postgres'"),
        ({"sample_fraction": 1.5}, "expected 0 < f <= 1"),
        ({"validation_start": "2020-01-01"}, "no training days"),
        ({"backtest_weeks": 11}, "use fewer weeks"),
        ({"ranker_weeks": 10}, "use fewer weeks"),
        ({"candidate_prior": 5.0}, "--candidate-prior 5.0: expected 0..4"),
        ({"ranker_weeks": 27}, "--ranker-weeks 27: expected 1..26"),
    ],
)
def test_bad_parameters_are_refused_with_a_clear_message(changes: dict, message: str) -> None:
    """Checked in-process: every parameter check (before any data) and every check of
    the plan against the data's dates (the tiny data's 10 weeks)."""
    parameters = dataclasses.replace(DEFAULTS, **changes)
    with pytest.raises(plan.FlowInputError, match=re.escape(message)):
        parameters.check()
        plan.make_plan(parameters, 15_000, date(2020, 7, 1), date(2020, 9, 22))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-sizes", "big"], "expected comma-separated numbers"),  # before any data
        (["--min-purchases", "1000"], "lower --min-purchases"),  # once the rows are counted
    ],
)
def test_bad_input_stops_the_real_flow_early_without_a_traceback(
    tiny_data: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_flow(flow_env(tmp_path, tiny_data), *TINY_ARGS, *args)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output
    assert "Traceback" not in output
    assert "tensorflow" not in output.lower().split("cannot train with this input")[-1]


def test_missing_data_names_the_file_to_provide(tmp_path: Path) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    result = run_flow(flow_env(tmp_path, empty), *TINY_ARGS)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{empty}/transactions_train.csv does not exist" in output
    assert "Traceback" not in output


def test_a_run_without_photos_says_so_and_records_it(tiny_flow_run_without_photos) -> None:  # noqa: ANN001
    info = RunFolder(tiny_flow_run_without_photos.export_dir).info()
    assert not info.photos and RunFolder(tiny_flow_run_without_photos.export_dir).info()
    assert "the page and the service show placeholders" in tiny_flow_run_without_photos.output
    articles = pd.read_parquet(tiny_flow_run_without_photos.export_dir / "articles.parquet")
    assert articles["image_path"].isna().all()


@pytest.mark.slow
def test_demo_served_list_beats_popularity_and_repurchase_on_the_test_week(
    demo_flow_run: FlowRun,
) -> None:
    """Issue 23's targets on the demo data: what the flow serves scores at least 1.5x
    popularity's MAP@12 and beats the repurchase baseline, the paired 95% interval of the
    difference above 0 (the repurchase rule alone clears popularity). Every list is made
    as of the test start.

    The two-tower alone: on data whose buyer-weeks match H&M's (issue 23, step 0) it no
    longer beats popularity (issue 13's old target): 0.71x on this run's test week before
    the candidate prior, 0.45-0.97x on the validation week over the sweeps of
    bench/results/retrieval-demo*.md. It must stay well above a model that learned
    nothing: half popularity's MAP@12 at least.

    The run is deterministic for given data (sorted read, seeded shuffle, deterministic
    ops, a deterministic ranker). bench/results/flow-demo-ranker.md has the figures.
    """
    metrics = pd.read_parquet(demo_flow_run.export_dir / "metrics.parquet")
    table = metrics[metrics["segment"] == "all"].set_index("model")
    print(metrics.to_string(index=False))
    assert table.loc["two_tower", "map@12"] >= 0.5 * table.loc["popular", "map@12"]
    assert table.loc["served", "map@12"] >= 1.5 * table.loc["popular", "map@12"]
    assert table.loc["served", "recall@12"] > 1.2 * table.loc["popular", "recall@12"]
    differences = pd.read_parquet(demo_flow_run.export_dir / "differences.parquet")
    versus = differences.set_index(["model", "baseline", "metric"]).loc[
        ("served", "repurchase", "map@12")
    ]
    print(versus)
    assert versus["low"] > 0
