"""The ranker's candidates and features: the union of the sources, each feature against a
plain-Python statement of it, no feature seeing its label week, and the model file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.strategy import features
from recsys.strategy.inputs import Candidates, Customers, Day, History
from recsys.strategy.lists import Lists, Ragged
from recsys.strategy.methods import candidate_lists
from recsys.strategy.ranker import RankerModel
from tests.strategy.test_sources import ARTICLES, DAY, IDS, a_day, mine, purchases_of, rows

source_rows = st.lists(st.lists(st.sampled_from(ARTICLES), max_size=5, unique=True),
                       min_size=3, max_size=3)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(first=source_rows, second=source_rows, depth=st.integers(1, 10))
def test_the_pool_interleaves_the_sources_by_rank_and_knows_each_rank(
    first: list[list[str]], second: list[list[str]], depth: int
) -> None:
    lists = {
        "repurchase": Lists.from_ragged(Ragged.of(first), 5, "repurchase"),
        "popular": Lists.from_ragged(Ragged.of(second), 5, "popular"),
    }
    candidates = features.pool(lists, depth)
    for row in range(3):
        expected: list[str] = []
        for rank in range(5):
            for source in (first[row], second[row]):  # SOURCES' order: repurchase first
                if rank < len(source) and source[rank] not in expected:
                    expected.append(source[rank])
        got = [a for a in candidates.lists.articles[row] if a is not None]
        assert got == expected[:depth]
        for column, article in enumerate(got):
            for name, source in (("repurchase", first[row]), ("popular", second[row])):
                rank = candidates.ranks[name][row, column]
                assert (rank == source.index(article) + 1) if article in source else np.isnan(rank)
            places = {
                name: source.index(article)
                for name, source in (("repurchase", first[row]), ("popular", second[row]))
                if article in source
            }
            first_source = min(places, key=lambda name: (places[name], name != "repurchase"))
            assert candidates.lists.sources[row, column] == first_source


@settings(max_examples=40, deadline=None)
@given(bought=rows)
def test_pair_and_customer_features_follow_their_definitions(bought: list[tuple]) -> None:
    day = a_day([(ARTICLES[0], ARTICLES[3], 4), (ARTICLES[1], ARTICLES[3], 2)], [1] * 8)
    ages = np.array([25.0, np.nan, 61.0])
    purchases = purchases_of(bought)
    customers = Customers.of(IDS, np.zeros(3, bool), purchases, ages)
    everything = Lists.same_for_all(3, np.array(ARTICLES, dtype=object), 8, "popular")
    candidates = features.pool({"popular": everything}, 8)
    matrix = features.matrix(customers, day, candidates, np.zeros(3, bool))
    frame = pd.DataFrame(matrix, columns=features.FEATURES)
    frame["row"], frame["article"] = np.repeat(np.arange(3), 8), ARTICLES * 3
    departments = dict(zip(ARTICLES, [1, 1, 2, 2, 2, 3, 3, 4], strict=True))
    for row, customer in enumerate(IDS):
        own = {r[1]: r for r in mine(bought, customer)}
        units = sum(r[3] for r in own.values())
        part = frame[frame["row"] == row].set_index("article")
        assert (part["customer_units"] == units).all()
        assert (part["customer_articles"] == len(own)).all()
        since = min((r[2] for r in own.values()), default=np.nan)
        np.testing.assert_array_equal(part["customer_days_since_last"], since)
        np.testing.assert_array_equal(part["customer_age"], ages[row])
        for article in ARTICLES:
            got = part.loc[article]
            assert got["pair_bought_units"] == (own[article][3] if article in own else 0)
            if article in own:
                assert got["pair_days_since_bought"] == own[article][2]
            else:
                assert np.isnan(got["pair_days_since_bought"])
            department = sum(r[3] for a, r in own.items() if departments[a] == departments[article])
            assert got["pair_department_units"] == department
            seeds = [a for a, r in own.items() if r[4] > 0] if article == ARTICLES[3] else []
            together = sum({ARTICLES[0]: 4, ARTICLES[1]: 2}.get(a, 0) for a in seeds)
            assert got["pair_together"] == together
            assert got["article_sold_7"] == ARTICLES.index(article)
            assert got["popular_rank"] == ARTICLES.index(article) + 1
        assert np.isnan(part["repurchase_rank"]).all() and np.isnan(part["tower_score"]).all()


def test_same_product_articles_count_the_customers_other_colours() -> None:
    day = a_day([], [1] * 8)  # articles 2, 3 and 4 share a product code
    purchases = purchases_of([("c0", ARTICLES[2], 5, 1, 1), ("c0", ARTICLES[3], 5, 1, 1)])
    customers = Customers.of(IDS, np.zeros(3, bool), purchases, np.full(3, np.nan))
    everything = Lists.same_for_all(3, np.array(ARTICLES, dtype=object), 8, "popular")
    matrix = features.matrix(customers, day, features.pool({"popular": everything}, 8),
                             np.zeros(3, bool))  # fmt: skip
    same = matrix[:8, features.FEATURES.index("pair_same_product_articles")]
    assert same.tolist() == [0, 0, 1, 1, 2, 0, 0, 0]
    assert (matrix[8:, features.FEATURES.index("pair_same_product_articles")] == 0).all()


def test_the_tower_score_is_the_inner_product_for_the_customers_it_is_used_for() -> None:
    vectors = np.arange(16, dtype="float32").reshape(8, 2)
    catalogue = Candidates(vectors, np.array(ARTICLES, dtype=object))
    day = a_day([], [1] * 8)
    day = Day(DAY, day.popular, catalogue, day.articles, day.together, day.age_popular, catalogue)
    queries = np.array([[1, 0], [0, 1], [1, 1]], dtype="float32")
    customers = Customers.of(IDS, np.ones(3, bool), purchases_of([]), np.full(3, np.nan), queries)
    everything = Lists.same_for_all(3, np.array(ARTICLES[::-1], dtype=object), 8, "popular")
    use = np.array([True, False, True])
    matrix = features.matrix(customers, day, features.pool({"popular": everything}, 8), use)
    scores = matrix[:, features.FEATURES.index("tower_score")].reshape(3, 8)
    expected = queries @ vectors[::-1].T
    np.testing.assert_allclose(scores[0], expected[0])
    np.testing.assert_allclose(scores[2], expected[2])
    assert np.isnan(scores[1]).all()


def test_ranked_orders_each_customers_candidates_by_score() -> None:
    everything = Lists.same_for_all(2, np.array(ARTICLES[:3], dtype=object), 4, "popular")
    candidates = features.pool({"popular": everything}, 4)
    lists = features.ranked(candidates, np.array([0.1, 0.9, 0.5, 2.0, 2.0, -1.0]), 2)
    assert lists.articles.tolist() == [[ARTICLES[1], ARTICLES[2]], [ARTICLES[0], ARTICLES[1]]]
    assert lists.scores.tolist() == [[0.9, 0.5], [2.0, 2.0]]
    assert set(lists.sources.ravel()) == {"popular"}


@pytest.fixture(scope="module")
def tiny_engine(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The tiny data in a DuckDB file of this module (its purchases are deleted here)."""
    from recsys.store.engine import open_engine
    from tests.fixtures_engine import engine_settings_for

    engine = open_engine(engine_settings_for(tmp_path_factory.mktemp("leak")))
    engine.apply()
    engine.load_csv(tiny_data)
    yield engine
    engine.close()


