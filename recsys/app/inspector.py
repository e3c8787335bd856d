"""Data loading and formatting behind the Streamlit inspector (`streamlit/pred_inspector.py`).

The page only lays things out; everything it shows is computed here so it can be unit-tested
without a browser. Two sources feed it:

- a finished run of `MyMerlinFlow`, found through Metaflow's client, whose export folder
  (ARCHITECTURE.md, "Flow export contract") holds the predictions, metrics and test-week
  purchases;
- the streaming engine (embedded DuckDB or RisingWave), read at the moment the page is shown,
  for the customer's attributes and purchase history, so a replay through Kafka is visible live.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

from recsys import run_folder as rf
from recsys.run_folder import FLOW_NAME, RunFolder, RunInfo
from recsys.settings import Settings

TOP_K = 12
HISTORY_LIMIT = 24
MAX_MATCHES = 200
SEGMENTS = ("warm", "cold")
NO_IMAGE = "no image"
MODEL_SOURCE = "model"  # predictions' `source` of the rows the model ranked
ARTICLE_COLUMNS = "prod_name, product_type_name, colour_group_name, product_group_name, image_path"


class EngineUnavailable(RuntimeError):
    """The streaming views could not be read right now (locked, not built, unreachable)."""


class ServiceUnavailable(RuntimeError):
    """The recommendation service did not answer; the message says how to start it."""


@dataclass(frozen=True)
class RunRef:
    """A successful flow run the page can show, with where its export lives."""

    run_id: str
    created_at: datetime
    export_dir: Path

    @property
    def label(self) -> str:
        return f"{self.run_id} ({self.created_at:%Y-%m-%d %H:%M})"


@dataclass(frozen=True)
class RunData:
    """One run's export, indexed for instant per-customer look-ups."""

    run_id: str
    export_dir: Path
    info: RunInfo
    predictions: pd.DataFrame  # index customer_id, sorted by rank
    metrics: pd.DataFrame
    actuals: pd.DataFrame  # index customer_id
    articles: pd.DataFrame  # index article_id
    customers: tuple[str, ...]  # customers with predictions, sorted
    buyers: tuple[str, ...]  # customers with test-week purchases, sorted

    @property
    def test_start(self) -> date | None:
        """First day of the test week: the history shown is what the model could see."""
        start = self.info.dates.get("test_start")
        if start is None and not self.actuals.empty:
            start = self.actuals["t_dat"].min()
        return None if start is None else pd.Timestamp(start).date()


@dataclass(frozen=True)
class Card:
    """One tile of an image grid: what to draw and the text under it."""

    article_id: str
    image: str | bytes  # local path or URL, or the placeholder PNG
    caption: str
    hit: bool = False


# --- runs --------------------------------------------------------------------------------


def recent_runs(metaflow_root: Path | None, limit: int = 10) -> list[RunRef]:
    """Newest successful runs of the flow that exported files for the app, newest first.

    `metaflow_root` is the folder holding `.metaflow` (METAFLOW_DATASTORE_SYSROOT_LOCAL); it is
    set explicitly because Metaflow reads that variable only once, when first imported.
    """
    import metaflow

    if metaflow_root is not None:
        if not (metaflow_root / ".metaflow").is_dir():
            return []
        metaflow.metadata(f"local@{metaflow_root}")
    metaflow.namespace(None)  # runs by every user, not only the one running the page
    try:
        flow = metaflow.Flow(FLOW_NAME)
    except metaflow.exception.MetaflowNotFound:
        return []
    runs: list[RunRef] = []
    for run in flow:
        if len(runs) >= limit:
            break
        if not run.successful:
            continue
        export_dir = getattr(run.data, "export_dir", None)
        if export_dir:
            runs.append(RunRef(run.id, run.created_at, Path(export_dir)))
    return runs


def load_run_data(export_dir: Path) -> RunData:
    """Read a run's folder; a missing file raises RunMissing naming it."""
    folder = RunFolder(export_dir)
    folder.require(rf.PREDICTIONS, rf.TEST_ACTUALS, rf.ARTICLES, rf.METRICS)
    info = folder.info()
    predictions = pd.read_parquet(folder.file(rf.PREDICTIONS)).sort_values(["customer_id", "rank"])
    actuals = pd.read_parquet(folder.file(rf.TEST_ACTUALS))
    articles = pd.read_parquet(folder.file(rf.ARTICLES)).drop_duplicates("article_id")
    return RunData(
        run_id=info.run_id,
        export_dir=export_dir,
        info=info,
        predictions=predictions.set_index("customer_id"),
        metrics=pd.read_parquet(folder.file(rf.METRICS)),
        actuals=actuals.set_index("customer_id").sort_index(),
        articles=articles.set_index("article_id"),
        customers=tuple(predictions["customer_id"].drop_duplicates()),
        buyers=tuple(sorted(set(actuals["customer_id"]) & set(predictions["customer_id"]))),
    )


