"""One customer's answer: the run's served strategy (`recsys.strategy`), applied to what the
online state holds now.

The customer is a batch of one for the same `Served.rank` the flow's predictions and
scores come from (`OnlineState.customers` builds it): known to the model, the method
chosen for warm customers; otherwise the one chosen for the others (a customer nobody
has seen has no purchases, so the repurchase baseline gives them the popular list).
Their repurchase window ends with the day after the newest data; the popular list and
the candidates and what the rankers read of the articles are the views' shared reads
(`Views.shared`). Each item says where it came from (`model`, `repurchase`, `popular`, or
a ranker's source); the model's rows and a ranker's have a score.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from recsys.serve.run import ServedRun
from recsys.serve.views import Views
from recsys.strategy.lists import Lists
from recsys.strategy.methods import METHODS


@dataclass(frozen=True)
class Item:
    article_id: str
    score: float | None
    source: str  # "model" | "repurchase" | "popular" | another candidate source


@dataclass(frozen=True)
class Answer:
    customer_id: str
    as_of: date | None  # the latest purchase day this answer reflects
    items: list[Item]


class Recommender:
    def __init__(self, run: ServedRun, views: Views) -> None:
        self.run, self.views = run, views
        self.served = run.info.served

    def recommend(self, customer_id: str, k: int) -> Answer:
        state, shared = self.views.state, self.views.shared
        row = state.row(customer_id)
        days = [d for d in (shared.newest_day, state.latest_day(row)) if d is not None]
        newest = max(days) if days else None  # popularity and the window count from it
        today = (newest or date.today()) + timedelta(days=1)
        queries = state.known(row) and METHODS[self.served.warm].uses_model
        customers = state.customers([customer_id], today, queries)
        lists = self.served.rank(customers, shared.day, k)
        return Answer(customer_id, newest, items(lists))


def items(lists: Lists) -> list[Item]:
    """The first (only) customer's list as items."""
    return [
        Item(article, None if np.isnan(score) else float(score), source)
        for article, score, source in zip(
            lists.articles[0], lists.scores[0], lists.sources[0], strict=True
        )
        if article is not None
    ]
