"""Training the ranker: its weeks, its labels, and LambdaRank learning a planted order."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from recsys.strategy import features
from recsys.strategy.lists import Lists
from recsys.train import ranker


def test_the_weeks_end_with_the_validation_week_before_the_day() -> None:
    starts = ranker.week_starts(date(2020, 9, 16), 3)
    assert starts == [date(2020, 8, 19), date(2020, 8, 26), date(2020, 9, 2), date(2020, 9, 9)]


def test_a_candidate_is_labelled_when_its_customer_bought_it_in_the_week() -> None:
    lists = Lists.same_for_all(2, np.array(["a", "b", "c"], dtype=object), 4, "popular")
    candidates = features.pool({"popular": lists}, 4)
    bought = pd.DataFrame({"customer_id": ["x", "y", "y", "z"], "article_id": ["b", "a", "d", "a"]})
    labels = ranker._labels(candidates, np.array(["x", "y"], dtype=object), bought)
    assert labels.tolist() == [[False, True, False, False], [True, False, False, False]]


def planted(groups: int, seed: int) -> ranker.Examples:
    """Groups of 20 candidates with random features where the bought one is the one the
    customer bought most recently (lowest pair_days_since_bought)."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(groups * 20, len(features.FEATURES))).astype("float32")
    column = features.FEATURES.index("pair_days_since_bought")
    days = matrix[:, column].reshape(groups, 20)
    labels = (days == days.min(axis=1, keepdims=True)).astype("float32").ravel()
    return ranker.Examples(matrix, labels, [20] * groups, groups, groups, groups)


def test_lambdarank_learns_a_planted_order_and_stops_on_validation() -> None:
    fitted = ranker.fit(planted(400, 1), planted(100, 2))
    assert fitted.model.importance()["feature"][0] == "pair_days_since_bought"
    assert max(fitted.validation_map) > 0.9
    assert 1 <= fitted.best_iteration <= len(fitted.validation_map)
    assert fitted.validation_map[fitted.best_iteration - 1] == max(fitted.validation_map)
    test = planted(50, 3)
    scores = fitted.model.predict(test.matrix).reshape(50, 20)
    bought = test.labels.reshape(50, 20).argmax(axis=1)
    assert (scores.argmax(axis=1) == bought).mean() > 0.75  # by chance: 0.05
    facts = fitted.facts()
    assert facts["train_rows"] == 8000 and facts["candidate_recall_train"] == 1.0


def test_a_week_learns_from_a_sample_of_its_buyers_by_id(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(ranker, "BUYERS_PER_WEEK", 2)
    purchases = pd.DataFrame({"customer_id": ["c", "a", "c", "b"], "article_id": list("wxyz")})
    assert ranker.sampled_buyers(purchases).tolist() == ["a", "b"]