def prediction_note(run: RunData) -> str:
    """Which data the recommendations and the hits come from, so nobody over-reads a hit."""
    dates = run.info.dates
    note = f"Test week: {dates.get('test_start', '?')} .. {dates.get('end', '?')}."
    if dates.get("predict_start") == dates.get("test_start"):
        note += (
            " Recommendations were made with data from before the test week only, so a"
            " marked hit is a purchase the model could not have seen."
        )
    return note


# --- sidebar -------------------------------------------------------------------------------


def run_summary(run: RunData) -> dict[str, str]:
    """Short facts for the sidebar: when, on what data, how big."""
    info = run.info
    summary = {"run id": run.run_id, "date": info.created_at, "data": info.data_dir}
    summary["device"] = info.device
    for split, rows in info.rows.items():
        summary[f"{split} rows"] = f"{int(rows):,}"
    summary["customers with predictions"] = f"{len(run.customers):,}"
    summary["test-week buyers"] = f"{len(run.buyers):,}"
    return summary


def hyperparameters(run: RunData) -> dict:
    """The hyperparameters the flow's search picked."""
    return dict(run.info.best_hyperparameters)


def metric_table(metrics: pd.DataFrame, shown: Sequence[str] = ("map@12",)) -> pd.DataFrame:
    """Model vs baselines: one row per model, one column per (metric, warm/cold segment)."""
    table = metrics[metrics["segment"].isin(SEGMENTS)].pivot_table(
        index="model", columns="segment", values=list(shown)
    )
    columns = [(metric, segment) for metric in shown for segment in SEGMENTS]
    table = table.reindex(columns=pd.MultiIndex.from_tuples(columns))
    table.columns = [f"{metric} {segment}" for metric, segment in columns]
    return table.round(4)


def interval_table(metrics: pd.DataFrame, metric: str = "map@12") -> pd.DataFrame:
    """Every model over all test customers: `metric` and its 95% bootstrap interval (how
    sure the figure is; runs exported before intervals existed show the figure alone)."""
    shown = metrics[metrics["segment"] == "all"].set_index("model")
    table = shown[[metric]].round(4)
    if f"{metric}_low" in shown:
        low, high = shown[f"{metric}_low"], shown[f"{metric}_high"]
        table["95% interval"] = [f"{a:.4f} .. {b:.4f}" for a, b in zip(low, high, strict=True)]
    return table


def metric_chart(metrics: pd.DataFrame, metric: str = "map@12") -> pd.DataFrame:
    """One metric by model (rows) and segment (columns), for a grouped bar chart."""
    shown = metrics[metrics["segment"].isin(SEGMENTS)]
    return shown.pivot_table(index="model", columns="segment", values=metric)


# --- choosing a customer -------------------------------------------------------------------


def candidate_customers(run: RunData, only_buyers: bool) -> Sequence[str]:
    """The pool the picker works on: every customer, or the test-week buyers."""
    return run.buyers if only_buyers else run.customers


def match_customers(pool: Sequence[str], prefix: str, limit: int = MAX_MATCHES) -> list[str]:
    """Customers whose id starts with `prefix` (spaces and case ignored), first `limit`."""
    prefix = prefix.strip().lower()
    matches = [c for c in pool if c.lower().startswith(prefix)] if prefix else list(pool)
    return matches[:limit]


def random_customer(pool: Sequence[str]) -> str | None:
    return random.choice(pool) if pool else None


def start_customer(run: RunData, matches: Sequence[str]) -> str | None:
    """Whom the page opens on: the first of `matches` with a hit among their
    recommendations (so a first-time user sees what a hit looks like), else the first."""
    buyers = set(run.buyers)
    for customer in matches:
        if customer in buyers and recommendations(run, customer)["hit"].any():
            return customer
    return matches[0] if matches else None


# --- recommendations -----------------------------------------------------------------------


