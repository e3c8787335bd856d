"""Customers in batches: their query embeddings, and every method's ranking for them.

1.37 M customers x 64 floats, or their 100 best articles each, are too big to pass
between flow steps as artifacts (Metaflow pickles each one) and needless to hold at
once. So query embeddings are written to Parquet files (customer_id, embedding) batch
by batch, and evaluation and prediction read them back batch by batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys import baselines, towers
from recsys.evaluation import Scoreboard
from recsys.features import CUSTOMER_COLUMNS, FittedFeatures, prepare_customers
from recsys.progress import Progress
from recsys.recent_articles import (
    ALL_CUSTOMERS,
    RECENT_TEXT,
    CustomerSlice,
    as_of_sql,
    customer_slices,
)

CUSTOMER_BATCH_ROWS = 100_000
MODEL_METHODS = ("two_tower", "repurchase+two_tower")  # what warm customers may be served
RANKING_DEPTH = 100  # recall@100 needs 100 candidates from every ranking


def write_query_embeddings(
    engine,
    features: FittedFeatures,
    encoder,
    when: date,
    path: Path,
    ids: np.ndarray | None = None,
) -> int:
    """Embed the customers of customers_t (or only `ids`) as of `when` into `path`: their
    profile and the articles they bought before `when` (`recent_articles.as_of_sql`).

    A wanted id missing from customers_t (a buyer whose profile never arrived) is
    embedded with empty attributes, as the views' LEFT JOINs would give it.
    Returns the number of customers written.
    """
    wanted = None if ids is None else list(pd.unique(np.asarray(ids, dtype=object)))
    total = len(wanted) if wanted is not None else engine.count("customers_t")
    progress = Progress(f"embed customers as of {when}", total, unit="customers")
    with _EmbeddingWriter(path) as writer:
        for customers in customer_slices():
            query = customers_as_of(when, customers, wanted is not None)
            params = [wanted] if wanted is not None else None
            for batch in engine.record_batches(query, params, batch_rows=CUSTOMER_BATCH_ROWS):
                frame = batch.to_pandas()
                writer.write(frame["customer_id"], _embed(features, encoder, frame, when))
                progress.advance(len(frame))
    progress.finish()
    return progress.done


def customers_as_of(
    when: date, customers: CustomerSlice = ALL_CUSTOMERS, wanted: bool = False
) -> str:
    """The query tower's inputs as of `when` for a slice of customers: customers_t's
    columns and the recent articles (`as_of_sql`). With `wanted`, only the ids of the
    list parameter $1, in customers_t or not."""
    columns = ", ".join(f'c."{column}"' for column in CUSTOMER_COLUMNS[1:])
    recent = f"LEFT JOIN ({as_of_sql(when, customers)}) AS r ON r.customer_id = w.customer_id"
    ids = "(SELECT UNNEST(CAST($1 AS VARCHAR[])) AS customer_id)" if wanted else "customers_t"
    return (
        f"SELECT w.customer_id, {columns}, r.{RECENT_TEXT} FROM {ids} AS w "
        f"LEFT JOIN customers_t AS c ON c.customer_id = w.customer_id {recent} "
        f"WHERE {customers.where('w.customer_id')}"
    )


def read_query_embeddings(
    path: Path, batch_rows: int = CUSTOMER_BATCH_ROWS
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(customer ids, float32 embeddings) of `path`, `batch_rows` customers at a time."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        ids = batch.column("customer_id").to_numpy(zero_copy_only=False).astype(object)
        vectors = batch.column("embedding")
        width = vectors.type.list_size
        flat = vectors.flatten().to_numpy(zero_copy_only=False)
        yield ids, np.asarray(flat, dtype="float32").reshape(-1, width)


@dataclass(frozen=True)
class CandidateRule:
    """Which articles the model may recommend as of a day: those bought at least
    `min_purchases` times in the `days` before it (0 days: the whole catalogue).

    Fashion articles stop selling after their season, and an article that sold only once
    last week is often at the end of its life: recsys/profiles.toml gives the measurements.
    """

    days: int
    min_purchases: int = 1

    def describe(self) -> str:
        if not self.days:
            return "the whole catalogue"
        times = "once" if self.min_purchases == 1 else f"{self.min_purchases} times"
        return f"articles bought at least {times} in the last {self.days} days"


WHOLE_CATALOGUE = CandidateRule(days=0)


def candidates(
    engine,
    cutoff: date,
    rule: CandidateRule,
    article_embeddings: np.ndarray,
    article_ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The part of the catalogue the model may recommend as of `cutoff` under `rule`, as
    (embeddings, ids). The whole catalogue when the rule keeps fewer than RANKING_DEPTH."""
    if not rule.days:
        return article_embeddings, article_ids
    sold = baselines.sold_articles(engine, cutoff, rule.days, rule.min_purchases)
    mask = pd.Index(np.asarray(article_ids, dtype=object)).isin(sold)
    if mask.sum() < RANKING_DEPTH:
        return article_embeddings, article_ids
    return article_embeddings[mask], article_ids[mask]


