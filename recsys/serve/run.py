"""The exported flow run the service answers with: OUTPUT_DIR/<run id>/ (ARCHITECTURE.md).

What it takes from the export: the query tower (`query_tower/`, a Keras SavedModel), the
customer workflow's category tables (`workflows/customers/`), the article embeddings
(`article_embeddings.parquet`), the catalogue's names and images (`articles.parquet`) and
the strategy the flow chose on the validation week (`run_info.json`: `warm_strategy`
for customers the model knows, `fallback` for the others).

Why not NVTabular and Keras per request: `workflow.transform` of one row costs about
30 ms and `model.predict` hundreds (docs/serving.md). The customer workflow is only
Categorify lookups, so `CustomerEncoder` reads the same category tables into dicts (a test
checks it against `workflow.transform`), and the tower runs as a `tf.function` with a
fixed input signature, traced once at start.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.app.inspector import no_run_message
from recsys.evaluate.scoring import CandidateRule, candidates
from recsys.settings import Settings
from recsys.store.engine import Engine
from recsys.train.features import CUSTOMER_COLUMNS, prepare_customers
from recsys.train.recent_articles import RECENT_ARTICLES, RECENT_TEXT, as_text

RUN_FILES = (
    "run_info.json",  # written last by the flow's export: its presence means complete
    "query_tower",
    "workflows/customers",
    "article_embeddings.parquet",
    "articles.parquet",
)
NULL_INDEX, OOV_INDEX = 1, 2  # Categorify: 0 padding, 1 null, 2 out-of-vocabulary
ENCODED_CACHE = 100_000  # customers whose encoded profile is kept (a few hundred bytes each)


class RunMissing(RuntimeError):
    """No usable exported run: the message says which, and the command that makes one."""


@dataclass(frozen=True)
class ServedRun:
    """Everything a request needs from the run, loaded once."""

    run_id: str
    export_dir: Path
    info: dict
    warm_strategy: str  # "two_tower" or "repurchase+two_tower"
    fallback: str  # "popular" or "repurchase"
    encoder: CustomerEncoder
    tower: QueryTower
    index: ArticleIndex
    catalogue: dict[str, dict]  # article_id -> {"prod_name", "image_path"}
    candidate_rule: CandidateRule  # what the model may recommend, as in the flow

    def knows(self, customer_id: str) -> bool:
        """Whether the model has an embedding row for the customer (a warm customer)."""
        return customer_id in self.encoder.vocabulary["customer_id"]

    def candidates(self, engine: Engine, cutoff: date) -> ArticleIndex:
        """The articles the model may recommend as of `cutoff`, restricted as the flow's
        predict step restricts them (`scoring.candidates` under the run's rule), as an
        index to search."""
        vectors, ids = candidates(
            engine, cutoff, self.candidate_rule, self.index.vectors, self.index.article_ids
        )
        return self.index if len(ids) == len(self.index) else ArticleIndex(vectors, ids)

    def embed(self, customer: dict, recent: list[str], when: date) -> np.ndarray:
        """The customer's query embedding (1, d) as of `when`, from their views row and
        their latest distinct articles, newest first (customer_recent_articles_t's)."""
        values = tuple(_plain(customer.get(column)) for column in CUSTOMER_COLUMNS)
        recent_text = as_text(recent[:RECENT_ARTICLES])
        return self.tower(self.encoder.encode_row((*values, recent_text), when))


class CustomerEncoder:
    """The customer workflow's Categorify, as dict look-ups over its own category tables.

    In `unique.<domain>.parquet` the row index is the encoded value; a value absent
    from it is out-of-vocabulary (2), a missing value null (1), as Categorify encodes.
    A column's domain is its own name, or the group's for jointly encoded columns (the
    recent-article slots share one table).
    """

    def __init__(self, workflow_dir: Path) -> None:
        import nvtabular as nvt

        workflow = nvt.Workflow.load(str(workflow_dir))
        self.columns = tuple(workflow.output_schema.column_names)
        tables: dict[str, dict[str, int]] = {}
        self.vocabulary: dict[str, dict[str, int]] = {}
        for column in self.columns:
            domain = workflow.output_schema[column].int_domain.name or column
            if domain not in tables:
                tables[domain] = _vocabulary(workflow_dir / "categories", domain, column)
            self.vocabulary[column] = tables[domain]

    @functools.lru_cache(maxsize=ENCODED_CACHE)  # noqa: B019 - one encoder per process
    def encode_row(self, values: tuple, when: date) -> dict[str, np.ndarray]:
        """One customer's CUSTOMER_COLUMNS values and RECENT_TEXT as of `when`, encoded.
        Cached by value (pandas' preparation of one row costs milliseconds): a changed
        profile or a new purchase is a new key."""
        names = (*CUSTOMER_COLUMNS, RECENT_TEXT)
        row = pd.DataFrame({c: [v] for c, v in zip(names, values, strict=True)})
        return self.encode(prepare_customers(row, pd.Timestamp(when)))

    def encode(self, prepared: pd.DataFrame) -> dict[str, np.ndarray]:
        """Prepared rows (`prepare_customers`) -> the tower's inputs, int64 (n, 1) each."""
        inputs = {}
        for column in self.columns:
            table = self.vocabulary[column]
            codes = [
                NULL_INDEX if value is None else table.get(str(value), OOV_INDEX)
                for value in prepared[column]
            ]
            inputs[column] = np.asarray(codes, dtype="int64").reshape(-1, 1)
        return inputs


def _vocabulary(categories: Path, domain: str, column: str) -> dict[str, int]:
    """A category table as {value: code}: its row index is the code."""
    path = categories / f"unique.{domain}.parquet"
    if not path.is_file():
        raise RunMissing(
            f"{path} is missing: the query tower's input {column!r} is not a "
            "category this service can encode (a run from another version?)"
        )
    table = pd.read_parquet(path, columns=[domain])[domain].dropna()
    return dict(zip(table.astype(str), table.index, strict=True))


class QueryTower:
    """The exported query tower as a traced function: no Keras `predict` per request.

    Its inputs travel as one (n, columns) matrix, split into the model's named inputs
    inside the function: TensorFlow converts each argument of a call, and one tensor
    instead of one per column took 1.2-1.3 ms per call instead of 2.1-2.8 (12 inputs,
    measured side by side)."""

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        import merlin.models.tf  # noqa: F401 - registers the layers the SavedModel names
        import tensorflow as tf

        model = tf.keras.models.load_model(str(path), compile=False)
        self.columns, self.model = columns, model

        def call(matrix):
            inputs = {c: matrix[:, i : i + 1] for i, c in enumerate(columns)}
            return model(inputs, training=False)

        spec = tf.TensorSpec((None, len(columns)), tf.int64, name="inputs")
        self._call = tf.function(call, input_signature=[spec])
        self(dict.fromkeys(columns, np.zeros((1, 1), dtype="int64")))  # trace once, now

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        matrix = np.hstack([inputs[column] for column in self.columns])
        return np.asarray(self._call(matrix), dtype="float32")


class ArticleIndex:
    """Exact inner-product top-k over article embeddings (faiss IndexFlatIP)."""

    def __init__(self, vectors: np.ndarray, article_ids: np.ndarray) -> None:
        import faiss

        self.vectors = np.ascontiguousarray(vectors, dtype="float32")
        self.article_ids = np.asarray(article_ids).astype(str)
        self.index = faiss.IndexFlatIP(self.vectors.shape[1])
        self.index.add(self.vectors)

    @classmethod
    def read(cls, path: Path) -> ArticleIndex:
        """The run's whole catalogue from `article_embeddings.parquet`."""
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        vectors = table.column("embedding").combine_chunks()
        width = vectors.type.list_size
        flat = np.asarray(vectors.flatten().to_numpy(zero_copy_only=False), dtype="float32")
        ids = table.column("article_id").to_numpy(zero_copy_only=False)
        return cls(flat.reshape(-1, width), ids)

    def __len__(self) -> int:
        return len(self.article_ids)

    def search(self, query: np.ndarray, depth: int) -> list[tuple[str, float]]:
        """The `depth` best articles for one query, best first, with their scores."""
        depth = min(depth, len(self.article_ids))
        scores, rows = self.index.search(np.ascontiguousarray(query, dtype="float32"), depth)
        return [(self.article_ids[r], float(s)) for r, s in zip(rows[0], scores[0], strict=True)]


def _plain(value: object) -> object:
    """A views value as a hashable plain value; missing (None, NaN, NA) as None."""
    return None if value is None or pd.isna(value) else value


def latest_export(settings: Settings) -> Path:
    """The newest complete export under OUTPUT_DIR (by its run_info.json's created time)."""
    infos = sorted(settings.output_dir.glob("*/run_info.json"), key=_created_at, reverse=True)
    if not infos:
        raise RunMissing(no_run_message(settings))
    return infos[0].parent


def _created_at(path: Path) -> str:
    try:
        return str(json.loads(path.read_text()).get("created_at", ""))
    except (OSError, ValueError):
        return ""


def load_run(export_dir: Path) -> ServedRun:
    """Load an export folder; a missing piece raises RunMissing naming it."""
    for name in RUN_FILES:
        if not (export_dir / name).exists():
            raise RunMissing(
                f"{export_dir / name} is missing: not a complete export of the flow "
                "(EXPORT_TO_APP=false, or a run from an older version); make a new run"
            )
    info = json.loads((export_dir / "run_info.json").read_text())
    encoder = CustomerEncoder(export_dir / "workflows" / "customers")
    articles = pd.read_parquet(
        export_dir / "articles.parquet", columns=["article_id", "prod_name", "image_path"]
    )
    return ServedRun(
        run_id=str(info.get("run_id", export_dir.name)),
        export_dir=export_dir,
        info=info,
        warm_strategy=str(info.get("warm_strategy", "two_tower")),
        fallback=str(info.get("fallback", "popular")),
        encoder=encoder,
        tower=QueryTower(export_dir / "query_tower", encoder.columns),
        index=ArticleIndex.read(export_dir / "article_embeddings.parquet"),
        catalogue=articles.drop_duplicates("article_id").set_index("article_id").to_dict("index"),
        candidate_rule=CandidateRule(
            days=int(info.get("candidate_days") or 0),
            min_purchases=int(info.get("candidate_min_purchases") or 1),
        ),
    )
