"""Customers in batches: their query embeddings as of a day, written to and read from Parquet.

1.37 M customers x 64 floats, or their 100 best articles each, are too big to pass
between flow steps as artifacts (Metaflow pickles each one) and needless to hold at
once. So query embeddings are written to Parquet files (customer_id, embedding) batch
by batch, and evaluation and prediction read them back batch by batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.progress import Progress
from recsys.train import towers
from recsys.train.features import CUSTOMER_COLUMNS, FittedFeatures, prepare_customers
from recsys.train.recent_articles import (
    ALL_CUSTOMERS,
    RECENT_TEXT,
    CustomerSlice,
    as_of_sql,
    customer_slices,
)

CUSTOMER_BATCH_ROWS = 100_000


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


def read_embeddings(path: Path, id_column: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 vectors) of a whole embeddings file (`embedding_table`'s layout)."""
    table = pq.read_table(path)
    vectors = table.column("embedding").combine_chunks()
    flat = np.asarray(vectors.flatten().to_numpy(zero_copy_only=False), dtype="float32")
    ids = table.column(id_column).to_numpy(zero_copy_only=False).astype(object)
    return ids, flat.reshape(-1, vectors.type.list_size)


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