def rankings(
    ids: np.ndarray,
    queries: np.ndarray,
    article_embeddings: np.ndarray,
    article_ids: np.ndarray,
    recent: pd.DataFrame,
    popular: list[str],
    depth: int,
) -> dict[str, pd.DataFrame]:
    """Every method's top-`depth` for these customers: the model (over the articles it
    may recommend), the hybrid, both baselines."""
    model = towers.recommend(queries, article_embeddings, ids, article_ids, depth)
    hybrid = baselines.repurchase_recommendations(ids, recent, model, depth)
    return {
        "two_tower": model,
        "repurchase+two_tower": hybrid.drop(columns="source"),
        **{
            name: baselines.baseline_recommendations(name, ids, recent, popular)
            for name in baselines.BASELINES
        },
    }


def week_purchases(engine, start: date, end: date) -> pd.DataFrame:
    """Every purchase in [start, end) by any customer (warm or cold): what is scored."""
    return engine.query(
        "SELECT DISTINCT customer_id, article_id, t_dat FROM joined_transactions_t "
        "WHERE t_dat >= $1 AND t_dat < $2",
        [start, end],
    )


@dataclass(frozen=True)
class Served:
    """What validation chose to serve: a model method for warm customers (those the model
    was trained on), a baseline for the others."""

    warm_strategy: str
    fallback: str


def score_week(
    engine,
    start: date,
    queries: Path,
    article_embeddings: np.ndarray,
    article_ids: np.ndarray,
    actuals: pd.DataFrame,
    known: pd.Index,
    served: Served | None = None,
    rule: CandidateRule = WHOLE_CATALOGUE,
    batch_rows: int = CUSTOMER_BATCH_ROWS,
    depth: int = RANKING_DEPTH,
) -> Scoreboard:
    """Every method's per-customer metrics on one week, customer batch by batch.

    Every list is made from everything before `start`: the baselines' history and
    popularity from the engine, the model's from the `queries` embedded as of `start`
    and the catalogue's `article_embeddings` as of `start`. With `served`, the served
    lists are scored too (`served` rows). The model recommends among the articles `rule`
    keeps as of `start`.
    """
    popular = baselines.popular_articles(engine, start, depth)
    recent = baselines.recent_purchases(engine, start)
    model_articles = candidates(engine, start, rule, article_embeddings, article_ids)
    board = Scoreboard(len(article_ids), known, set(actuals["article_id"]))
    for ids, vectors in read_query_embeddings(queries, batch_rows):
        ranked = rankings(ids, vectors, *model_articles, recent, popular, depth)
        if served is not None:
            warm, cold = ranked[served.warm_strategy], ranked[served.fallback]
            ranked["served"] = pd.concat(
                [warm[warm["customer_id"].isin(known)], cold[~cold["customer_id"].isin(known)]]
            )
        bought = actuals[actuals["customer_id"].isin(ids)]
        for name, recs in ranked.items():
            board.add(name, recs, bought)
    return board


def _embed(features: FittedFeatures, encoder, frame: pd.DataFrame, when: date) -> np.ndarray:
    if frame.empty:
        return np.zeros((0, 0), dtype="float32")
    encoded = features.customers(prepare_customers(frame.reset_index(drop=True), when))
    return towers.embed(encoder, encoded, features.schema)


class _EmbeddingWriter:
    """Appends (customer_id, embedding) batches to one Parquet file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = None

    def write(self, ids: pd.Series, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        table = embedding_table("customer_id", ids.to_numpy(dtype=object), vectors)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table)

    def __enter__(self) -> _EmbeddingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()


def embedding_table(id_column: str, ids: np.ndarray, vectors: np.ndarray, **extra) -> pa.Table:
    """ids and float32 vectors (n, d) as an Arrow table: id, extra columns, embedding."""
    vectors = np.ascontiguousarray(vectors, dtype="float32")
    flat = pa.array(vectors.reshape(-1))
    return pa.table(
        {
            id_column: pa.array(ids, pa.string()),
            **extra,
            "embedding": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
        }
    )