def rows_as_of(engine, day, catalogue: Candidates, queries: np.ndarray, ids: np.ndarray):  # noqa: ANN001, ANN201
    lists_day = Day.read(engine, day, catalogue)
    customers = History.read(engine, day).customers(ids, np.arange(len(ids)) % 3 > 0, queries)
    candidates = features.pool(candidate_lists(customers, lists_day, True), 100)
    return candidates, features.matrix(customers, lists_day, candidates, customers.known)


def test_no_feature_sees_its_label_week(tiny_engine) -> None:  # noqa: ANN001
    """Every candidate and feature as of a day is the same with the purchases of the day
    and later deleted: what the ranker learns from a week never contains that week."""
    last = tiny_engine.query("SELECT MAX(t_dat) AS m FROM transactions_t")["m"][0]
    day = (pd.Timestamp(last) - pd.Timedelta(days=13)).date()
    buyers = tiny_engine.query(
        f"SELECT DISTINCT customer_id FROM transactions_t WHERE t_dat >= DATE '{day}' "
        f"AND t_dat < DATE '{day + timedelta(7)}' ORDER BY customer_id"
    )["customer_id"].to_numpy(dtype=object)
    articles = tiny_engine.query("SELECT article_id FROM articles_t")["article_id"].to_numpy()
    rng = np.random.default_rng(3)
    catalogue = Candidates(rng.normal(size=(len(articles), 4)).astype("float32"), articles)
    queries = rng.normal(size=(len(buyers), 4)).astype("float32")
    before, matrix = rows_as_of(tiny_engine, day, catalogue, queries, buyers)
    assert len(buyers) > 20 and len(matrix) > 1000
    for name in features.FEATURES:  # every feature varies: none is left out by mistake
        assert np.nanstd(matrix[:, features.FEATURES.index(name)]) > 0, name
    tiny_engine.execute(f"DELETE FROM transactions_raw WHERE t_dat >= DATE '{day}'")
    after, unchanged = rows_as_of(tiny_engine, day, catalogue, queries, buyers)
    assert after.lists.articles.tolist() == before.lists.articles.tolist()
    np.testing.assert_array_equal(unchanged, matrix)


