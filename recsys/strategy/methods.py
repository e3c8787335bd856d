"""The ranking methods, one registry: every method ranks a batch of customers as of a day.

Validation, test and backtest scores, the flow's predictions and the service's answers
all rank through `METHODS`, so a method is defined once. Adding one is a class with a
`name` and a `rank`, and its entry in METHODS (ARCHITECTURE.md, "Adding a method").
`uses_model` says whether it needs the trained model (the customers' query embeddings
and the day's candidates): such a method can only be served to customers the model
knows; the others serve everyone else.
"""

from __future__ import annotations

from typing import ClassVar

from recsys.strategy.inputs import Customers, Day
from recsys.strategy.lists import Lists, first_distinct


class Method:
    """Ranks `customers` as of `day`: `depth` articles each, best first."""

    name: ClassVar[str]
    uses_model: ClassVar[bool] = False

    def rank(self, customers: Customers, day: Day, depth: int) -> Lists:
        raise NotImplementedError


class Popular(Method):
    """The most bought articles of the 7 days before the day, the same for everyone."""

    name = "popular"

    def rank(self, customers: Customers, day: Day, depth: int) -> Lists:
        return Lists.same_for_all(len(customers), day.popular, depth, "popular")


class Repurchase(Method):
    """Each customer's own recent articles, then the popular list (the best public
    heuristic of the competition)."""

    name = "repurchase"

    def rank(self, customers: Customers, day: Day, depth: int) -> Lists:
        own = Lists.from_ragged(customers.history, depth, "repurchase")
        return first_distinct(depth, own, Popular().rank(customers, day, depth))


class TwoTower(Method):
    """The two-tower model's ranking of the day's candidates by inner product."""

    name = "two_tower"
    uses_model = True

    def rank(self, customers: Customers, day: Day, depth: int) -> Lists:
        if customers.queries is None or day.candidates is None:
            raise ValueError("two_tower ranks with query embeddings and the day's candidates")
        articles, scores = day.candidates.search(customers.queries, depth)
        return Lists.scored(articles, scores, "model")


class RepurchaseThenTwoTower(Method):
    """Each customer's own recent articles, then the model's ranking."""

    name = "repurchase+two_tower"
    uses_model = True

    def rank(self, customers: Customers, day: Day, depth: int) -> Lists:
        own = Lists.from_ragged(customers.history, depth, "repurchase")
        return first_distinct(depth, own, TwoTower().rank(customers, day, depth))


METHODS: dict[str, Method] = {
    method.name: method
    for method in (TwoTower(), RepurchaseThenTwoTower(), Popular(), Repurchase())
}


def names(uses_model: bool) -> tuple[str, ...]:
    """The registered methods that do (or do not) need the model."""
    return tuple(name for name, method in METHODS.items() if method.uses_model == uses_model)
