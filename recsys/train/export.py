"""Writing a run's folder (`recsys.run_folder`): the predictions for every customer, then the
tables, embeddings, towers and `run_info.json` that the app, the service and users read."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys import run_folder as rf
from recsys.progress import Progress
from recsys.strategy import ranker
from recsys.strategy.inputs import Candidates, Day, History
from recsys.strategy.served import Served
from recsys.train.embed import embedding_table, read_query_embeddings
from recsys.train.towers import write_tower_weights


def write_predictions(
    folder: rf.RunFolder,
    queries: Path,
    day: Day,
    history: History,
    known: pd.Index,
    served: Served,
    top_k: int,
) -> dict[str, int]:
    """Every customer of `queries` ranked as `served` says, batch by batch, into
    PREDICTIONS, with their query embeddings into CUSTOMER_EMBEDDINGS. Returns how many
    customers each of the served methods ranked."""
    writers: dict[str, pq.ParquetWriter] = {}
    counts = {served.warm: 0, served.cold: 0}
    progress = Progress("predict", None, unit="customers")
    try:
        for ids, vectors in read_query_embeddings(queries):
            warm = pd.Index(ids).isin(known)  # hashed: np.isin compares objects pairwise
            customers = history.customers(ids, warm, vectors)
            frame = served.rank(customers, day, top_k).to_frame(ids)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            _append(writers, folder.file(rf.PREDICTIONS), table)
            embeddings = embedding_table("customer_id", ids, vectors, warm=pa.array(warm))
            _append(writers, folder.file(rf.CUSTOMER_EMBEDDINGS), embeddings)
            counts[served.warm] += int(warm.sum())
            counts[served.cold] += int((~warm).sum())
            progress.advance(len(ids))
    finally:
        for writer in writers.values():
            writer.close()
    progress.finish()
    return counts


def _append(writers: dict[str, pq.ParquetWriter], path: Path, table: pa.Table) -> None:
    """Append `table` to the Parquet file at `path`, opening its writer on first use."""
    if str(path) not in writers:
        writers[str(path)] = pq.ParquetWriter(path, table.schema)
    writers[str(path)].write_table(table)


@dataclass(frozen=True)
class Evaluation:
    """The tables the evaluation made: test week, and the backtest when one ran."""

    metrics: pd.DataFrame
    differences: pd.DataFrame
    backtest_metrics: pd.DataFrame | None = None
    backtest_differences: pd.DataFrame | None = None


def write_run_folder(
    folder: rf.RunFolder,
    info: rf.RunInfo,
    evaluation: Evaluation,
    test_actuals: pd.DataFrame,
    articles: pd.DataFrame,
    catalogue: Candidates,
    model_dir: Path,
    grid_results: list[dict],
) -> None:
    """Everything but the predictions; `run_info.json` last (it marks the folder complete).
    `model_dir` holds the chosen branch's query tower, `work/workflows` the features and
    `work/rankers` the rankers."""
    import faiss

    tables = {
        rf.METRICS: evaluation.metrics,
        rf.DIFFERENCES: evaluation.differences,
        rf.BACKTEST: evaluation.backtest_metrics,
        rf.BACKTEST_DIFFERENCES: evaluation.backtest_differences,
        rf.TEST_ACTUALS: test_actuals,
        rf.ARTICLES: articles,
        rf.GRID: pd.DataFrame(grid_results).drop(columns="history"),
        rf.RANKER_IMPORTANCE: ranker.importance(ranker.load(folder.file(rf.WORK) / rf.RANKERS)),
    }
    for name, table in tables.items():
        if table is not None:
            table.to_parquet(folder.file(name), index=False)
    pq.write_table(
        embedding_table("article_id", catalogue.article_ids, catalogue.vectors),
        folder.file(rf.ARTICLE_EMBEDDINGS),
    )
    index = faiss.IndexFlatIP(catalogue.vectors.shape[1])
    index.add(np.ascontiguousarray(catalogue.vectors))
    faiss.write_index(index, str(folder.file(rf.ARTICLE_INDEX)))
    shutil.copytree(folder.file(rf.WORK) / rf.RANKERS, folder.file(rf.RANKERS), dirs_exist_ok=True)
    shutil.copytree(model_dir / rf.QUERY_TOWER, folder.file(rf.QUERY_TOWER), dirs_exist_ok=True)
    shutil.copytree(
        folder.file(rf.WORK) / rf.WORKFLOWS,
        folder.file(rf.WORKFLOWS),
        ignore=shutil.ignore_patterns("fit"),
        dirs_exist_ok=True,
    )
    write_tower_weights(
        folder.file(rf.QUERY_TOWER),
        folder.file(rf.CUSTOMER_WORKFLOW),
        folder.file(rf.QUERY_TOWER_WEIGHTS),
    )
    folder.write_info(info)
