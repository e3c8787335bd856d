"""What is served: one method for customers the model knows, one for everyone else,
both chosen on the validation week; the test week and the backtest only measure it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from recsys.strategy.inputs import Customers, Day
from recsys.strategy.lists import Lists
from recsys.strategy.methods import METHODS, names

SERVED = "served"  # the name its scores go under, next to every method's


@dataclass(frozen=True)
class Served:
    """`warm`: the method for the customers the model was trained on (any method);
    `cold`: a method without the model, for the others (and for customers nobody has
    seen: with no purchases, the repurchase baseline is the popular list)."""

    warm: str
    cold: str

    @classmethod
    def choose(cls, map_at_12: Callable[[str, str], float]) -> Served:
        """The best method on the warm customers (one without the model may win there
        too) and the best method without the model on all customers, by
        `map_at_12(method, segment)` of the validation week."""
        return cls(
            warm=max(METHODS, key=lambda name: map_at_12(name, "warm")),
            cold=max(names(uses_model=False), key=lambda name: map_at_12(name, "all")),
        )

    def describe(self) -> str:
        return f"{self.warm} for customers the model knows, {self.cold} for the others"

    def rank(self, customers: Customers, day: Day, depth: int) -> Lists:
        known = customers.known
        lists = Lists.empty(len(customers), depth)
        for method, rows in ((self.warm, known), (self.cold, ~known)):
            if rows.any():
                part = METHODS[method].rank(customers.subset(rows), day, depth)
                lists.put(rows, part)
        return lists
