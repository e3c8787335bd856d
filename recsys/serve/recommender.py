"""One customer's answer: the run's served strategy (`recsys.strategy`), applied to what the
views hold now.

The customer is a batch of one for the same `Served.rank` the flow's predictions and
scores come from: known to the model, the method chosen for warm customers; otherwise
the one chosen for the others (a customer nobody has seen has no purchases, so the
repurchase baseline gives them the popular list). Their repurchase window ends with the
day after the newest data; the popular list and the candidates are the views' shared
reads (`Views.shared`). Each item says where it came from (`model`, `repurchase`,
`popular`); only the model's rows have a score.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from recsys.serve.run import ServedRun
from recsys.serve.views import Bought, CustomerState, Shared, Views
from recsys.strategy.inputs import REPURCHASE_WINDOW_DAYS, Customers, repurchase_order
from recsys.strategy.lists import Lists, Ragged
from recsys.strategy.methods import METHODS


@dataclass(frozen=True)
class Item:
    article_id: str
    score: float | None
    source: str  # "model" | "repurchase" | "popular"


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
        state, shared = self.views.customer(customer_id), self.views.shared
        newest = as_of(state, shared)
        customers = self.customers(customer_id, state, (newest or date.today()) + timedelta(1))
        lists = self.served.rank(customers, shared.day, k)
        return Answer(customer_id, newest, items(lists))

    def customers(self, customer_id: str, state: CustomerState, today: date) -> Customers:
        """The customer as a batch of one, as of `today` (the day recommended for)."""
        known = self.run.knows(customer_id)
        queries = None
        if known and METHODS[self.served.warm].uses_model:
            profile = state.profile or {"customer_id": customer_id}
            queries = self.run.embed(profile, [b.article_id for b in state.bought], today)
        history = Ragged.of([repurchases(state.bought, today)])
        return Customers(np.array([customer_id], dtype=object), np.array([known]), history, queries)


def repurchases(bought: list[Bought], today: date) -> list[str]:
    """The articles bought in the repurchase window before `today`, in the flow's order
    (`strategy.inputs.repurchase_order`)."""
    start = today - timedelta(days=REPURCHASE_WINDOW_DAYS)
    window = [b for b in bought if start <= b.last_t_dat < today]
    order = repurchase_order(
        np.zeros(len(window)),
        np.array([b.article_id for b in window], dtype=object),
        np.array([b.last_t_dat.toordinal() for b in window], dtype="int64"),
        np.array([b.window_units for b in window], dtype="int64"),
    )
    return [window[i].article_id for i in order]


def items(lists: Lists) -> list[Item]:
    """The first (only) customer's list as items."""
    return [
        Item(article, None if np.isnan(score) else float(score), source)
        for article, score, source in zip(
            lists.articles[0], lists.scores[0], lists.sources[0], strict=True
        )
        if article is not None
    ]


def as_of(state: CustomerState, shared: Shared) -> date | None:
    """The newest purchase day behind the answer: the views' newest day (popularity and
    the repurchase window count from it), or the customer's own purchase if newer."""
    days = [d for d in (shared.newest_day, state.latest_day) if d is not None]
    return max(days) if days else None
