"""Training the learned rankers (LightGBM LambdaRank) over the candidate sources' union:
both of `strategy.ranker.VARIANTS`, with and without the two-tower, from one pass over
the weeks.

Examples: for each training week, the week's buyers as of its first day, each with the
union of the sources' candidates (`strategy.features.pool`) and their features
(`strategy.features.matrix`, the very rows the ranker later scores), labelled 1 when the
customer bought the article in that week. The weeks are the `weeks` before the
validation week; the validation week's rows stop the boosting when its MAP@12 stops
improving (on buyers with a bought article among their candidates: the others hold
nothing to order).

Why LambdaRank: it optimises the order within each customer's list, which is what MAP@12
scores; the H&M competition's leading solutions ranked with it (issue 23).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.progress import Progress
from recsys.strategy import features
from recsys.strategy.inputs import CandidateRule, Candidates, Customers, Day, History
from recsys.strategy.lists import Lists
from recsys.strategy.methods import candidate_lists
from recsys.strategy.ranker import CHUNK, POOL_DEPTH, VARIANTS, RankerModel, tower_rows
from recsys.train.embed import CUSTOMER_BATCH_ROWS, read_query_embeddings

WEEK = timedelta(days=7)
PARAMS = {
    "objective": "lambdarank",
    "metric": "map",
    "eval_at": [12],
    "learning_rate": 0.05,
    "num_leaves": 63,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "lambdarank_truncation_level": 20,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
    "seed": 7,
    "verbosity": -1,
}
ROUNDS = 1_000
EARLY_STOPPING_ROUNDS = 50
# The buyers of a week the rankers learn from, at most: the full data's weeks have about
# 136,000, whose candidates' feature rows would take most of the time budget to make and
# to learn from. Customer ids are hashes, so the first by id are a random sample.
BUYERS_PER_WEEK = 30_000


@dataclass(frozen=True)
class Week:
    """One week of examples in `folder` (`recsys.train.pipeline.embed_ranker_weeks` writes
    it): its buyers' query embeddings and the catalogue's embeddings as of its first day,
    and its purchases (the labels)."""

    start: date
    folder: Path

    @property
    def queries(self) -> Path:
        return self.folder / f"queries-{self.start}.parquet"

    @property
    def vectors(self) -> Path:
        return self.folder / f"articles-{self.start}.npy"

    @property
    def purchases(self) -> Path:
        return self.folder / f"purchases-{self.start}.parquet"

    def catalogue(self, article_ids: np.ndarray) -> Candidates:
        return Candidates(np.load(self.vectors), article_ids)


def sampled_buyers(purchases: pd.DataFrame) -> np.ndarray:
    """The week's buyers the rankers learn from: the first BUYERS_PER_WEEK by id."""
    return np.sort(purchases["customer_id"].unique())[:BUYERS_PER_WEEK]


def week_starts(day: date, weeks: int) -> list[date]:
    """The ranker's weeks as of `day`: the `weeks` training weeks and the validation week
    (the last) before `day`, oldest first."""
    return [day - w * WEEK for w in range(weeks + 1, 0, -1)]


@dataclass
class Examples:
    """Feature rows of one or more weeks, grouped by customer (LightGBM's query groups)."""

    matrix: np.ndarray  # (rows, FEATURES) float32
    labels: np.ndarray  # (rows,) float32: 1 bought in the week
    groups: list[int] = field(default_factory=list)  # rows per customer, in order
    buyers: int = 0  # the week's buyers, with or without a bought candidate
    bought: int = 0  # distinct (customer, article) purchases of the week
    found: int = 0  # ... among the candidates

    @classmethod
    def joined(cls, parts: Sequence[Examples]) -> Examples:
        return cls(
            np.concatenate([p.matrix for p in parts]),
            np.concatenate([p.labels for p in parts]),
            [g for p in parts for g in p.groups],
            sum(p.buyers for p in parts),
            sum(p.bought for p in parts),
            sum(p.found for p in parts),
        )


def examples(
    engine,
    week: Week,
    article_ids: np.ndarray,
    known: pd.Index,
    rule: CandidateRule,
    batch_rows: int = CUSTOMER_BATCH_ROWS,
) -> dict[str, Examples]:
    """Per ranker of VARIANTS, the week's buyers with a bought article among its
    candidates, as feature rows."""
    day = Day.read(engine, week.start, week.catalogue(article_ids), rule)
    history = History.read(engine, week.start)
    bought = pd.read_parquet(week.purchases, columns=["customer_id", "article_id"])
    bought = bought.drop_duplicates()
    parts: dict[str, list[Examples]] = {name: [] for name in VARIANTS}
    for ids, vectors in read_query_embeddings(week.queries, batch_rows):
        batch = history.customers(ids, pd.Index(ids).isin(known), vectors)
        for _, customers in batch.chunks(CHUNK):
            lists = candidate_lists(customers, day, with_tower=True)
            for name, with_tower in VARIANTS.items():
                mine = {s: v for s, v in lists.items() if with_tower or s != "two_tower"}
                parts[name].append(_examples(customers, day, mine, bought, name))
    return {name: Examples.joined(found) for name, found in parts.items()}


