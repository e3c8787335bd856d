"""recsys.app.inspector: what the Streamlit page shows, checked on a real run of the flow."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from recsys.app import inspector as ins
from recsys.run_folder import RunMissing
from recsys.settings import load_settings


@pytest.fixture(scope="module")
def run(tiny_flow_run) -> ins.RunData:
    return ins.load_run_data(tiny_flow_run.export_dir)


@pytest.fixture(scope="module")
def settings(tiny_flow_run):
    return load_settings(env={**tiny_flow_run.env, "IMAGE_URL_TEMPLATE": ""})


def test_recent_runs_finds_the_flow_run(tiny_flow_run) -> None:
    runs = ins.recent_runs(tiny_flow_run.metaflow_root)
    assert [r.run_id for r in runs] == [tiny_flow_run.run_id]
    assert runs[0].export_dir == tiny_flow_run.export_dir
    assert tiny_flow_run.run_id in runs[0].label


def test_recent_runs_is_empty_before_any_run(tmp_path: Path) -> None:
    assert ins.recent_runs(tmp_path) == []


def test_load_run_data_indexes_the_export(run: ins.RunData, tiny_flow_run) -> None:
    predictions = pd.read_parquet(tiny_flow_run.export_dir / "predictions.parquet")
    actuals = pd.read_parquet(tiny_flow_run.export_dir / "test_actuals.parquet")
    assert run.run_id == tiny_flow_run.run_id
    assert set(run.customers) == set(predictions["customer_id"])
    assert set(run.buyers) == set(actuals["customer_id"]) & set(predictions["customer_id"])
    assert list(run.buyers) == sorted(run.buyers)
    assert run.test_start == run.info.dates["test_start"]
    assert pd.Timestamp(actuals["t_dat"].min()).date() >= run.test_start


def test_missing_export_file_is_named(tiny_flow_run, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(tiny_flow_run.export_dir, partial, ignore=shutil.ignore_patterns("pred*"))
    with pytest.raises(RunMissing, match="predictions.parquet"):
        ins.load_run_data(partial)
    with pytest.raises(RunMissing, match="run_info.json"):
        ins.load_run_data(tmp_path)


def test_recommendations_are_the_top_12_with_hits_marked(run: ins.RunData) -> None:
    for customer in run.buyers[:30]:
        recs = ins.recommendations(run, customer)
        assert list(recs["rank"]) == list(range(1, 13))
        bought = set(run.actuals.loc[[customer], "article_id"])
        assert list(recs["hit"]) == [a in bought for a in recs["article_id"]]
        assert recs["prod_name"].notna().all()  # joined with the article index
    assert ins.recommendations(run, "no-such-customer").empty


def test_recommendation_cards_show_rank_score_source_and_hit(run, settings) -> None:
    customer = next(c for c in run.buyers if ins.recommendations(run, c)["hit"].any())
    recs = ins.recommendations(run, customer)
    cards = ins.recommendation_cards(recs, settings)
    assert [c.hit for c in cards] == list(recs["hit"])
    for card, row in zip(cards, recs.to_dict("records"), strict=True):
        assert card.caption.startswith("BOUGHT in test week" if row["hit"] else f"#{row['rank']}")
        score = ins.score_text(row["source"], row["score"])
        assert f"#{row['rank']} · {row['source']} · {score} · " in card.caption
        assert row["article_id"] in card.caption


def test_only_rows_the_model_ranked_show_a_score(settings) -> None:
    """Repurchase and baseline rows read "no score", even where the export holds one."""
    recs = pd.DataFrame(
        {
            "rank": [1, 2, 3, 4],
            "article_id": ["0108775015", "0108775044", "0110065001", "0111565001"],
            "score": [0.71, 0.52, float("nan"), float("nan")],
            "source": ["repurchase", "model", "repurchase", "popular"],
            "hit": [False, True, False, False],
        }
    )
    captions = [card.caption for card in ins.recommendation_cards(recs, settings)]
    assert [c.removeprefix("BOUGHT in test week · ").split(" · ")[1:3] for c in captions] == [
        ["repurchase", "no score"],
        ["model", "score 0.520"],
        ["repurchase", "no score"],
        ["popular", "no score"],
    ]


def test_filter_by_product_group(run: ins.RunData) -> None:
    recs = ins.recommendations(run, run.buyers[0])
    groups = ins.product_groups(recs)
    assert groups and groups == sorted(set(recs["product_group_name"]))
    kept = ins.filter_by_group(recs, groups[:1])
    assert len(kept) == (recs["product_group_name"] == groups[0]).sum()
    assert ins.filter_by_group(recs, []).equals(recs)


def test_match_customers_by_prefix() -> None:
    pool = ("abc1", "ABD2", "xyz3")
    assert ins.match_customers(pool, " ab ") == ["abc1", "ABD2"]
    assert ins.match_customers(pool, "") == list(pool)
    assert ins.match_customers(pool, "zz") == []
    assert ins.match_customers(pool, "", limit=1) == ["abc1"]


def test_random_customer_comes_from_the_pool(run: ins.RunData) -> None:
    pool = ins.candidate_customers(run, only_buyers=True)
    assert pool == run.buyers
    assert ins.random_customer(pool) in pool
    assert ins.random_customer(()) is None


def test_metric_table_compares_model_and_baselines(run: ins.RunData) -> None:
    table = ins.metric_table(run.metrics)
    assert list(table.columns) == ["map@12 warm", "map@12 cold"]
    assert set(table.index) == set(run.metrics["model"])
    assert {"two_tower", "popular", "repurchase"} <= set(table.index)  # model vs the baselines
    row = run.metrics[(run.metrics["model"] == table.index[0]) & (run.metrics["segment"] == "cold")]
    assert table.iloc[0]["map@12 cold"] == pytest.approx(row["map@12"].item(), abs=1e-4)
    assert list(ins.metric_chart(run.metrics).columns) == ["cold", "warm"]


def test_interval_table_brackets_each_models_figure(run: ins.RunData) -> None:
    table = ins.interval_table(run.metrics)
    assert set(table.index) == set(run.metrics["model"])
    for model, row in table.iterrows():
        low, high = (float(v) for v in row["95% interval"].split(" .. "))
        assert low <= row["map@12"] + 1e-4 and row["map@12"] - 1e-4 <= high, model


def test_run_summary_and_hyperparameters(run: ins.RunData) -> None:
    summary = ins.run_summary(run)
    assert summary["run id"] == run.run_id
    assert summary["train rows"] == f"{run.info.rows['train']:,}"
    assert ins.hyperparameters(run) == run.info.best_hyperparameters


def test_image_source_local_template_and_missing(tiny_flow_run, tmp_path: Path) -> None:
    local = load_settings(env={"IMAGE_DIR": str(tiny_flow_run.data_dir / "images")})
    photo = next((tiny_flow_run.data_dir / "images").rglob("*.jpg"))
    assert ins.image_source(photo.stem, local) == str(photo)
    assert ins.image_source("0999999999", local) is None  # no file
    assert ins.image_source(photo.stem, local, has_image=False) is None
    remote = load_settings(
        env={"IMAGE_URL_TEMPLATE": "https://b.example/{folder}/{article_id}.jpg"}
    )
    assert ins.image_source("0108775015", remote) == "https://b.example/010/0108775015.jpg"


def test_article_without_image_gets_the_placeholder(settings) -> None:
    row = {"article_id": "0999999999", "t_dat": date(2020, 9, 1), "prod_name": "Gone"}
    (card,) = ins.history_cards(pd.DataFrame([row]), settings)
    assert card.image == ins.placeholder_image()
    assert card.caption.endswith(ins.NO_IMAGE)
    with Image.open(io.BytesIO(card.image)) as tile:
        assert tile.size == (180, 270)


def test_purchase_history_is_newest_first_and_before_the_test_week(run, settings) -> None:
    histories = {c: ins.purchase_history(settings, c, run.test_start) for c in run.buyers[:40]}
    warm = [c for c, history in histories.items() if not history.empty]
    assert len(warm) >= 5, "test-week buyers who bought before it"
    for customer in warm[:5]:
        history = histories[customer]
        dates = list(pd.to_datetime(history["t_dat"]))
        assert dates == sorted(dates, reverse=True)
        assert all(d.date() < run.test_start for d in dates)
        assert len(history) <= ins.HISTORY_LIMIT
        cards = ins.history_cards(history, settings)
        assert len(cards) == len(history)
        assert cards[0].caption.startswith(f"{dates[0]:%Y-%m-%d} · ")


def test_live_purchases_and_attributes(run, settings) -> None:
    customer = run.buyers[0]
    live = ins.live_purchases(settings, customer)
    assert 1 <= len(live) <= 12  # a test-week buyer bought something
    assert set(run.actuals.loc[[customer], "article_id"]) & set(live["article_id"])
    attributes = ins.customer_attributes(settings, customer)
    assert attributes is not None and attributes["customer_id"] == customer
    assert ins.customer_attributes(settings, "no-such-customer") is None


def test_engine_not_built_is_a_friendly_error(tmp_path: Path) -> None:
    settings = load_settings(env={"DUCKDB_PATH": str(tmp_path / "none.duckdb")})
    with pytest.raises(ins.EngineUnavailable, match="not built yet"):
        ins.live_purchases(settings, "c1")


def test_engine_locked_by_a_writer_is_a_friendly_error(tmp_path: Path) -> None:
    """A writer (the Kafka consumer) holding the DuckDB file past the engine's retries."""
    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True);"
         " time.sleep(120)", str(db)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ok"
        settings = load_settings(env={"DUCKDB_PATH": str(db)})
        started = time.monotonic()
        with pytest.raises(ins.EngineUnavailable, match="try again in a moment"):
            ins.customer_attributes(settings, "c1")
        assert time.monotonic() - started < 60
    finally:
        holder.kill()
        holder.wait()
