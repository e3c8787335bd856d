"""The Streamlit page, run by streamlit.testing's AppTest against a real run of the flow."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from recsys.app import inspector as ins
from recsys.ingest.broker import free_port
from recsys.run_folder import RUN_COMMAND
from recsys.settings import load_settings

PAGE = str(Path(__file__).resolve().parents[2] / "streamlit" / "pred_inspector.py")
SETTINGS_VARIABLES = (
    "METAFLOW_DATASTORE_SYSROOT_LOCAL",
    "OUTPUT_DIR",
    "DATA_DIR",
    "DUCKDB_PATH",
)


@pytest.fixture
def page_env(tiny_flow_run, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The page sees the tiny run (and nothing from a developer's local.env)."""
    env = {name: tiny_flow_run.env[name] for name in SETTINGS_VARIABLES}
    env |= {"IMAGE_DIR": str(tiny_flow_run.data_dir / "images"), "IMAGE_URL_TEMPLATE": ""}
    env["RISINGWAVE_URL"] = ""
    env["SERVE_PORT"] = str(free_port())  # no service: its panel says how to start one
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    st.cache_data.clear()
    st.cache_resource.clear()
    return env


@pytest.fixture(scope="module")
def run(tiny_flow_run) -> ins.RunData:
    return ins.load_run_data(tiny_flow_run.export_dir)


def open_page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def show_customer(app: AppTest, customer_id: str) -> AppTest:
    app.text_input(key="prefix").set_value(customer_id).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.subheader[0].value == f"Customer {customer_id}"
    return app


RECOMMENDATION = re.compile(r"(BOUGHT in test week · )?#\d+ · ")  # history starts with a date


def recommendation_captions(app: AppTest) -> list[str]:
    return [c for image in app.main.image for c in image.captions if RECOMMENDATION.match(c)]


def history_captions(app: AppTest) -> list[str]:
    """Captions of the history grid (the images between its heading and the recommendations)."""
    return [c for image in app.main.image for c in image.captions if not RECOMMENDATION.match(c)]


def warm_buyer(run: ins.RunData, env: dict[str, str], with_hit: bool) -> str:
    settings = load_settings(env=env)
    for customer in run.buyers:
        if with_hit and not ins.recommendations(run, customer)["hit"].any():
            continue
        if not ins.purchase_history(settings, customer, run.test_start).empty:
            return customer
    pytest.fail("the tiny run has no warm test-week buyer with a hit")


def test_a_customer_shows_history_and_12_recommendations(page_env, run) -> None:
    customer = warm_buyer(run, page_env, with_hit=False)
    history = ins.purchase_history(load_settings(env=page_env), customer, run.test_start)
    app = show_customer(open_page(), customer)

    ranks = [
        next(p for p in c.split(" · ") if p.startswith("#")) for c in recommendation_captions(app)
    ]
    assert ranks == [f"#{rank}" for rank in range(1, 13)]

    shown = history_captions(app)[: len(history)]  # the live grid comes after
    assert [c[:10] for c in shown] == [f"{d:%Y-%m-%d}" for d in history["t_dat"]]
    assert [c[:10] for c in shown] == sorted((c[:10] for c in shown), reverse=True)
    assert all(f"({a})" in c for a, c in zip(history["article_id"], shown, strict=True))
    assert all(c[:10] < run.test_start.isoformat() for c in shown)
    assert any(customer in str(df.value.values) for df in app.main.dataframe)  # attributes


def test_hits_are_marked(page_env, run) -> None:
    customer = warm_buyer(run, page_env, with_hit=True)
    hits = ins.recommendations(run, customer).query("hit")["article_id"]
    app = show_customer(open_page(), customer)
    marked = [c for c in recommendation_captions(app) if c.startswith("BOUGHT in test week")]
    assert len(marked) == len(hits) >= 1
    assert all(any(a in c for c in marked) for a in hits)
    assert f"({len(hits)} bought in the test week)" in " ".join(s.value for s in app.subheader)


def test_product_group_filter(page_env, run) -> None:
    customer = run.buyers[0]
    recs = ins.recommendations(run, customer)
    group = ins.product_groups(recs)[0]
    app = show_customer(open_page(), customer)
    app.multiselect(key="groups").set_value([group]).run()
    kept = recs[recs["product_group_name"] == group]["article_id"]
    captions = recommendation_captions(app)
    assert len(captions) == len(kept) < 12 or len(recs) == len(kept)
    assert all(any(a in c for c in captions) for a in kept)


def test_customer_without_history(page_env, run) -> None:
    settings = load_settings(env=page_env)
    cold = next(c for c in run.customers if ins.purchase_history(settings, c, run.test_start).empty)
    app = open_page()
    app.checkbox[0].uncheck().run()  # the pool of every customer, not only test-week buyers
    app = show_customer(app, cold)
    assert any("bought nothing before the test week" in i.value for i in app.info)
    assert len(recommendation_captions(app)) == 12