def test_a_model_file_of_other_features_is_refused(tmp_path: Path) -> None:
    import lightgbm

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(200, len(features.FEATURES)))
    labels = (matrix[:, 0] > 0).astype(int)
    params = {"objective": "lambdarank", "verbosity": -1, "min_data_in_leaf": 5}
    dataset = lightgbm.Dataset(matrix, labels, group=[20] * 10,
                               feature_name=list(features.FEATURES))  # fmt: skip
    model = RankerModel(lightgbm.train(params, dataset, 5))
    model.save(tmp_path / "ranker.txt")
    loaded = RankerModel.load(tmp_path / "ranker.txt")
    np.testing.assert_allclose(loaded.predict(matrix), model.predict(matrix))
    assert set(loaded.importance()["feature"]) == set(features.FEATURES)
    other = lightgbm.Dataset(matrix[:, :-1], labels, group=[20] * 10,
                             feature_name=list(features.FEATURES[:-1]))  # fmt: skip
    with pytest.raises(ValueError, match="train it again"):
        RankerModel(lightgbm.train(params, other, 5))


def test_a_ranker_fills_its_list_with_popular_articles_beyond_its_candidates() -> None:
    import lightgbm

    from recsys.strategy import ranker

    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(100, len(features.FEATURES)))
    dataset = lightgbm.Dataset(matrix, (matrix[:, 0] > 0).astype(int), group=[10] * 10,
                               feature_name=list(features.FEATURES))  # fmt: skip
    params = {"objective": "lambdarank", "verbosity": -1, "min_data_in_leaf": 5}
    model = RankerModel(lightgbm.train(params, dataset, 3))
    day = a_day([], [1] * 8)
    day = Day(DAY, np.array(ARTICLES[::-1], dtype=object), None, day.articles, day.together,
              day.age_popular, rankers={"ranker_without_tower": model})  # fmt: skip
    customers = Customers.of(IDS, np.zeros(3, bool), purchases_of([]), np.full(3, np.nan))

    def three(part: Customers) -> dict[str, Lists]:
        shown = np.array(ARTICLES[:3], dtype=object)
        return {"popular_by_age": Lists.same_for_all(len(part), shown, 3, "popular_by_age")}

    lists = ranker.rank(customers, day, 6, "ranker_without_tower", three)
    for row in range(3):
        got = list(lists.articles[row])
        assert set(got[:3]) == set(ARTICLES[:3]) and got[3:] == ARTICLES[::-1][:3]
        assert list(lists.sources[row]) == ["popular_by_age"] * 3 + ["popular"] * 3
        assert not np.isnan(lists.scores[row, :3]).any() and np.isnan(lists.scores[row, 3:]).all()
