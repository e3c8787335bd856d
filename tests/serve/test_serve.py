"""The recommendation service (recsys.serve) on the tiny flow run and its real DuckDB file.

The run's DuckDB file is copied per module: these tests write purchases into it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from recsys.ingest.broker import free_port
from recsys.run_folder import RunFolder
from recsys.serve.__main__ import build_service
from recsys.serve.app import Service, create_app
from recsys.serve.recommender import Recommender
from recsys.serve.run import load_run
from recsys.serve.views import Views
from recsys.settings import ConfigError, Settings, load_settings
from recsys.store.engine import DuckDBEngine

UNKNOWN = "f" * 64
# where an item came from: the model's list (`model`) or another candidate source
SOURCE_LABELS = {"model", "repurchase", "popular", "bought_together", "same_product",
                 "popular_by_age"}  # fmt: skip
REPO_ROOT = Path(__file__).resolve().parents[2]


def copied_settings(flow, root: Path, **env: str) -> Settings:
    """The run's settings with a copy of its DuckDB file under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(flow.env["DUCKDB_PATH"], root / "hm.duckdb")
    return load_settings(env={**flow.env, "DUCKDB_PATH": str(root / "hm.duckdb"), **env})


@pytest.fixture(scope="module")
def service(tiny_flow_run, tmp_path_factory) -> Iterator[Service]:
    """The service over a writable copy: tests write purchases through the same database."""
    settings = copied_settings(tiny_flow_run, tmp_path_factory.mktemp("serve"))
    run = load_run(RunFolder(tiny_flow_run.export_dir))
    views = Views(settings, run, writable=True)
    service = Service(settings, run, views, on_stop=[views.close])
    yield service
    service.stop()


