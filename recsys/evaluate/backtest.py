"""Rolling-origin backtests: the chosen configuration, refitted for each of the last N weeks.

One test week is one sample of customers and of a week's fashion: a difference of 0.003
MAP@12 between two methods can be noise. For each of the last N weeks (the test week
last), the configuration validation chose is trained again on everything before that
week's start (within the profile's training window), every list is made as of that
start, and every method is scored on that week's buyers exactly as the test week is
(`scoring.score_week`). The result: per-week figures, the figures pooled over every
(week, customer) pair, each with a 95% bootstrap interval over customers, and the paired
differences of each model method minus each baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from recsys.evaluate import scoring
from recsys.evaluate.metrics import Scoreboard
from recsys.strategy.inputs import CandidateRule, week_purchases
from recsys.strategy.served import Served
from recsys.train import embed, pipeline, towers

WEEK = timedelta(days=7)
POOLED = "pooled"  # the `week` of the figures over every backtest week


@dataclass(frozen=True)
class Setup:
    """What validation chose and how the flow cut the training rows: reused every week."""

    params: towers.HyperParameters
    served: Served
    rows: pipeline.RowSettings
    train_weeks: int  # 0: every week before the origin
    candidates: CandidateRule
    ranker_weeks: int  # the ranker's training weeks (then its validation week)


def week_starts(test_start: date, weeks: int) -> list[date]:
    """The first days of the last `weeks` weeks, oldest first; the test week is the last."""
    return [test_start - w * WEEK for w in reversed(range(weeks))]


def run(
    engine, setup: Setup, starts: Sequence[date], articles: pd.DataFrame, work: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each week refitted and scored; returns (metrics, differences), each with a `week`
    column: the week's first day, or POOLED for every week together.

    The engine's training_settings are moved to each origin in turn: the caller puts
    them back.
    """
    boards = {}
    for number, start in enumerate(starts, start=1):
        print(f"backtest week {number} of {len(starts)}: {start} .. {start + WEEK - timedelta(1)}")
        boards[start.isoformat()] = score_week(engine, setup, start, articles, work / str(start))
    boards[POOLED] = Scoreboard.pooled(boards)
    metrics = pd.concat(
        [board.metrics().assign(week=week) for week, board in boards.items()], ignore_index=True
    )
    differences = pd.concat(
        [
            scoring.compared_with_baselines(board).assign(week=week)
            for week, board in boards.items()
        ],
        ignore_index=True,
    )
    return _week_first(metrics), _week_first(differences)


def score_week(engine, setup: Setup, start: date, articles: pd.DataFrame, work: Path) -> Scoreboard:
    """Train the chosen configuration (the model, then the ranker) on the rows before
    `start` and score the week."""
    since = start - setup.train_weeks * WEEK if setup.train_weeks else None
    trained = pipeline.train_as_of(
        engine, start, since, setup.rows, setup.params, articles, setup.ranker_weeks,
        setup.candidates, work,
    )  # fmt: skip
    actuals = week_purchases(engine, start, start + WEEK)
    queries = work / "queries.parquet"
    buyers = actuals["customer_id"].unique()
    encoder = trained.model.query_encoder
    embed.write_query_embeddings(engine, trained.features, encoder, start, queries, buyers)
    return scoring.score_week(
        engine,
        start,
        queries,
        trained.catalogue,
        actuals,
        trained.features.known_customers,
        setup.candidates,
        setup.served,
        rankers=trained.ranker_models,
    )


def _week_first(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["week", *[c for c in frame.columns if c != "week"]]]
