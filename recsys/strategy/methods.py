"""The ranking methods, one registry: every method ranks a batch of customers as of a day.

Validation, test and backtest scores, the flow's predictions and the service's answers
all rank through `METHODS`, so a method is defined once. Adding one is a class with a
`name` and a `rank`, and its entry in METHODS (ARCHITECTURE.md, "Adding a method").
`uses_model` says whether it needs the trained model (the customers' query embeddings
and the day's candidates): such a method can only be served to customers the model
knows; the others can serve anyone (`served.Served.choose`).
"""

from __future__ import annotations

from typing import ClassVar

from recsys.strategy import ranker, sources
from recsys.strategy.inputs import Customers, Day
from recsys.strategy.lists import Lists, first_distinct


class Method:
    """Ranks `customers` as of `day`: `depth` articles each, best first. As a candidate
    source of the ranker it gives `source`: its own articles only (the same as `rank`
    unless it fills its list from another method)."""

    name: ClassVar[str]
    uses_model: ClassVar[bool] = False

    def rank(self, customers: Customers, day: Day, depth: int) -> Lists:
        raise NotImplementedError

    def source(self, customers: Customers, day: Day, depth: int) -> Lists:
        return self.rank(customers, day, depth)


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
        own = self.source(customers, day, depth)
        return first_distinct(depth, own, Popular().rank(customers, day, depth))

    def source(self, customers: Customers, day: Day, depth: int) -> Lists:
        """The repurchase window alone."""
        return Lists.from_ragged(customers.history, depth, "repurchase")


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


class BoughtTogether(Method):
    """The articles most bought together (within days, by the same customers) with the
    customer's articles of the repurchase window (`sources.bought_together`)."""

    name = "bought_together"

    def rank(self, customers: Customers, day: Day, depth: int) -> Lists:
        return sources.bought_together(customers, day, depth)


class SameProduct(Method):
    """Other articles of the product codes the customer bought (`sources.same_product`)."""

    name = "same_product"

    def rank(self, customers: Customers, day: Day, depth: int) -> Lists:
        return sources.same_product(customers, day, depth)


class PopularByAge(Method):
    """The most bought articles of the customer's age group last week (`sources.age_popular`)."""

    name = "popular_by_age"

    def rank(self, customers: Customers, day: Day, depth: int) -> Lists:
        return sources.age_popular(customers, day, depth)


class Ranker(Method):
    """The learned ranker over the union of every source's candidates (`ranker.rank`), the
    two-tower's list and score among them: for the customers the model knows."""

    name = "ranker"
    uses_model = True

    def rank(self, customers: Customers, day: Day, depth: int) -> Lists:
        def lists(part: Customers) -> dict[str, Lists]:
            return candidate_lists(part, day, with_tower=True)

        return ranker.rank(customers, day, depth, self.name, lists)


class RankerWithoutTower(Method):
    """A ranker trained without the two-tower's list and score: for anyone."""

    name = "ranker_without_tower"

    def rank(self, customers: Customers, day: Day, depth: int) -> Lists:
        def lists(part: Customers) -> dict[str, Lists]:
            return candidate_lists(part, day, with_tower=False)

        return ranker.rank(customers, day, depth, self.name, lists)


SOURCE_METHODS = {
    "repurchase": Repurchase(),
    "two_tower": TwoTower(),
    "bought_together": BoughtTogether(),
    "same_product": SameProduct(),
    "popular_by_age": PopularByAge(),
    "popular": Popular(),
}


def candidate_lists(
    customers: Customers, day: Day, with_tower: bool, depth: int = ranker.CANDIDATES_PER_SOURCE
) -> dict[str, Lists]:
    """Every source's own list (`Method.source`), `depth` deep; the two-tower's only with
    `with_tower` and only for the customers the model knows."""
    lists = {}
    for name, method in SOURCE_METHODS.items():
        if name != "two_tower":
            lists[name] = method.source(customers, day, depth)
        elif with_tower and customers.known.any():
            known = customers.subset(customers.known)
            tower = Lists.empty(len(customers), depth)
            lists[name] = tower.put(customers.known, method.source(known, day, depth))
    return lists


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        TwoTower(),
        RepurchaseThenTwoTower(),
        Ranker(),
        Popular(),
        Repurchase(),
        BoughtTogether(),
        SameProduct(),
        PopularByAge(),
        RankerWithoutTower(),
    )
}


def names(uses_model: bool) -> tuple[str, ...]:
    """The registered methods that do (or do not) need the model."""
    return tuple(name for name, method in METHODS.items() if method.uses_model == uses_model)