def _examples(
    customers: Customers, day: Day, lists: dict[str, Lists], bought: pd.DataFrame, name: str
) -> Examples:
    """The feature rows of the customers with a bought article among the candidates."""
    candidates = features.pool(lists, POOL_DEPTH)
    labels = _labels(candidates, customers.ids, bought)
    keep = labels.any(axis=1)
    present = candidates.present & keep[:, None]
    matrix = features.matrix(customers, day, candidates, tower_rows(customers, name))
    return Examples(
        matrix[present[candidates.present]],
        labels[present].astype("float32"),
        present.sum(axis=1)[keep].tolist(),
        len(customers),
        int(bought["customer_id"].isin(customers.ids).sum()),
        int(labels.sum()),
    )


def _labels(candidates: features.Pool, ids: np.ndarray, bought: pd.DataFrame) -> np.ndarray:
    """(n, depth) bool: the customer bought the candidate in the week."""
    articles = candidates.lists.articles
    rows, columns = np.nonzero(candidates.present)
    pairs = pd.MultiIndex.from_arrays([ids[rows], articles[rows, columns]])
    hit = pairs.isin(pd.MultiIndex.from_frame(bought))
    labels = np.zeros(articles.shape, dtype=bool)
    labels[rows[hit], columns[hit]] = True
    return labels


@dataclass
class Fitted:
    """The ranker and what its training saw."""

    model: RankerModel
    best_iteration: int
    validation_map: list[float]  # MAP@12 on the validation rows after each round
    train_rows: int
    seconds: float
    recall: dict[str, float]  # share of each week's purchases among the candidates

    def facts(self) -> dict[str, float]:
        """What the run records of the training (run_info.json's `ranker`)."""
        return {
            "best_iteration": self.best_iteration,
            "validation_map@12": max(self.validation_map),
            "train_rows": self.train_rows,
            "seconds": round(self.seconds, 1),
            **{f"candidate_recall_{k}": v for k, v in self.recall.items()},
        }


def described(facts: dict) -> str:
    """A ranker's training facts (`Fitted.facts`) in one line."""
    return (
        f"best round {facts['best_iteration']}, validation MAP@12 "
        f"{facts['validation_map@12']:.4f}, {facts['train_rows']:,} training rows in "
        f"{facts['seconds']} s, candidate recall {facts['candidate_recall_train']:.3f} "
        f"(training weeks) / {facts['candidate_recall_validation']:.3f} (validation)"
    )


def fit(train: Examples, validation: Examples, params: dict | None = None) -> Fitted:
    """LambdaRank (or `params`' objective) on `train`, stopped when `validation`'s MAP@12
    has not improved for EARLY_STOPPING_ROUNDS rounds; the best round's model."""
    import lightgbm

    if not train.groups or not validation.groups:
        raise ValueError("the ranker has no training or validation buyer with a bought candidate")
    started = time.monotonic()
    names = list(features.FEATURES)
    train_set = lightgbm.Dataset(train.matrix, train.labels, group=train.groups,
                                 feature_name=names, free_raw_data=True)  # fmt: skip
    valid_set = lightgbm.Dataset(validation.matrix, validation.labels, group=validation.groups,
                                 reference=train_set, feature_name=names)  # fmt: skip
    history: dict = {}
    callbacks = [
        lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False),
        lightgbm.record_evaluation(history),
    ]
    booster = lightgbm.train(params or PARAMS, train_set, ROUNDS, valid_sets=[valid_set],
                             valid_names=["validation"], callbacks=callbacks)  # fmt: skip
    best = booster.model_to_string(num_iteration=booster.best_iteration)
    booster = lightgbm.Booster(model_str=best)
    return Fitted(
        RankerModel(booster),
        booster.current_iteration(),
        list(history["validation"]["map@12"]),
        len(train.labels),
        time.monotonic() - started,
        {"train": train.found / max(train.bought, 1),
         "validation": validation.found / max(validation.bought, 1)},
    )  # fmt: skip


def train(
    engine,
    weeks: Sequence[Week],
    article_ids: np.ndarray,
    known: pd.Index,
    rule: CandidateRule,
) -> dict[str, Fitted]:
    """Examples of every week, then each ranker of VARIANTS fitted on all weeks but the
    last, stopped on the last."""
    progress = Progress("ranker examples", len(weeks), unit="weeks")
    parts = []
    for week in weeks:
        parts.append(examples(engine, week, article_ids, known, rule))
        progress.advance(1)
    progress.finish()
    return {
        name: fit(Examples.joined([p[name] for p in parts[:-1]]), parts[-1][name])
        for name in VARIANTS
    }