def recommendations(run: RunData, customer_id: str) -> pd.DataFrame:
    """The customer's top-12 with article metadata and `hit` = bought in the test week."""
    if customer_id not in run.predictions.index:
        return pd.DataFrame(columns=["rank", "article_id", "score", "source", "hit"])
    recs = run.predictions.loc[[customer_id]].reset_index(drop=True)
    recs = recs.join(run.articles, on="article_id")
    recs["hit"] = recs["article_id"].isin(bought_in_test_week(run, customer_id))
    return recs


def bought_in_test_week(run: RunData, customer_id: str) -> set[str]:
    if customer_id not in run.actuals.index:
        return set()
    return set(run.actuals.loc[[customer_id], "article_id"])


def product_groups(recs: pd.DataFrame) -> list[str]:
    if "product_group_name" not in recs:
        return []
    return sorted(recs["product_group_name"].dropna().unique())


def filter_by_group(recs: pd.DataFrame, groups: Sequence[str]) -> pd.DataFrame:
    """Keep the chosen product groups; no choice keeps everything."""
    return recs[recs["product_group_name"].isin(groups)] if groups else recs


# --- images --------------------------------------------------------------------------------


def image_source(article_id: str, settings: Settings, has_image: bool = True) -> str | None:
    """Where the article's photo is: a URL from the template, an existing local file, or None.

    Local images follow the Kaggle layout `<image_dir>/<first 3 digits>/<article_id>.jpg`.
    With a URL template the file cannot be checked cheaply, so the export's `image_path`
    (`has_image`) decides.
    """
    if not has_image:
        return None
    folder = article_id[:3]
    if settings.image_url_template:
        return settings.image_url_template.format(folder=folder, article_id=article_id)
    path = settings.image_dir / folder / f"{article_id}.jpg"
    return str(path) if path.is_file() else None


@lru_cache(maxsize=1)
def placeholder_image() -> bytes:
    """A grey tile with 'no image', the same 2:3 shape as the product photos."""
    tile = Image.new("RGB", (180, 270), (232, 232, 232))
    ImageDraw.Draw(tile).text((58, 128), NO_IMAGE, fill=(120, 120, 120))
    out = io.BytesIO()
    tile.save(out, format="PNG")
    return out.getvalue()


def _card(row: dict, settings: Settings, caption: str, hit: bool = False) -> Card:
    """A tile; `image_path` (from the export or the views) being null means no image."""
    article_id = str(row["article_id"])
    has_image = "image_path" not in row or pd.notna(row["image_path"])
    source = image_source(article_id, settings, has_image=has_image)
    if source is None:
        return Card(article_id, placeholder_image(), f"{caption} · {NO_IMAGE}", hit)
    return Card(article_id, source, caption, hit)


def _describe(row: dict) -> str:
    parts = [row.get(c) for c in ("prod_name", "product_type_name", "colour_group_name")]
    return " · ".join(str(p) for p in parts if isinstance(p, str) and p) or "unknown article"


def score_text(source: str, score: float) -> str:
    """The model's score on the rows the model ranked; none on any other row.

    Rows from recent purchases (`repurchase`) or a fallback baseline were not placed by
    the model: a score there (the export has one when the model also ranked the article)
    would suggest it was, so every such row reads the same, "no score".
    """
    if source != MODEL_SOURCE or pd.isna(score):
        return "no score"
    return f"score {float(score):.3f}"


def recommendation_cards(recs: pd.DataFrame, settings: Settings) -> list[Card]:
    """Rank, source, score and a clear mark on the test-week hits."""
    cards = []
    for row in recs.to_dict("records"):
        mark = "BOUGHT in test week · " if row["hit"] else ""
        caption = (
            f"{mark}#{int(row['rank'])} · {row['source']} · "
            f"{score_text(row['source'], row['score'])} · {_describe(row)} ({row['article_id']})"
        )
        cards.append(_card(row, settings, caption, hit=bool(row["hit"])))
    return cards


def history_cards(history: pd.DataFrame, settings: Settings) -> list[Card]:
    """Purchases, newest first, with name, type, colour and date."""
    return [
        _card(
            row,
            settings,
            f"{pd.Timestamp(row['t_dat']):%Y-%m-%d} · {_describe(row)} ({row['article_id']})",
        )
        for row in history.to_dict("records")
    ]


# --- the streaming engine --------------------------------------------------------------------