def test_missing_image_shows_a_placeholder(page_env, run, tmp_path, monkeypatch) -> None:
    customer = run.buyers[0]
    first = ins.recommendations(run, customer)["article_id"].iloc[0]
    images = tmp_path / "images"
    shutil.copytree(page_env["IMAGE_DIR"], images)
    (images / first[:3] / f"{first}.jpg").unlink()
    monkeypatch.setenv("IMAGE_DIR", str(images))
    app = show_customer(open_page(), customer)
    captions = recommendation_captions(app)
    assert captions[0].endswith(f"({first}) · {ins.NO_IMAGE}")
    # Every other recommendation whose photo exists shows it (the data itself lacks a few).
    shown = [(re.search(r"\((\d+)\)", c).group(1), c) for c in captions[1:]]
    with_photo = [c for a, c in shown if (images / a[:3] / f"{a}.jpg").is_file()]
    assert with_photo and not any(c.endswith(ins.NO_IMAGE) for c in with_photo)


def test_random_customer_button(page_env, run) -> None:
    app = open_page()
    app.button[0].click().run()
    shown = app.subheader[0].value.removeprefix("Customer ")
    assert shown in run.buyers
    assert app.text_input(key="prefix").value == shown


def test_unknown_prefix_says_so(page_env) -> None:
    app = open_page()
    app.text_input(key="prefix").set_value("zzzz").run()
    assert any("No customer id starts with" in w.value for w in app.warning)
    assert [t.value for t in app.text] == ["zzzz"]


def test_sidebar_shows_run_and_metrics(page_env, run) -> None:
    app = open_page()
    sidebar = app.sidebar
    assert run.run_id in str(sidebar.table[0].value.values)
    metrics = sidebar.table[1].value  # a table, which the wider sidebar shows whole
    assert set(metrics.index) == set(run.metrics["model"])


def test_page_opens_on_a_test_week_buyer_with_a_hit(page_env, run) -> None:
    app = open_page()
    shown = app.subheader[0].value.removeprefix("Customer ")
    with_hits = [c for c in run.buyers if ins.recommendations(run, c)["hit"].any()]
    assert with_hits, "the tiny run has no customer with a hit: the test shows nothing"
    assert shown == with_hits[0]
    assert len([c for c in recommendation_captions(app) if c.startswith("BOUGHT")]) >= 1


def test_customer_box_shows_input_as_plain_text(page_env) -> None:
    typed = "![x](http://127.0.0.1:9/pixel.png) **bold** <img src=x>"
    app = open_page()
    app.text_input(key="prefix").set_value(typed).run()

    assert [t.value for t in app.text] == [typed]  # shown once, as plain text
    rendered = [*app.markdown, *app.warning, *app.info, *app.error, *app.caption]
    rendered += [*app.title, *app.header, *app.subheader]
    assert not [e.value for e in rendered if "pixel.png" in str(e.value)]


def test_engine_unavailable_is_a_message_not_a_traceback(page_env, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "missing.duckdb"))
    app = open_page()
    assert any("not built yet" in w.value for w in app.warning)
    assert len(recommendation_captions(app)) == 12  # the run's part still works


def test_no_run_yet(page_env, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(tmp_path))
    app = open_page()
    (message,) = [i.value for i in app.info]
    assert "No successful run of MyMerlinFlow" in message
    assert RUN_COMMAND in message
    assert not app.main.image


def test_streamlit_started_from_the_repository_root_sends_no_usage_statistics() -> None:
    code = (
        "from streamlit import config\n"
        "config.get_config_options(force_reparse=True)\n"
        "print(config.get_option('browser.gatherUsageStats'))\n"
    )
    root = Path(PAGE).parents[1]
    shown = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "False"  # Streamlit's default is True


def test_the_page_reads_the_runs_data_unless_a_setting_names_other(
    page_env, tiny_flow_run, monkeypatch
) -> None:  # noqa: ANN001
    """Without DATA_DIR, DUCKDB_PATH and IMAGE_DIR the page reads the run's recorded data
    (its history shows: the views are found) and says so; a set variable wins."""
    for name in ("DATA_DIR", "DUCKDB_PATH", "IMAGE_DIR"):
        monkeypatch.setenv(name, "")
    app = open_page()
    (notes,) = [c.value for c in app.sidebar.code]
    assert f"DATA_DIR: {tiny_flow_run.data_dir} (the run's)" in notes
    assert f"DUCKDB_PATH: {tiny_flow_run.env['DUCKDB_PATH']} (the run's)" in notes
    assert not [w.value for w in app.warning]  # the views were found, not "not built yet"
    assert len(history_captions(app)) > 0 and not [i.value for i in app.info if "photos" in i.value]
    monkeypatch.setenv("DATA_DIR", str(tiny_flow_run.data_dir.parent))
    (notes,) = [c.value for c in open_page().sidebar.code]
    assert f"DATA_DIR: {tiny_flow_run.data_dir.parent} (the setting)" in notes


def test_a_run_without_photos_shows_placeholders_and_says_why(
    page_env, tiny_flow_run_without_photos, monkeypatch
) -> None:  # noqa: ANN001
    for name in SETTINGS_VARIABLES:
        monkeypatch.setenv(name, tiny_flow_run_without_photos.env[name])
    monkeypatch.setenv("IMAGE_DIR", "")
    app = open_page()
    assert any("no product photos" in i.value for i in app.info)
    captions = recommendation_captions(app)
    assert len(captions) == 12
    assert all(c.endswith(f"· {ins.NO_IMAGE}") for c in captions)
