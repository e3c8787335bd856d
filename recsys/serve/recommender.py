"""One customer's answer: the flow's served strategy, applied to what the views hold now.

As the flow serves (recsys/my_merlin_flow.py, `predict`), per kind of customer:

- known to the model (an id of its vocabulary): `warm_strategy`, either the model's
  ranking alone or their recent repurchases first, then the model's ranking; the model
  ranks only the run's candidates (the articles its candidate rule keeps as of the day
  recommended for, `scoring.candidates`), as in the flow's predictions;
- a customer the model does not know: the `fallback` baseline, their recent purchases
  filled with popular items (`repurchase`) or popular items alone (`popular`);
- a customer the data has never seen: popular items.

"Recent" is the repurchase baseline's window, REPURCHASE_WINDOW_DAYS before the day
after the newest data; popular items come from `article_popularity_t`. Each item says
where it came from: `repurchase`, `model` or `popular`. Only the model's rows have a
score (as in the flow's predictions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from recsys.serve.run import ServedRun
from recsys.serve.views import Bought, CustomerState, Shared, Views
from recsys.strategy.baselines import REPURCHASE_WINDOW_DAYS


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

    def recommend(self, customer_id: str, k: int) -> Answer:
        state, shared = self.views.customer(customer_id), self.views.shared
        newest = as_of(state, shared)
        return Answer(customer_id, newest, self.items(customer_id, state, shared, newest, k))

    def items(
        self, customer_id: str, state: CustomerState, shared: Shared, newest: date | None, k: int
    ) -> list[Item]:
        """The top `k` as of the day after `newest` (the day being recommended for)."""
        popular = [Item(a, None, "popular") for a in shared.popular]
        if state.unknown:
            return popular[:k]
        today = (newest or date.today()) + timedelta(days=1)
        own = [Item(a, None, "repurchase") for a in recent_articles(state.bought, today)]
        if self.run.knows(customer_id):
            profile = state.profile or {"customer_id": customer_id}
            query = self.run.embed(profile, [b.article_id for b in state.bought], today)
            ranked = shared.candidates.search(query, k + len(own))
            model = [Item(a, s, "model") for a, s in ranked]
            if self.run.warm_strategy == "two_tower":
                return model[:k]
            return first_distinct(k, own, model)
        if self.run.fallback == "repurchase":
            return first_distinct(k, own, popular)
        return popular[:k]


def recent_articles(bought: list[Bought], today: date) -> list[str]:
    """The articles bought in the repurchase window before `today` in the flow's order
    (`baselines.repurchase_recommendations`): newest first, then most bought in the
    window, then by id."""
    start = today - timedelta(days=REPURCHASE_WINDOW_DAYS)
    bought = [b for b in bought if start <= b.last_t_dat < today]
    bought.sort(key=lambda b: (-b.last_t_dat.toordinal(), -b.window_units, b.article_id))
    return [b.article_id for b in bought]


def first_distinct(k: int, *lists: Iterable[Item]) -> list[Item]:
    """The first `k` items of the lists in turn, each article once (its first place)."""
    seen: set[str] = set()
    out: list[Item] = []
    for items in lists:
        for item in items:
            if item.article_id not in seen:
                seen.add(item.article_id)
                out.append(item)
                if len(out) == k:
                    return out
    return out


def as_of(state: CustomerState, shared: Shared) -> date | None:
    """The newest purchase day behind the answer: the views' newest day (popularity and
    the repurchase window count from it), or the customer's own purchase if newer."""
    days = [d for d in (shared.newest_day, state.latest_day) if d is not None]
    return max(days) if days else None
