"""The training rows as Parquet parts: streamed from the view, prepared, sampled, shuffled.

The full H&M data has 27.7 M training rows; as one pandas frame they do not fit beside
anything else in 24 GB, and as a Metaflow artifact they would be pickled too. So the
rows go from the engine (Arrow batches) straight into Parquet parts of at most
`part_rows` rows, already prepared for the feature workflows (`prepare_interactions`),
and only paths travel between flow steps.

The order of the rows is a seeded hash of each row's key (t_dat, customer_id,
article_id: unique in the view), whatever order the engine streams them in: a run is
reproducible and training sees well-mixed rows (docs/training.md). The hash also
samples (`fraction`) and places each row in the part that covers its hash range, so
part i holds the i-th slice of the hash order and reading the parts in order reads the
rows in hash order: how the work is cut never changes what is trained on.

Training wants a new order every epoch (the in-batch negatives change; on the demo data
one fixed order cost a fifth of the model's MAP@12), so `orders` writes the rows once
per order, each with its own seed: epoch e reads order e.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.progress import Progress
from recsys.train.features import RecentSales, prepare_interactions
from recsys.train.recent_articles import RECENT_TEXT, by_day_sql, customer_slices

SHUFFLE_SEED = 42
READ_BATCH_ROWS = 250_000
ORDER_COLUMN = "_order"
TRAINING_COLUMNS = (
    "t_dat, customer_id, article_id, price, age, club_member_status, fashion_news_frequency, "
    '"FN", "Active", postal_code, product_type_no, product_group_name, graphical_appearance_no, '
    "colour_group_code, perceived_colour_value_id, department_no, index_code, section_no, "
    "garment_group_no"
)
KEY_COLUMNS = ["t_dat", "customer_id", "article_id"]


@dataclass(frozen=True)
class TrainingParts:
    """What `write_training_parts` wrote: per order, its part files in order; the rows."""

    orders: list[list[Path]]
    rows: int

    def dataset(self, order: int = 0):
        """One order's parts as a `merlin.io.Dataset`, one partition per part file."""
        import merlin.io

        return merlin.io.Dataset([str(p) for p in self.orders[order]], engine="parquet")


def recent_sales(engine, cutoff: date) -> RecentSales:
    """Purchases per article and 7-day window before `cutoff`, counted by the engine.

    Counted on dedup_transactions_t: the purchases of joined_transactions_t without the
    attribute joins, which DuckDB would run over every row (minutes on the full data).
    Every customer's purchases count (how well an article sells is the market's, not
    only the trained customers'), so the same counts can be taken as of any day: the
    validation start for training, the test start for the test week's lists.
    Window w holds the days d with (cutoff - d - 1) // 7 == w, as `RecentSales` expects;
    the result is one row per article and week it sold in, not per purchase.
    """
    day = f"DATE '{cutoff.isoformat()}'"
    counts = engine.query(
        f"SELECT article_id, CAST(FLOOR(({day} - t_dat - 1) / 7.0) AS INT) AS window, "
        f"COUNT(*) AS purchases FROM dedup_transactions_t WHERE t_dat < {day} GROUP BY 1, 2"
    )
    return RecentSales.from_counts(counts, pd.Timestamp(cutoff))


