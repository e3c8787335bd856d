"""What is served, without the engine: the ranked lists, the methods and the choice."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.strategy.inputs import Candidates, Customers, Day, Purchases
from recsys.strategy.lists import Lists, Ragged, first_distinct
from recsys.strategy.methods import METHODS, Popular, Repurchase, TwoTower, names
from recsys.strategy.served import Served

DAY = date(2020, 9, 16)
ARTICLES = [f"07{n:08d}" for n in range(8)]


def lists_of(rows: list[list[str]], depth: int, source: str) -> Lists:
    return Lists.from_ragged(Ragged.of(rows), depth, source)


def reference_first_distinct(depth: int, *parts: list[str]) -> list[str]:
    """The rule, written plainly: the parts in turn, each article at its first place."""
    seen: list[str] = []
    for part in parts:
        for article in part:
            if article not in seen:
                seen.append(article)
    return seen[:depth]


@settings(max_examples=60, deadline=None)
@given(
    own=st.lists(st.lists(st.sampled_from(ARTICLES), max_size=6), min_size=1, max_size=5),
    fill=st.lists(st.sampled_from(ARTICLES), max_size=8),
    depth=st.integers(1, 10),
)
def test_first_distinct_keeps_each_article_at_its_first_place(
    own: list[list[str]], fill: list[str], depth: int
) -> None:
    merged = first_distinct(
        depth,
        lists_of(own, depth, "repurchase"),
        Lists.same_for_all(len(own), np.asarray(fill, dtype=object), depth, "popular"),
    )
    for row, mine in enumerate(own):
        expected = reference_first_distinct(depth, mine[:depth], fill[:depth])
        got = [a for a in merged.articles[row] if a is not None]
        assert got == expected
        sources = [s for s in merged.sources[row] if s is not None]
        assert sources == ["repurchase" if a in mine[:depth] else "popular" for a in got]


def recent(customers: list[str], articles: list[str], days: list[str], bought: list[int]):  # noqa: ANN201
    """Purchases of the repurchase window: (customer, article, last day, units) rows."""
    ids = np.array(sorted(set(customers)) + ["stranger"], dtype=object)
    last = [date.fromisoformat(d).toordinal() for d in days]
    return ids, Purchases.of(ids, customers, articles, last, bought, bought, np.zeros(len(bought)))


rows = st.lists(st.one_of(st.none(), st.sampled_from(ARTICLES)), max_size=9)


@settings(max_examples=100, deadline=None)
@given(first=st.lists(rows, min_size=1, max_size=6), second=st.data(), depth=st.integers(1, 10))
def test_first_distinct_carries_scores_and_sources_and_skips_gaps(
    first: list[list[str | None]], second: st.DataObject, depth: int
) -> None:
    """Parts of any width with gaps (None) anywhere, scored or not: each kept article
    comes with its own score and source from its first place."""
    other = second.draw(st.lists(rows, min_size=len(first), max_size=len(first)))

    def part(lists: list[list[str | None]], source: str, offset: float) -> Lists:
        width = max(len(r) for r in lists) or 1
        articles = np.full((len(lists), width), None, dtype=object)
        for i, r in enumerate(lists):
            articles[i, : len(r)] = r
        scores = offset + np.arange(articles.size, dtype="float64").reshape(articles.shape)
        return Lists(articles, scores, np.full(articles.shape, source, dtype=object))

    a, b = part(first, "one", 0.0), part(other, "two", 1000.0)
    merged = first_distinct(depth, a, b)
    assert merged.articles.shape == (len(first), depth)
    for row in range(len(first)):
        places = [(x, s, src) for p in (a, b) for x, s, src in
                  zip(p.articles[row], p.scores[row], p.sources[row], strict=True)]  # fmt: skip
        expected, seen = [], set()
        for article, score, source in places:
            if article is not None and article not in seen:
                seen.add(article)
                expected.append((article, score, source))
        expected = expected[:depth]
        got = [(x, s, src) for x, s, src in
               zip(merged.articles[row], merged.scores[row], merged.sources[row], strict=True)
               if x is not None]  # fmt: skip
        assert got == expected
        assert all(x is None for x in merged.articles[row, len(expected) :])


def test_repurchase_puts_latest_purchases_first_then_fills_with_popular() -> None:
    ids, purchases = recent(
        ["c", "c", "c", "d", "d"],
        ["old", "new", "p1", "b", "a"],
        ["2020-09-01", "2020-09-10", "2020-09-05", "2020-09-02", "2020-09-02"],
        [1, 1, 1, 1, 1],
    )
    customers = Customers.of(ids, np.zeros(3, bool), purchases, np.full(3, np.nan))
    day = Day(DAY, np.array(["p1", "p2", "p3", "p4"], dtype=object), None)
    frame = Repurchase().rank(customers, day, 4).to_frame(ids)
    lists = frame.groupby("customer_id")["article_id"].agg(list)
    assert lists["c"] == ["new", "p1", "old", "p2"]
    assert lists["stranger"] == ["p1", "p2", "p3", "p4"]
    assert lists["d"] == ["a", "b", "p1", "p2"]  # same day and units: by id
    c = frame[frame["customer_id"] == "c"]
    assert c["source"].tolist() == ["repurchase"] * 3 + ["popular"]
    assert c["rank"].tolist() == [1, 2, 3, 4] and c["score"].isna().all()


def test_the_most_bought_comes_first_among_purchases_of_the_same_day() -> None:
    ids, purchases = recent(["c", "c"], ["a", "b"], ["2020-09-10", "2020-09-10"], [1, 3])
    assert list(purchases.repurchase_window().values) == ["b", "a"]


def test_popular_gives_everyone_the_same_list_cut_to_the_depth() -> None:
    ids = np.array(["a", "b"], dtype=object)
    customers = Customers(ids, np.zeros(2, bool), Ragged.of([[], []]))
    day = Day(DAY, np.array(["x", "y", "z"], dtype=object), None)
    frame = Popular().rank(customers, day, 2).to_frame(ids)
    assert frame[["customer_id", "rank", "article_id"]].values.tolist() == [
        ["a", 1, "x"], ["a", 2, "y"], ["b", 1, "x"], ["b", 2, "y"],
    ]  # fmt: skip


def test_two_tower_ranks_the_candidates_by_inner_product() -> None:
    vectors = np.eye(4, dtype="float32")
    candidates = Candidates(vectors, np.array(ARTICLES[:4], dtype=object))
    queries = np.array([[0, 3, 1, 2], [5, 0, -1, 1]], dtype="float32")
    ids = np.array(["a", "b"], dtype=object)
    customers = Customers(ids, np.ones(2, bool), Ragged.of([[], []]), queries)
    day = Day(DAY, np.array([], dtype=object), candidates)
    lists = TwoTower().rank(customers, day, 3)
    assert lists.articles.tolist() == [
        [ARTICLES[1], ARTICLES[3], ARTICLES[2]],
        [ARTICLES[0], ARTICLES[3], ARTICLES[1]],
    ]
    assert lists.scores.tolist() == [[3, 2, 1], [5, 1, 0]]
    with pytest.raises(ValueError, match="query embeddings"):
        TwoTower().rank(Customers(ids, np.ones(2, bool), Ragged.of([[], []])), day, 3)


def test_served_routes_known_customers_to_the_model_and_the_others_to_the_baseline() -> None:
    candidates = Candidates(np.eye(2, dtype="float32"), np.array(["m1", "m2"], dtype=object))
    day = Day(DAY, np.array(["p1", "p2"], dtype=object), candidates)
    ids = np.array(["warm", "cold"], dtype=object)
    queries = np.array([[1, 0], [0, 1]], dtype="float32")
    customers = Customers(ids, np.array([True, False]), Ragged.of([["own"], ["own"]]), queries)
    frame = Served("repurchase+two_tower", "popular").rank(customers, day, 3).to_frame(ids)
    lists = frame.groupby("customer_id")["article_id"].agg(list)
    assert lists["warm"] == ["own", "m1", "m2"] and lists["cold"] == ["p1", "p2"]


def test_served_is_chosen_among_the_registered_methods_by_validation_map() -> None:
    """Known customers get the best method on them, whichever; the others the best
    method without the model on everyone."""
    warm = dict.fromkeys(METHODS, 0.05) | {"repurchase+two_tower": 0.3, "repurchase": 0.25}
    every = dict.fromkeys(METHODS, 0.05) | {"repurchase+two_tower": 0.5, "repurchase": 0.4}
    scores = {"warm": warm, "all": every}
    served = Served.choose(lambda method, segment: scores[segment][method])
    assert served == Served("repurchase+two_tower", "repurchase")
    warm |= {"ranker": 0.5, "ranker_without_tower": 0.45}
    every |= {"ranker_without_tower": 0.45}
    assert Served.choose(lambda method, segment: scores[segment][method]) == Served(
        "ranker", "ranker_without_tower"
    )
    warm |= {"ranker_without_tower": 0.55}  # a method without the model may win there too
    assert Served.choose(lambda method, segment: scores[segment][method]) == Served(
        "ranker_without_tower", "ranker_without_tower"
    )
    assert set(names(uses_model=True)) | set(names(uses_model=False)) == set(METHODS)
    assert served.describe().startswith("repurchase+two_tower for customers the model knows")


def test_every_source_has_its_features_and_is_a_registered_method() -> None:
    from recsys.strategy.features import SOURCES
    from recsys.strategy.methods import SOURCE_METHODS

    assert tuple(SOURCE_METHODS) == SOURCES
    for name, method in SOURCE_METHODS.items():
        assert METHODS[name] is not None and type(METHODS[name]) is type(method)
