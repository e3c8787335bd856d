"""The exported flow run the service answers with: its folder (`recsys.run_folder`).

What it takes from the run: the query tower (a Keras SavedModel), the customer
workflow's category tables, the article embeddings, the learned rankers, the catalogue's
names and images, and from `run_info.json` what the flow chose to serve on the validation
week and its candidate rule.

Why not NVTabular and Keras per request: `workflow.transform` of one row costs about
30 ms and `model.predict` hundreds (docs/serving.md). The customer workflow is only
Categorify lookups, so `CustomerEncoder` reads the same category tables into dicts (a test
checks it against `workflow.transform`), and the tower runs as a `tf.function` with a
fixed input signature, traced once at start.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.run_folder import (
    ARTICLE_EMBEDDINGS,
    ARTICLES,
    CUSTOMER_WORKFLOW,
    QUERY_TOWER,
    RANKERS,
    RunFolder,
    RunInfo,
    RunMissing,
)
from recsys.strategy import ranker
from recsys.strategy.inputs import Candidates
from recsys.strategy.ranker import RankerModel
from recsys.train.embed import read_embeddings
from recsys.train.features import CUSTOMER_COLUMNS, prepare_customers
from recsys.train.recent_articles import RECENT_ARTICLES, RECENT_TEXT, as_text

NULL_INDEX, OOV_INDEX = 1, 2  # Categorify: 0 padding, 1 null, 2 out-of-vocabulary
ENCODED_CACHE = 100_000  # customers whose encoded profile is kept (a few hundred bytes each)


@dataclass(frozen=True)
class ServedRun:
    """Everything a request needs from the run, loaded once."""

    folder: RunFolder
    info: RunInfo
    encoder: CustomerEncoder
    tower: QueryTower
    catalogue: Candidates  # every article's embedding
    articles: dict[str, dict]  # article_id -> {"prod_name", "image_path"}
    rankers: dict[str, RankerModel]

    @property
    def run_id(self) -> str:
        return self.info.run_id

    def knows(self, customer_id: str) -> bool:
        """Whether the model has an embedding row for the customer (a warm customer)."""
        return customer_id in self.encoder.vocabulary["customer_id"]

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


def _plain(value: object) -> object:
    """A views value as a hashable plain value; missing (None, NaN, NA) as None."""
    return None if value is None or pd.isna(value) else value


def load_run(folder: RunFolder) -> ServedRun:
    """Load a run's folder; a missing piece raises RunMissing naming it."""
    folder.require(QUERY_TOWER, CUSTOMER_WORKFLOW, ARTICLE_EMBEDDINGS, ARTICLES, RANKERS)
    encoder = CustomerEncoder(folder.file(CUSTOMER_WORKFLOW))
    articles = pd.read_parquet(
        folder.file(ARTICLES), columns=["article_id", "prod_name", "image_path"]
    )
    ids, vectors = read_embeddings(folder.file(ARTICLE_EMBEDDINGS), "article_id")
    return ServedRun(
        folder=folder,
        info=folder.info(),
        encoder=encoder,
        tower=QueryTower(folder.file(QUERY_TOWER), encoder.columns),
        catalogue=Candidates(vectors, ids),
        articles=articles.drop_duplicates("article_id").set_index("article_id").to_dict("index"),
        rankers=ranker.load(folder.file(RANKERS)),
    )
