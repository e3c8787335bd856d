"""The learned ranker as the methods use it: the fitted LightGBM model (`RankerModel`,
trained by `recsys.train.ranker`) and the ranking of a batch's candidates with it.

The model file is LightGBM's own text format, with the feature names in it: a run's file
names the features it was trained on, and a file from another version of FEATURES is
refused when loaded instead of ranking with shifted columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.strategy import features
from recsys.strategy.inputs import Customers, Day
from recsys.strategy.lists import Lists

CANDIDATES_PER_SOURCE = 50  # each source's list before the union
POOL_DEPTH = 100  # candidates per customer the ranker scores (the union, cut)
PREDICT_THREADS = 2


class RankerModel:
    """A fitted LambdaRank booster over `features.FEATURES`."""

    def __init__(self, booster) -> None:
        names = tuple(booster.feature_name())
        if names != features.FEATURES:
            raise ValueError(
                f"the ranker was trained on features {names}, this version computes "
                f"{features.FEATURES}: train it again"
            )
        self.booster = booster

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        if not len(matrix):
            return np.zeros(0)
        return self.booster.predict(matrix, num_threads=PREDICT_THREADS)

    def save(self, path: Path) -> None:
        self.booster.save_model(str(path))

    @classmethod
    def load(cls, path: Path) -> RankerModel:
        import lightgbm

        return cls(lightgbm.Booster(model_file=str(path)))

    def importance(self) -> pd.DataFrame:
        """Each feature's total gain and number of splits, most gain first."""
        return pd.DataFrame(
            {
                "feature": features.FEATURES,
                "gain": self.booster.feature_importance("gain"),
                "splits": self.booster.feature_importance("split"),
            }
        ).sort_values(["gain", "feature"], ascending=[False, True], ignore_index=True)


def rank(
    customers: Customers,
    day: Day,
    depth: int,
    lists: dict[str, Lists],
    use_tower: np.ndarray,
) -> Lists:
    """The union of `lists` (POOL_DEPTH per customer) ordered by the day's ranker."""
    if day.ranker is None or day.articles is None:
        raise ValueError("the ranker ranks with a fitted ranker and the day's articles (Day.read)")
    candidates = features.pool(lists, POOL_DEPTH)
    matrix = features.matrix(customers, day, candidates, use_tower)
    return features.ranked(candidates, day.ranker.predict(matrix), depth)