def write_training_parts(
    engine,
    sales: RecentSales,
    out_dir: Path,
    part_rows: int,
    fraction: float = 1.0,
    orders: int = 1,
    since: date | None = None,
) -> TrainingParts:
    """Stream filtered_dataframe_t into prepared, sampled Parquet parts, in `orders` orders,
    each row with the articles its customer bought before its day (`by_day_sql`).

    `since` keeps the rows of that day and later (the engine filters them: the rest of
    the view never leaves it). Two passes over disk, never over memory: rows are
    appended to the part of their hash range as they arrive, then each part is sorted
    by hash on its own. Order o is written under `out_dir/order-o/`; the sample is the
    same in every order.
    """
    since_sql = f"t_dat >= DATE '{since.isoformat()}'" if since else "TRUE"
    total = int(
        engine.query(f"SELECT COUNT(*) AS n FROM filtered_dataframe_t WHERE {since_sql}").iloc[0, 0]
    )
    bits = max(0, math.ceil(math.log2(max(1.0, total * fraction / part_rows))))
    writers: list[dict[int, pq.ParquetWriter]] = [{} for _ in range(orders)]
    scratch = [out_dir / f"order-{order}" / "unsorted" for order in range(orders)]
    progress = Progress("prepare training rows", total)
    kept = 0
    for batch in _training_rows(engine, since, since_sql):
        frame = batch.to_pandas(date_as_object=False)
        keys = shuffle_keys(frame)
        sampled = keys < np.uint64(int(fraction * 2**64)) if fraction < 1 else keys == keys
        frame = frame[sampled].reset_index(drop=True)
        table = prepare_interactions(frame, sales)
        for order in range(orders):
            order_keys = keys[sampled] if order == 0 else shuffle_keys(frame, SHUFFLE_SEED + order)
            ranges = order_keys >> np.uint64(64 - bits) if bits else None
            ordered = table.append_column(ORDER_COLUMN, pa.array(order_keys))
            _append_by_range(ordered, ranges, writers[order], scratch[order])
        kept += table.num_rows
        progress.advance(batch.num_rows)
    progress.finish()
    paths = []
    for order, order_writers in enumerate(writers):
        for writer in order_writers.values():
            writer.close()
        unsorted = scratch[order]
        paths.append([_sorted_part(unsorted / _part_name(i)) for i in sorted(order_writers)])
        shutil.rmtree(unsorted, ignore_errors=True)
    return TrainingParts(paths, kept)


def _training_rows(engine, since: date | None, since_sql: str) -> Iterator[pa.RecordBatch]:
    """filtered_dataframe_t's rows from `since` on, each with its customer's recent articles
    (`by_day_sql`), one slice of customers at a time (`customer_slices`: the look-back
    over every customer at once does not fit DuckDB's memory on the full data)."""
    for customers in customer_slices():
        recent = f"LEFT JOIN ({by_day_sql(since, customers)}) AS recent USING (customer_id, t_dat)"
        yield from engine.record_batches(
            f"SELECT {TRAINING_COLUMNS}, {RECENT_TEXT} FROM filtered_dataframe_t {recent} "
            f"WHERE {since_sql} AND {customers.where()}",
            batch_rows=READ_BATCH_ROWS,
        )


def shuffle_keys(frame: pd.DataFrame, seed: int = SHUFFLE_SEED) -> np.ndarray:
    """Each row's seeded 64-bit hash of (t_dat, customer_id, article_id): its place in the order."""
    keys = frame[KEY_COLUMNS].copy()
    keys["t_dat"] = pd.to_datetime(keys["t_dat"])
    keys["customer_id"] = keys["customer_id"].astype(str)
    keys["article_id"] = keys["article_id"].astype(str)
    return pd.util.hash_pandas_object(keys, index=False, hash_key=f"{seed:016d}").to_numpy()


def _append_by_range(
    table: pa.Table,
    ranges: np.ndarray | None,
    writers: dict[int, pq.ParquetWriter],
    scratch: Path,
) -> None:
    """Append each row of `table` to the unsorted file of its hash range."""
    if ranges is None:
        ranges = np.zeros(table.num_rows, dtype="uint64")
    order = np.argsort(ranges, kind="stable")
    table, ranges = table.take(pa.array(order)), ranges[order]
    values, starts = np.unique(ranges, return_index=True)
    ends = [*starts[1:], len(ranges)]
    for value, start, end in zip(values.tolist(), starts.tolist(), ends, strict=True):
        if value not in writers:
            scratch.mkdir(parents=True, exist_ok=True)
            writers[value] = pq.ParquetWriter(scratch / _part_name(value), table.schema)
        writers[value].write_table(table.slice(start, end - start))


def _sorted_part(unsorted: Path) -> Path:
    """One hash range's rows sorted by hash, the order column dropped, beside its folder."""
    table = pq.read_table(unsorted)
    table = table.sort_by(ORDER_COLUMN).drop([ORDER_COLUMN])
    path = unsorted.parent.parent / unsorted.name
    pq.write_table(table, path)
    return path


def _part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"