def query_engine(settings: Settings, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
    """Run one read-only query on the streaming views, opening and closing the engine.

    The connection is not kept open: an embedded DuckDB file opened by the page would block
    the Kafka consumer that writes to it. Any failure becomes EngineUnavailable with a
    message meant for the page, not a traceback.
    """
    where = settings.risingwave_url and "RisingWave" or f"DuckDB file {settings.duckdb_path}"
    if not settings.risingwave_url and not settings.duckdb_path.is_file():
        raise EngineUnavailable(
            f"The streaming views are not built yet ({where} does not exist): "
            "load the data first (see the README)."
        )
    from recsys.store.engine import open_engine

    try:
        engine = open_engine(settings, read_only=True)
        try:
            return engine.query(sql, list(params))
        finally:
            engine.close()
    except Exception as error:  # noqa: BLE001 - every engine failure is reported the same way
        raise EngineUnavailable(
            f"Could not read the streaming views from {where} right now "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
            "If the Kafka consumer is writing, try again in a moment."
        ) from error


def customer_attributes(settings: Settings, customer_id: str) -> dict | None:
    """The customer's row of customers_t, or None when the customer is unknown."""
    rows = query_engine(settings, "SELECT * FROM customers_t WHERE customer_id = $1", [customer_id])
    return None if rows.empty else rows.iloc[0].to_dict()


def purchase_history(
    settings: Settings, customer_id: str, before: date | None, limit: int = HISTORY_LIMIT
) -> pd.DataFrame:
    """Purchases before the test week (what the model saw), newest first."""
    return query_engine(
        settings,
        f"SELECT t_dat, article_id, units, {ARTICLE_COLUMNS} FROM joined_transactions_t "
        "WHERE customer_id = $1 AND t_dat < $2 "
        f"ORDER BY t_dat DESC, article_id LIMIT {int(limit)}",
        [customer_id, before or date.max],
    )


# --- the recommendation service (recsys.serve) ----------------------------------------------

SERVICE_TIMEOUT_S = 5.0


def from_service(settings: Settings, path: str) -> dict:
    """GET a JSON answer of the service at SERVE_HOST:SERVE_PORT."""
    import urllib.error
    import urllib.request

    url = f"{settings.service_url}{path}"
    try:
        with urllib.request.urlopen(url, timeout=SERVICE_TIMEOUT_S) as response:
            return json.loads(response.read())
    except (OSError, ValueError) as error:
        raise ServiceUnavailable(
            f"The recommendation service does not answer at {settings.service_url} ({error}). "
            "Start it with `make serve`, or `make live` for a replay of the test week."
        ) from error


def live_recommendations(
    settings: Settings, run: RunData, customer_id: str, k: int = TOP_K
) -> tuple[dict, list[Card]]:
    """The service's answer now (customer_id, as_of, run_id) and its items as cards, a
    hit marked where the customer bought the article in the test week."""
    body = from_service(settings, f"/recommendations/{customer_id}?k={int(k)}")
    bought = bought_in_test_week(run, customer_id)
    cards = []
    for rank, item in enumerate(body.pop("items"), start=1):
        hit = item["article_id"] in bought
        caption = (
            f"{'BOUGHT in test week · ' if hit else ''}live #{rank} · {item['source']} · "
            f"{score_text(item['source'], item['score'])} · "
            f"{item['prod_name'] or 'unknown article'} ({item['article_id']})"
        )
        image = item["image_url"] or placeholder_image()
        cards.append(Card(item["article_id"], image, caption, hit))
    return body, cards


def live_history(settings: Settings, customer_id: str) -> tuple[dict, list[Card]]:
    """The customer's latest purchases as the service reads them from the views now."""
    body = from_service(settings, f"/customers/{customer_id}/history")
    cards = [
        Card(
            item["article_id"],
            item["image_url"] or placeholder_image(),
            f"{item['t_dat']} · {item['prod_name'] or 'unknown article'} ({item['article_id']})",
        )
        for item in body.pop("items")
    ]
    return body, cards


def live_purchases(settings: Settings, customer_id: str) -> pd.DataFrame:
    """The customer's latest distinct purchases as the streaming views hold them right now."""
    return query_engine(
        settings,
        f"SELECT r.last_t_dat AS t_dat, r.article_id, r.units, {ARTICLE_COLUMNS} "
        "FROM customer_recent_articles_t AS r "
        "LEFT JOIN articles_metadata_t AS a ON a.article_id = r.article_id "
        "WHERE r.customer_id = $1 ORDER BY r.last_t_dat DESC, r.article_id",
        [customer_id],
    )
