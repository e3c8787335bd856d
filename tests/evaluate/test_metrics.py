"""The ranking metrics against cases computed by hand (the competition's MAP@12)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.evaluate.metrics import (
    Scoreboard,
    bootstrap_interval,
    ranking_metrics,
    segment_metrics,
)


def recs(rows: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(c, r, a) for c, arts in rows.items() for r, a in enumerate(arts, start=1)],
        columns=["customer_id", "rank", "article_id"],
    )


def truth(rows: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(c, a) for c, arts in rows.items() for a in arts], columns=["customer_id", "article_id"]
    )


def test_ap_with_fewer_than_12_actuals_divides_by_their_number() -> None:
    # hits at ranks 1 and 3 of 2 actuals: (1/1 + 2/3) / min(2, 12)
    m = ranking_metrics(recs({"c": ["a", "x", "b", "y"]}), truth({"c": ["a", "b"]}), 100)
    assert m["map@12"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["recall@12"] == pytest.approx(1.0)


def test_ap_with_more_than_12_actuals_divides_by_12() -> None:
    actual = [f"a{i}" for i in range(20)]
    m = ranking_metrics(recs({"c": ["a0", "z", "a1"]}), truth({"c": actual}), 100)
    assert m["map@12"] == pytest.approx((1 + 2 / 3) / 12)
    assert m["recall@12"] == pytest.approx(2 / 20)


def test_duplicate_predictions_count_once() -> None:
    # "a" repeated at rank 2 must not earn a second hit; "b" at rank 3 is the 2nd hit
    m = ranking_metrics(recs({"c": ["a", "a", "b"]}), truth({"c": ["a", "b"]}), 100)
    assert m["map@12"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["ndcg@12"] == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))


def test_customers_without_actuals_are_excluded_and_missing_predictions_score_zero() -> None:
    predictions = recs({"hit": ["a"], "no_actuals": ["a", "b"]})
    actuals = truth({"hit": ["a"], "no_predictions": ["q"]})
    m = ranking_metrics(predictions, actuals, 10)
    assert m["customers"] == 2
    assert m["map@12"] == pytest.approx(0.5)
    assert m["recall@12"] == pytest.approx(0.5)


def test_hits_beyond_12_count_only_for_recall_at_100() -> None:
    ranked = [f"x{i}" for i in range(12)] + ["a"]
    m = ranking_metrics(recs({"c": ranked}), truth({"c": ["a"]}), 1000)
    assert m["map@12"] == 0
    assert m["recall@12"] == 0
    assert m["recall@100"] == 1
    assert m["coverage"] == pytest.approx(12 / 1000)


def test_duplicate_actual_rows_are_one_purchase() -> None:
    m = ranking_metrics(recs({"c": ["a"]}), truth({"c": ["a", "a"]}), 10)
    assert m["map@12"] == pytest.approx(1.0)


def test_segments_split_warm_and_cold() -> None:
    predictions = recs({"w": ["a"], "k": ["z"]})
    table = segment_metrics(predictions, truth({"w": ["a"], "k": ["a"]}), {"w"}, 10)
    by = table.set_index("segment")
    assert by.loc["warm", "map@12"] == 1.0
    assert by.loc["cold", "map@12"] == 0.0
    assert by.loc["all", "map@12"] == 0.5
    assert list(by["customers"]) == [1, 1, 2]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=60))
def test_a_bootstrap_interval_holds_the_mean(values: list[float]) -> None:
    low, high = bootstrap_interval(np.array(values)[:, None], resamples=200)
    mean = float(np.mean(values))
    assert low[0] - 1e-12 <= mean <= high[0] + 1e-12


def test_more_customers_give_a_narrower_interval_and_a_constant_none() -> None:
    rng = np.random.default_rng(0)
    few, many = rng.random((100, 1)), rng.random((10_000, 1))
    width = [float(np.subtract(*reversed(bootstrap_interval(v)))) for v in (few, many)]
    assert width[1] < width[0] / 5  # about 1/sqrt(100) as wide
    low, high = bootstrap_interval(np.full((50, 1), 0.25))
    assert low[0] == high[0] == pytest.approx(0.25)


def test_paired_differences_are_zero_for_the_same_lists_and_signed_for_better_ones() -> None:
    customers = [f"c{i}" for i in range(200)]
    bought = truth({c: ["a"] for c in customers})
    board = Scoreboard(10, pd.Index(customers[:100]), {"a"})
    board.add(
        "good",
        recs({c: ["a", "b"] if i % 2 else ["b", "a"] for i, c in enumerate(customers)}),
        bought,
    )
    board.add(
        "same",
        recs({c: ["a", "b"] if i % 2 else ["b", "a"] for i, c in enumerate(customers)}),
        bought,
    )
    board.add("bad", recs({c: ["b", "c"] for c in customers}), bought)
    table = board.differences(["good"], ["same", "bad"]).set_index(["baseline", "metric"])
    assert table.loc[("same", "map@12"), ["difference", "low", "high"]].tolist() == [0, 0, 0]
    better = table.loc[("bad", "map@12")]
    assert better["difference"] == pytest.approx(0.75) and 0 < better["low"] <= better["high"]
    metrics = board.metrics()
    assert list(metrics["model"]) == ["good"] * 3 + ["same"] * 3 + ["bad"] * 3
    assert list(metrics["segment"]) == ["warm", "cold", "all"] * 3


def test_selling_counts_the_share_of_the_top_12_anyone_buys_that_week() -> None:
    # c bought a; d bought z: the week sold {a, z}. c's list a, b, z, a: 2 of 3 distinct.
    m = ranking_metrics(recs({"c": ["a", "b", "z", "a"]}), truth({"c": ["a"], "d": ["z"]}), 10)
    assert m["selling@12"] == pytest.approx((2 / 3 + 0) / 2)  # d has no list: 0
