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
import pandas as pd

from recsys.serve.run import ServedRun
from recsys.serve.views import CustomerState, Shared, Views
from recsys.strategy.inputs import Customers, Purchases
from recsys.strategy.lists import Lists
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
        return customer_batch(customer_id, known, state, queries)


def customer_batch(
    customer_id: str, known: bool, state: CustomerState, queries: np.ndarray | None
) -> Customers:
    """What the service holds of one customer as the flow's `Customers` (`Customers.of`):
    their purchases before the day recommended for, and their age."""
    bought = state.bought
    purchases = Purchases.of(
        [customer_id],
        [customer_id] * len(bought),
        [b.article_id for b in bought],
        [b.last_t_dat.toordinal() for b in bought],
        [b.units for b in bought],
        [b.window_units for b in bought],
        [np.nan if b.online_units is None else b.online_units for b in bought],
    )
    age = (state.profile or {}).get("age")
    age = np.nan if age is None or pd.isna(age) else float(age)
    ids = np.array([customer_id], dtype=object)
    return Customers.of(ids, np.array([known]), purchases, np.array([age]), queries)


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
