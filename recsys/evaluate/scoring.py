"""Scoring one week: every registered method, and what is served, on the week's buyers.

Every list is made from everything before the week's start, as the competition's
protocol makes them: the popular list, the repurchase window and the candidates from the
engine, the model's from query embeddings made as of the start (`recsys.train.embed`).
Customers go in batches, so the 100 best articles of a million customers never sit in
memory at once.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from recsys.evaluate.metrics import Scoreboard
from recsys.strategy.inputs import RANKING_DEPTH, CandidateRule, Candidates, Day, History
from recsys.strategy.methods import METHODS, names
from recsys.strategy.ranker import RankerModel
from recsys.strategy.served import SERVED, Served
from recsys.train.embed import CUSTOMER_BATCH_ROWS, read_query_embeddings


def customer_batches(
    queries: Path, history: History, known: pd.Index, batch_rows: int = CUSTOMER_BATCH_ROWS
):
    """The customers of a query-embedding file as `Customers` batches."""
    for ids, vectors in read_query_embeddings(queries, batch_rows):
        yield history.customers(ids, pd.Index(ids).isin(known), vectors)


def score_week(
    engine,
    start: date,
    queries: Path,
    catalogue: Candidates,
    actuals: pd.DataFrame,
    known: pd.Index,
    rule: CandidateRule,
    served: Served | None = None,
    methods: tuple[str, ...] = tuple(METHODS),
    batch_rows: int = CUSTOMER_BATCH_ROWS,
    rankers: dict[str, RankerModel] | None = None,
) -> Scoreboard:
    """`methods`' per-customer metrics on the week from `start`, with `served`'s too
    (under SERVED) when given. `queries` holds the week's buyers embedded as of `start`;
    `catalogue` the articles' embeddings as of `start`, of which the model ranks those
    `rule` keeps; `rankers` the fitted rankers the ranker methods rank with."""
    day = Day.read(engine, start, catalogue, rule, rankers=rankers)
    history = History.read(engine, start)
    board = Scoreboard(len(catalogue), known, set(actuals["article_id"]))
    for customers in customer_batches(queries, history, known, batch_rows):
        bought = actuals[actuals["customer_id"].isin(customers.ids)]
        ranked = {name: METHODS[name] for name in methods}
        if served is not None:
            ranked[SERVED] = served
        for name, method in ranked.items():
            lists = method.rank(customers, day, RANKING_DEPTH)
            board.add(name, lists.to_frame(customers.ids), bought)
    return board


def compared_with_baselines(board: Scoreboard) -> pd.DataFrame:
    """Paired differences of every model method and of what is served, minus every
    method without the model (the baselines)."""
    return board.differences([*names(uses_model=True), SERVED], names(uses_model=False))
