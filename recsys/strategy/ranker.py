"""The learned rankers as the methods use them: the fitted LightGBM models (`RankerModel`,
trained by `recsys.train.ranker`) and the ranking of a batch's candidates with one.

Two rankers, both trained and both registered methods, validation choosing between
them (`VARIANTS`): `ranker` ranks the two-tower's list among the candidates and uses its
score, for the customers the model knows; `ranker_without_tower` never sees the model.
Why both: the weeks the rankers learn from come before the validation week, and the
two-tower was trained on them, so on those weeks its list and score know the labels;
only the validation week shows what they are worth (docs/training.md has the figures).

The model file is LightGBM's own text format, with the feature names in it: a run's file
names the features it was trained on, and a file from another version of FEATURES is
refused when loaded instead of ranking with shifted columns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.strategy import features
from recsys.strategy.inputs import Customers, Day
from recsys.strategy.lists import Lists, first_distinct

VARIANTS = {"ranker": True, "ranker_without_tower": False}  # name -> with the two-tower
CANDIDATES_PER_SOURCE = 50  # each source's list before the union
POOL_DEPTH = 100  # candidates per customer the ranker scores (the union, cut)
PREDICT_THREADS = 2
# Below this many rows one thread predicts: a service's answer is about 100 rows, and
# OpenMP's second thread there costs more than it shares (it keeps a core spinning
# between calls, which the service's other requests need).
ONE_THREAD_ROWS = 10_000
CHUNK = 10_000  # customers ranked at once: a million feature rows, about 300 MB


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
        threads = 1 if len(matrix) < ONE_THREAD_ROWS else PREDICT_THREADS
        return self.booster.predict(matrix, num_threads=threads)

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


def tower_rows(customers: Customers, name: str) -> np.ndarray:
    """Whose two-tower list and score the ranker `name` uses: the known customers', or
    nobody's."""
    return customers.known if VARIANTS[name] else np.zeros(len(customers), dtype=bool)


def rank(
    customers: Customers,
    day: Day,
    depth: int,
    name: str,
    sources: Callable[[Customers], dict[str, Lists]],
) -> Lists:
    """Each customer's candidates (the union of the `sources` lists, POOL_DEPTH deep)
    ordered by the day's ranker `name`, then the popular list's other articles where the
    candidates are fewer than `depth` (the sources overlap); CHUNK customers at a time
    (their feature rows are POOL_DEPTH times as many)."""
    if name not in day.rankers or day.articles is None:
        raise ValueError(f"{name} ranks with its fitted model and the day's articles (Day.read)")
    out = Lists.empty(len(customers), depth)
    for rows, part in customers.chunks(CHUNK):
        candidates = features.pool(sources(part), POOL_DEPTH)
        matrix = features.matrix(part, day, candidates, tower_rows(part, name))
        ordered = features.ranked(candidates, day.rankers[name].predict(matrix), depth)
        popular = Lists.same_for_all(len(part), day.popular, depth, "popular")
        out.put(rows, first_distinct(depth, ordered, popular))
    return out


def save(models: dict[str, RankerModel], folder: Path) -> None:
    """Each ranker's model file into `folder` (`<name>.txt`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        model.save(folder / f"{name}.txt")


def load(folder: Path) -> dict[str, RankerModel]:
    """Every ranker of VARIANTS from `folder` (`save`'s files)."""
    return {name: RankerModel.load(folder / f"{name}.txt") for name in VARIANTS}


def importance(models: dict[str, RankerModel]) -> pd.DataFrame:
    """ranker, feature, gain, splits: each ranker's feature importance."""
    return pd.concat(
        [model.importance().assign(ranker=name) for name, model in models.items()],
        ignore_index=True,
    )[["ranker", "feature", "gain", "splits"]]
