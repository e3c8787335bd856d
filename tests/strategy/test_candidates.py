"""The candidate rule: which articles the model may recommend as of a day."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from recsys.strategy.inputs import RANKING_DEPTH, CandidateRule, Candidates, sold_articles
from tests.fixtures_engine import insert_raw

CUTOFF = date(2020, 9, 16)
ARTICLES = [f"07{n:08d}" for n in range(6)]

purchases = st.lists(
    st.tuples(st.integers(0, 14), st.sampled_from(ARTICLES), st.integers(0, 3)),
    max_size=40,
)


@hypothesis_settings(max_examples=30, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(bought=purchases, days=st.integers(1, 10), min_purchases=st.integers(1, 4))
def test_sold_articles_counts_units_in_the_window(  # noqa: ANN001
    embedded_engine, bought: list[tuple[int, str, int]], days: int, min_purchases: int
) -> None:
    """An article is kept when the units bought in the `days` before the cutoff (the
    cutoff day itself excluded, same-day repeats counted as units) reach the minimum."""
    embedded_engine.execute("DELETE FROM transactions_raw")
    rows = [
        {
            "event_id": f"e{n}",
            "t_dat": CUTOFF - timedelta(days=before),
            "customer_id": f"c{customer}",
            "article_id": article,
            "price": 0.05,
            "sales_channel_id": 2,
        }
        for n, (before, article, customer) in enumerate(bought)
    ]
    if rows:
        insert_raw(embedded_engine, "transactions", rows)
    frame = pd.DataFrame(rows, columns=["t_dat", "article_id"])
    window = frame[(frame["t_dat"] >= CUTOFF - timedelta(days=days)) & (frame["t_dat"] < CUTOFF)]
    units = window["article_id"].value_counts()
    expected = units[units >= min_purchases]
    got = sold_articles(embedded_engine, CUTOFF, days, min_purchases)
    assert got.index.is_unique and got.to_dict() == expected.to_dict()


def test_candidates_fall_back_to_the_catalogue_when_too_few_are_kept(embedded_engine) -> None:  # noqa: ANN001
    """A rule that keeps fewer than RANKING_DEPTH articles would leave recall@100 short,
    so the whole catalogue is ranked; a rule that keeps enough restricts it."""
    catalogue = [f"08{n:08d}" for n in range(RANKING_DEPTH + 20)]
    rows = [
        {
            "event_id": f"e{n}-{unit}",
            "t_dat": CUTOFF - timedelta(days=1),
            "customer_id": f"c{unit}",
            "article_id": article,
            "price": 0.05,
            "sales_channel_id": 2,
        }
        for n, article in enumerate(catalogue[: RANKING_DEPTH + 10])
        for unit in range(1 + n % 2)  # every second article sells twice
    ]
    insert_raw(embedded_engine, "transactions", rows)
    whole = Candidates(np.eye(len(catalogue), dtype="float32"), np.asarray(catalogue))
    once = CandidateRule(days=7, min_purchases=1)
    kept = whole.restricted(embedded_engine, CUTOFF, once)
    assert list(kept.article_ids) == catalogue[: RANKING_DEPTH + 10]
    np.testing.assert_array_equal(kept.vectors, whole.vectors[: RANKING_DEPTH + 10])
    twice = CandidateRule(days=7, min_purchases=2)
    kept = whole.restricted(embedded_engine, CUTOFF, twice)
    assert list(kept.article_ids) == catalogue  # 55 would be kept: too few to rank 100
    assert twice.describe() == "articles bought at least 2 times in the last 7 days"
    assert "log" not in twice.describe()


def test_the_prior_adds_the_log_of_recent_sales_to_the_model_score(embedded_engine) -> None:  # noqa: ANN001
    """score = query . article + prior x log(units sold in the rule's days), for every
    article the rule keeps; the ranking follows it."""
    catalogue = [f"08{n:08d}" for n in range(RANKING_DEPTH + 20)]
    units = {article: 1 + n % 3 for n, article in enumerate(catalogue)}
    rows = [
        {"event_id": f"e{n}-{unit}", "t_dat": CUTOFF - timedelta(days=2),
         "customer_id": f"c{unit}", "article_id": article, "price": 0.05,
         "sales_channel_id": 2}
        for n, article in enumerate(catalogue) for unit in range(units[article])
    ]  # fmt: skip
    insert_raw(embedded_engine, "transactions", rows)
    rng = np.random.default_rng(0)
    whole = Candidates(
        rng.normal(size=(len(catalogue), 8)).astype("float32"), np.asarray(catalogue)
    )
    rule = CandidateRule(days=7, min_purchases=1, prior=0.7)
    kept = whole.restricted(embedded_engine, CUTOFF, rule)
    assert list(kept.article_ids) == catalogue and "0.7 x log" in rule.describe()
    queries = rng.normal(size=(3, 8)).astype("float32")
    ids, scores = kept.search(queries, len(catalogue))
    expected = queries @ whole.vectors.T + 0.7 * np.log([units[a] for a in catalogue])
    for row in range(3):
        order = np.argsort(-expected[row], kind="stable")
        np.testing.assert_allclose(scores[row], expected[row][order], rtol=1e-5, atol=1e-5)
        assert set(ids[row][:5]) == {catalogue[i] for i in order[:5]}