@pytest.fixture(scope="module")
def client(service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as client:
        yield client


def knows(service: Service, customer_id: str) -> bool:
    state = service.views.state
    return state.known(state.row(customer_id))


def customers(service: Service, warm: bool, with_purchases: bool = True) -> list[str]:
    """Customers of the views that the model knows (warm) or not, with purchases."""
    ids = service.views.query(
        "SELECT DISTINCT customer_id FROM dedup_transactions_t ORDER BY customer_id"
        if with_purchases
        else "SELECT customer_id FROM customers_t ORDER BY customer_id"
    )["customer_id"]
    return [c for c in ids if knows(service, c) == warm]


def write_purchase(service: Service, customer_id: str, article_id: str, day: date, n: int) -> None:
    """A purchase event written as the consumer writes it (same process, same database),
    then applied to the online state, as the in-process consumer does after its commit."""
    row = {
        "event_id": f"test-serve.csv:{n}",
        "t_dat": day,
        "customer_id": customer_id,
        "article_id": article_id,
        "price": 0.05,
        "sales_channel_id": 2,
        "_offset": n,
    }
    engine = DuckDBEngine(service.settings)
    try:
        new = engine.write_batch({"transactions": pa.Table.from_pylist([row])}, new_purchases=True)
    finally:
        engine.close()
    service.views.state.apply(new)


# --- contract ----------------------------------------------------------------------------


def test_recommendations_contract(client: TestClient, service: Service) -> None:
    customer = customers(service, warm=True)[0]
    body = client.get(f"/recommendations/{customer}", params={"k": 5}).json()
    assert set(body) == {"customer_id", "as_of", "run_id", "items"}
    assert body["customer_id"] == customer and body["run_id"] == service.run.run_id
    assert date.fromisoformat(body["as_of"]) == service.views.shared.newest_day
    items = body["items"]
    assert len(items) == 5 and len({i["article_id"] for i in items}) == 5
    ranked = service.run.info.served.warm.startswith("ranker")  # it scores every item
    for item in items:
        assert set(item) == {"article_id", "score", "source", "prod_name", "image_url"}
        assert item["source"] in SOURCE_LABELS
        assert (item["score"] is None) == (item["source"] != "model" and not ranked)
        assert item["image_url"] is None or item["image_url"].endswith(f"{item['article_id']}.jpg")
    scores = [i["score"] for i in items if i["score"] is not None]
    assert scores == sorted(scores, reverse=True)
    image = next(i["image_url"] for i in items if i["image_url"])
    assert client.get(image).headers["content-type"] == "image/jpeg"
    for k in (1, 100):
        assert len(client.get(f"/recommendations/{customer}", params={"k": k}).json()["items"]) == k


def test_unknown_customer_gets_popular_items(client: TestClient, service: Service) -> None:
    """No purchases, no age: the popular list, or (a ranker as the fallback) the ranker's
    order of the popular lists' articles, best first."""
    items = client.get(f"/recommendations/{UNKNOWN}").json()["items"]
    popular = list(service.views.shared.day.popular)
    if service.run.info.served.cold in ("popular", "repurchase"):
        assert [i["source"] for i in items] == ["popular"] * 12
        assert [i["article_id"] for i in items] == popular[:12]
    else:
        assert {i["source"] for i in items} <= {"popular", "popular_by_age"}
        assert len({i["article_id"] for i in items}) == 12
        scores = [i["score"] for i in items]
        assert None not in scores and scores == sorted(scores, reverse=True)
    assert client.get(f"/customers/{UNKNOWN}/history").json()["items"] == []


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/recommendations/ABC", {}, "customer_id"),
        (f"/recommendations/{'A' * 64}", {}, "customer_id"),
        (f"/recommendations/{UNKNOWN}", {"k": 0}, "k"),
        (f"/recommendations/{UNKNOWN}", {"k": 101}, "k"),
        (f"/recommendations/{UNKNOWN}", {"k": "twelve"}, "k"),
        (f"/customers/{UNKNOWN}/history", {"limit": 13}, "limit"),
        ("/customers/123/history", {}, "customer_id"),
    ],
)
def test_malformed_input_is_a_422_naming_the_parameter(
    client: TestClient, path: str, params: dict, named: str
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422
    assert response.json()["message"].startswith(f"{named}: ")


def test_health_and_docs(client: TestClient, service: Service) -> None:
    health = client.get("/health").json()
    assert health["run_id"] == service.run.run_id and health["engine"] == "embedded"
    assert health["customers"] == service.views.engine.count("customers_t") > 0
    assert health["articles"] == service.views.engine.count("articles_t") > 0
    assert health["served_articles"] == len(service.views.shared.day.candidates) > 0
    assert health["photos"].startswith("folder ")
    assert health["consumer_lag"] is None and health["consumer"] == "none"
    assert "/recommendations/{customer_id}" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_health_tells_a_dead_consumer_from_none(
    client: TestClient, service: Service, monkeypatch
) -> None:  # noqa: ANN001
    """A consumer thread that stopped on an error is not "no consumer": /health says why."""
    from recsys.serve import live
    from recsys.store.consumer import ConsumerError

    def broken(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
        raise ConsumerError("the broker refused us")

    monkeypatch.setattr(live, "consume", broken)
    monkeypatch.setattr(live, "create_topics", lambda settings: None)
    consumer = live.LiveConsumer(service.settings, service.views).start()
    consumer.stop()
    monkeypatch.setattr(service, "consumer", consumer.status)
    assert client.get("/health").json()["consumer"] == (
        "stopped: ConsumerError: the broker refused us"
    )


# --- the request path against the flow's own computations --------------------------------


def test_numpy_tower_and_its_inputs_match_the_flow(service: Service, tiny_flow_run) -> None:  # noqa: ANN001
    """Array look-ups + the numpy tower give the codes NVTabular gives and the embeddings
    Keras predict gives (1e-5), on 300 customers, an unknown id, missing values, an
    unknown status and an article the model never saw; and the state's query for a
    customer is the flow's (same profile, articles and day)."""
    import tensorflow as tf

    from recsys.train.embed import customers_as_of
    from recsys.train.features import FittedFeatures, prepare_customers
    from recsys.train.recent_articles import NO_ARTICLE, RECENT_TEXT
    from recsys.train.towers import embed

    when = pd.Timestamp("2020-09-23")
    profiles = service.views.query(f"{customers_as_of(when.date())} LIMIT 300")
    profiles.loc[0, "customer_id"] = UNKNOWN  # out of vocabulary
    profiles.loc[1, ["age", "club_member_status", "postal_code"]] = [None, None, None]
    profiles.loc[2, "club_member_status"] = "NEVER SEEN"
    texts = profiles[RECENT_TEXT].fillna("")
    profiles.loc[3, RECENT_TEXT] = f"0999999999,{texts[3]}"  # an article the model never saw
    prepared = prepare_customers(profiles, when)
    assert (prepared["recent_2"] != NO_ARTICLE).any() and (prepared["recent_4"] == NO_ARTICLE).any()
    features = FittedFeatures.load(tiny_flow_run.export_dir / "workflows")
    expected_codes = features.customers(prepared)
    codes = service.run.inputs.encode(prepared)
    for i, column in enumerate(service.run.tower.columns):
        np.testing.assert_array_equal(codes[:, i], expected_codes[column].to_numpy())
    keras = tf.keras.models.load_model(str(tiny_flow_run.export_dir / "query_tower"), compile=False)
    expected = embed(keras, expected_codes, features.schema)
    np.testing.assert_allclose(service.run.tower(codes), expected, rtol=1e-5, atol=1e-5)
    state = service.views.state
    for row in range(4, 40):
        customer = profiles.loc[row, "customer_id"]
        query = state.customers([customer], when.date(), queries=True).queries
        np.testing.assert_allclose(query[0], expected[row], rtol=1e-5, atol=1e-5)


@contextmanager
def views_as_of_predict_day(tiny_flow_run, root: Path) -> Iterator[tuple]:
    """The run and the views as the flow's predict step saw them: a copy of the DuckDB
    file without the purchases of the predict day and later."""
    run = load_run(RunFolder(tiny_flow_run.export_dir))
    settings = copied_settings(tiny_flow_run, root)
    predict_day = run.info.dates["predict_start"]
    writer = DuckDBEngine(settings)
    writer.execute("DELETE FROM transactions_raw WHERE t_dat >= $1", [predict_day])
    writer.close()
    views = Views(settings, run)
    try:
        assert views.shared.newest_day + timedelta(days=1) == predict_day
        yield run, views, predict_day
    finally:
        views.close()


def test_answers_are_the_flows_predictions_candidates_included(tiny_flow_run, tmp_path) -> None:  # noqa: ANN001
    """With the views as the flow's predict step saw them, the service answers every
    customer with their row of the exported predictions: same articles, order, sources
    and scores, the model ranking only the articles the run's candidate rule keeps."""
    from recsys.strategy.served import Served

    with views_as_of_predict_day(tiny_flow_run, tmp_path) as (run, views, predict_day):
        candidates = views.shared.day.candidates
        assert run.info.candidate_rule.days > 0 and len(candidates) < len(run.catalogue)
        predictions = pd.read_parquet(tiny_flow_run.export_dir / "predictions.parquet")
        recommender = Recommender(run, views)
        for customer, expected in list(predictions.groupby("customer_id"))[:150]:
            expected = expected.sort_values("rank")
            items = recommender.recommend(customer, run.info.top_k).items
            assert [i.article_id for i in items] == expected["article_id"].tolist(), customer
            assert [i.source for i in items] == expected["source"].tolist(), customer
            scores = [np.nan if i.score is None else i.score for i in items]
            np.testing.assert_allclose(scores, expected["score"], rtol=1e-4, atol=1e-5)
        # deeper than the predictions go, the model still ranks only the candidates,
        # where the whole catalogue's ranking would have other articles
        sold = set(candidates.article_ids)
        warm = next(c for c in predictions["customer_id"] if views.state.known(views.state.row(c)))
        recommender.served = Served("two_tower", run.info.served.cold)
        deep = [i.article_id for i in recommender.recommend(warm, 100).items if i.score]
        assert len(deep) >= 50 and set(deep) <= sold
        query = views.state.customers([warm], predict_day, queries=True).queries
        whole, _ = run.catalogue.search(query, len(deep))
        assert set(whole[0]) - sold


def test_every_registered_method_ranks_alike_in_the_flow_and_the_service(
    tiny_flow_run, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    """Each method of the registry, served alone, gives the service's answers the lists
    the flow's scoring makes for the same customers as of the same day; so does a method
    added in the test (a new method is one class and one registry entry)."""
    from recsys.evaluate.scoring import customer_batches
    from recsys.strategy.inputs import Day, History
    from recsys.strategy.lists import Lists
    from recsys.strategy.methods import METHODS, Method
    from recsys.strategy.served import Served

    class ReversedPopular(Method):  # the example of ARCHITECTURE.md, "Adding a method"
        name = "reversed_popular"

        def rank(self, customers, day, depth):  # noqa: ANN001, ANN201
            return Lists.same_for_all(len(customers), day.popular[::-1], depth, "popular")

    monkeypatch.setitem(METHODS, ReversedPopular.name, ReversedPopular())
    with views_as_of_predict_day(tiny_flow_run, tmp_path) as (run, views, predict_day):
        known = pd.Index(views.state.inputs.known_customers())
        embeddings = tiny_flow_run.export_dir / "customer_embeddings.parquet"
        with DuckDBEngine(views.settings, read_only=True) as engine:
            rule = run.info.candidate_rule
            day = Day.read(engine, predict_day, run.catalogue, rule, rankers=run.rankers)
            history = History.read(engine, predict_day)
            batch = next(customer_batches(embeddings, history, known, batch_rows=150))
        assert batch.known.any() and not batch.known.all()
        assert batch.purchases.units.sum() > 0 and not np.isnan(batch.age).all()
        for name, method in METHODS.items():
            flow = method.rank(batch, day, 12).to_frame(batch.ids)
            served = Served(name, name) if method.uses_model else Served("two_tower", name)
            recommender = Recommender(run, views)
            recommender.served = served
            for customer in batch.ids[~batch.known if not method.uses_model else batch.known]:
                expected = flow[flow["customer_id"] == customer]
                items = recommender.recommend(customer, 12).items
                assert [i.article_id for i in items] == expected["article_id"].tolist(), name
                assert [i.source for i in items] == expected["source"].tolist(), name


# --- freshness: what the views hold now is what is served ---------------------------------


def test_a_new_purchase_changes_history_and_recommendations(
    client: TestClient, service: Service
) -> None:
    customer = customers(service, warm=True)[1]
    before = client.get(f"/recommendations/{customer}").json()
    seen = {i["article_id"] for i in client.get(f"/customers/{customer}/history").json()["items"]}
    article = next(a for a in service.run.articles if a not in seen)
    day = service.views.shared.newest_day + timedelta(days=1)
    write_purchase(service, customer, article, day, n=1)

    history = client.get(f"/customers/{customer}/history").json()
    assert history["items"][0]["article_id"] == article
    assert history["as_of"] == day.isoformat()
    after = client.get(f"/recommendations/{customer}").json()
    assert after["as_of"] == day.isoformat() > before["as_of"]
    assert after["items"] != before["items"]
    # the query tower saw the purchase (recent_1): the same articles score differently
    scores = [
        {i["article_id"]: i["score"] for i in a["items"] if i["score"]} for a in (before, after)
    ]
    common = scores[0].keys() & scores[1].keys()
    assert common and any(abs(scores[0][a] - scores[1][a]) > 1e-5 for a in common)
    if service.run.info.served.warm == "repurchase+two_tower":
        assert after["items"][0] == {**after["items"][0], "article_id": article,
                                     "source": "repurchase"}  # fmt: skip


def test_a_cold_customer_with_purchases_gets_the_fallback(
    client: TestClient, service: Service
) -> None:
    """Never the model's list or score. With the repurchase baseline as the fallback:
    their own recent purchases first, then the popular list without those; with the
    ranker: its order of their candidates, their recent purchases among them."""
    cold = customers(service, warm=False)
    assert cold, "the tiny data has buyers the model was not trained on"
    today = service.views.shared.newest_day + timedelta(days=1)
    popular = list(service.views.shared.day.popular)
    fallback = service.run.info.served.cold
    for customer in cold[:10]:
        items = client.get(f"/recommendations/{customer}").json()["items"]
        own = list(service.views.state.customers([customer], today, False).history.values)[:12]
        assert "model" not in {i["source"] for i in items} and len(items) == 12
        if fallback == "repurchase":
            expected = [*own, *[a for a in popular if a not in own]][:12]
            assert [i["article_id"] for i in items] == expected
            sources = ["repurchase"] * len(own) + ["popular"] * (12 - len(own))
            assert [i["source"] for i in items] == sources
        else:  # the ranker (or another source): scored lists, best first
            scores = [i["score"] for i in items if i["score"] is not None]
            assert scores == sorted(scores, reverse=True)
            assert {i["source"] for i in items} <= SOURCE_LABELS


# --- everything at once --------------------------------------------------------------------


@contextmanager
def running(service: Service) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, stopped at the end."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_readers_never_fail_while_a_writer_writes(service: Service) -> None:
    """16 clients read while purchases are written batch by batch: every request is a 200."""
    warm = customers(service, warm=True)
    targets = [*warm[:40], UNKNOWN]
    stop = threading.Event()
    written = []

    def writer() -> None:
        day = service.views.shared.newest_day + timedelta(days=2)
        n = 100
        while not stop.is_set():
            n += 1
            write_purchase(service, warm[n % len(warm)], "0" * 10, day, n)
            written.append(n)

    def reader(seed: int) -> list[int]:
        rng = np.random.default_rng(seed)
        codes = []
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                customer = targets[rng.integers(len(targets))]
                path = rng.choice(
                    [f"/recommendations/{customer}", f"/customers/{customer}/history"]
                )
                codes.append(http.get(str(path)).status_code)
        return codes

    with running(service) as url, ThreadPoolExecutor(17) as pool:
        write = pool.submit(writer)
        reads = [pool.submit(reader, seed) for seed in range(16)]
        time.sleep(8)
        stop.set()
        write.result()
        codes = [code for read in reads for code in read.result()]
    assert len(written) > 5 and len(codes) > 50
    assert set(codes) == {200}, {c: codes.count(c) for c in set(codes)}


@pytest.mark.kafka
def test_kafka_purchase_reaches_the_service(kafka_broker, fresh_topics, tiny_flow_run, tmp_path):  # noqa: ANN001
    """End to end: produce a purchase, the in-process consumer writes it, the service
    answers with it within a bounded wait."""
    from confluent_kafka import Producer

    from recsys.ingest.kafka_clients import create_topics

    settings = copied_settings(
        tiny_flow_run, tmp_path, KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap,
        SERVE_PORT=str(free_port()),
    )  # fmt: skip
    create_topics(settings)
    service = build_service(settings, consume=True)
    try:
        customer = customers(service, warm=True)[2]
        with running(service) as url, httpx.Client(base_url=url, timeout=30) as http:
            before = http.get(f"/recommendations/{customer}").json()
            seen = {
                i["article_id"] for i in http.get(f"/customers/{customer}/history").json()["items"]
            }
            article = next(a for a in service.run.articles if a not in seen)
            day = service.views.shared.newest_day + timedelta(days=1)
            event = {"event_id": "live.csv:1", "t_dat": day.isoformat(), "customer_id": customer,
                     "article_id": article, "price": 0.05, "sales_channel_id": 2}  # fmt: skip
            producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
            producer.produce("transactions_topic", json.dumps(event).encode(), customer.encode())
            assert producer.flush(30) == 0
            deadline = time.monotonic() + 60
            while True:
                history = http.get(f"/customers/{customer}/history").json()
                if history["items"] and history["items"][0]["article_id"] == article:
                    break
                assert time.monotonic() < deadline, "the purchase never reached the service"
                time.sleep(0.1)
            after = http.get(f"/recommendations/{customer}").json()
            assert after["as_of"] == day.isoformat() > before["as_of"]
            assert after["items"] != before["items"]
            health = http.get("/health").json()
            assert health["consumer_lag"] == 0 and health["consumer"] == "running"
    finally:
        service.stop()


def test_the_page_shows_the_service_answer_with_hits(
    service: Service, tiny_flow_run, monkeypatch
) -> None:  # noqa: ANN001
    """The inspector's live panel: the service's items as images, test-week hits marked."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from recsys.app import inspector as ins

    data = ins.load_run_data(tiny_flow_run.export_dir)
    customer = next(c for c in data.buyers if knows(service, c))
    names = ("METAFLOW_DATASTORE_SYSROOT_LOCAL", "OUTPUT_DIR", "DATA_DIR")
    with running(service) as url:
        env = {name: tiny_flow_run.env[name] for name in names}
        env |= {"DUCKDB_PATH": str(service.settings.duckdb_path), "RISINGWAVE_URL": "",
                "SERVE_PORT": url.rsplit(":", 1)[1], "IMAGE_URL_TEMPLATE": ""}  # fmt: skip
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        st.cache_data.clear()
        page = AppTest.from_file(str(REPO_ROOT / "streamlit" / "pred_inspector.py"))
        page.default_timeout = 60
        page.run().text_input(key="prefix").set_value(customer).run()
        assert not page.exception, [e.value for e in page.exception]
        answer = httpx.get(f"{url}/recommendations/{customer}").json()
    captions = [c for image in page.main.image for c in image.captions]
    live = [c for c in captions if c.removeprefix("BOUGHT in test week · ").startswith("live #")]
    assert [c.rsplit("(", 1)[1].rstrip(")") for c in live] == [
        i["article_id"] for i in answer["items"]
    ]
    bought = ins.bought_in_test_week(data, customer)
    assert [c.startswith("BOUGHT") for c in live] == [
        i["article_id"] in bought for i in answer["items"]
    ]
    assert any(f"as of {answer['as_of']}" in c.value for c in page.caption)


# --- start-up ------------------------------------------------------------------------------


def test_no_run_refuses_to_start_and_says_how_to_make_one(tmp_path: Path) -> None:
    env = {"OUTPUT_DIR": str(tmp_path / "output"), "DATA_DIR": str(tmp_path), "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "recsys.serve"], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "python recsys/my_merlin_flow.py run" in result.stderr
    assert str(tmp_path / "output") in result.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [({"SERVE_PORT": "80000"}, "SERVE_PORT"), ({"SERVE_PORT": "x"}, "SERVE_PORT"),
     ({"SERVE_HOST": "http://localhost"}, "SERVE_HOST"), ({"SERVE_HOST": "a:1"}, "SERVE_HOST")],
)  # fmt: skip
def test_bad_serve_settings_are_named(env: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env=env)
    assert load_settings(env={}).service_url == "http://127.0.0.1:8000"


def test_image_urls_fill_the_template_or_point_at_the_service() -> None:
    from recsys.serve.app import image_url

    cdn = load_settings(env={"IMAGE_URL_TEMPLATE": "https://cdn.example/{folder}/{article_id}.jpg"})
    assert image_url(cdn, None, "0108775015") == "https://cdn.example/010/0108775015.jpg"
    local = load_settings(env={"IMAGE_URL_TEMPLATE": ""})
    served = image_url(local, "http://127.0.0.1:8000/images/", "0108775015")
    assert served == "http://127.0.0.1:8000/images/010/0108775015.jpg"
