"""The NVTabular workflows learn from training rows only, and unseen ids never fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.train.features import (
    ARTICLE_CODE_COLUMNS,
    OOV_INDEX,
    FittedFeatures,
    RecentSales,
    fit_features,
    postal_buckets,
    prepare_articles,
    prepare_customers,
)

CUTOFF = pd.Timestamp("2020-09-08")


def rows(customer: list[str], article: list[str], price: list[float], day: str) -> pd.DataFrame:
    n = len(customer)
    frame = pd.DataFrame(
        {
            "t_dat": pd.to_datetime([day] * n),
            "customer_id": customer,
            "article_id": article,
            "price": price,
            "age": [25.0] * n,
            "club_member_status": ["ACTIVE"] * n,
            "fashion_news_frequency": ["NONE"] * n,
            "FN": [1.0] * n,
            "Active": [np.nan] * n,
            "postal_code": ["p1"] * n,
        }
    )
    for column in ARTICLE_CODE_COLUMNS:
        frame[column] = 7
    return frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> FittedFeatures:
    train = pd.concat(
        [rows(["c1", "c2"], ["A", "B"], [1.0, 3.0], day) for day in ("2020-08-31", "2020-09-01")]
    )
    return fit_features(train, CUTOFF, tmp_path_factory.mktemp("features"))


def test_recent_article_slots_share_one_vocabulary(fitted: FittedFeatures) -> None:
    """Rows of later days see the articles bought before them in their slots, encoded with
    one vocabulary: the same article has the same code in every slot."""
    later = pd.concat(
        [
            rows(["c1"], ["A"], [1.0], "2020-09-10"),
            rows(["c1", "c1"], ["B", "new-article"], [3.0, 1.0], "2020-09-11"),
            rows(["c1"], ["B"], [3.0], "2020-09-12"),
        ],
        ignore_index=True,
    )
    slots = fitted.interactions(later)[["recent_1", "recent_2", "recent_3", "recent_4"]]
    none = slots.iloc[0, 0]  # nothing bought before: every slot is the "none" category
    assert none > OOV_INDEX and slots.iloc[0].tolist() == [none] * 4
    a = slots.iloc[1, 0]
    assert a > OOV_INDEX and a != none
    assert slots.iloc[1].tolist() == slots.iloc[2].tolist() == [a, none, none, none]
    # day 12 sees day 11 (B, then new-article: same day, by id), then A from day 10
    b = slots.iloc[3, 0]
    assert b > OOV_INDEX and b not in (a, none)
    assert slots.iloc[3].tolist() == [b, OOV_INDEX, a, none]


def test_ids_first_seen_after_training_are_out_of_vocabulary(fitted: FittedFeatures) -> None:
    later = rows(["c1", "new-customer"], ["A", "new-article"], [1.0, 1.0], "2020-09-10")
    encoded = fitted.interactions(later)
    assert encoded["customer_id"].iloc[0] != OOV_INDEX
    assert encoded["customer_id"].iloc[1] == OOV_INDEX
    assert encoded["article_id"].iloc[0] != OOV_INDEX
    assert encoded["article_id"].iloc[1] == OOV_INDEX


def test_vocabulary_holds_training_ids_only(fitted: FittedFeatures) -> None:
    cardinality = fitted.schema["article_id"].int_domain.max + 1
    assert cardinality == OOV_INDEX + 1 + 2  # padding, null, OOV, then A and B
    assert fitted.schema["customer_id"].int_domain.max + 1 == OOV_INDEX + 1 + 2


def test_mean_price_comes_from_training_rows_only(fitted: FittedFeatures) -> None:
    # A's training mean (1.0) is below B's (3.0); a validation row at 100.0 must not move it.
    later = rows(["c1", "c2"], ["A", "B"], [100.0, 3.0], "2020-09-10")
    price = fitted.interactions(later)["article_id_price_mean"].to_numpy()
    assert price[0] < price[1]
    assert fitted.articles(later.drop(columns="price"), later["t_dat"])[
        "article_id_price_mean"
    ].tolist() == pytest.approx(price.tolist())


def test_item_frequencies_count_training_purchases_per_encoded_id(fitted: FittedFeatures) -> None:
    encoded = fitted.interactions(
        rows(["c1", "c1", "c2"], ["A", "A", "B"], [1.0, 1.0, 3.0], "2020-09-01")
    )
    freq = fitted.item_frequencies(encoded)
    assert len(freq) == fitted.schema["article_id"].int_domain.max + 1
    a, b = encoded["article_id"].iloc[0], encoded["article_id"].iloc[2]
    assert (freq[a], freq[b]) == (3.0, 2.0)  # counts + 1 smoothing
    assert freq[OOV_INDEX] == 1.0


def test_workflows_survive_the_trip_between_flow_steps(fitted: FittedFeatures) -> None:
    again = FittedFeatures.load(fitted.directory)  # steps pass the workflows' folder
    sample = rows(["c2"], ["B"], [3.0], "2020-09-02")
    pd.testing.assert_frame_equal(again.interactions(sample), fitted.interactions(sample))


def test_codes_encode_the_same_from_int_float_or_nullable_columns() -> None:
    as_int = pd.DataFrame({"article_id": ["A"], **{c: [12] for c in ARTICLE_CODE_COLUMNS}})
    as_float = as_int.astype({c: "float64" for c in ARTICLE_CODE_COLUMNS})
    as_nullable = as_int.astype({c: "Int64" for c in ARTICLE_CODE_COLUMNS})
    expected = prepare_articles(as_int)
    for other in (as_float, as_nullable):
        pd.testing.assert_frame_equal(prepare_articles(other), expected)


@given(codes=st.lists(st.none() | st.integers(0, 10**9), min_size=1, max_size=30))
def test_codes_become_their_text_and_missing_ones_unknown(codes: list[int | None]) -> None:
    """Whatever the column's type (float, nullable Int64, text, categorical): each code
    reads as its digits, a missing one as "unknown", as the workflows' vocabularies hold them."""
    expected = [str(c) if c is not None else "unknown" for c in codes]
    text = [str(c) if c is not None else None for c in codes]
    columns = {
        "float64": pd.Series(codes, dtype="float64"),
        "Int64": pd.Series(codes, dtype="Int64"),
        "object": pd.Series(text, dtype=object),
        "category": pd.Series(text, dtype="category"),
    }
    for dtype, column in columns.items():
        frame = pd.DataFrame(
            {"article_id": ["A"] * len(codes), **dict.fromkeys(ARTICLE_CODE_COLUMNS, column)}
        )
        prepared = prepare_articles(frame)
        for name in ARTICLE_CODE_COLUMNS:
            assert prepared[name].tolist() == expected, dtype


def test_customer_derivations_handle_missing_values() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["c"],
            "age": [None],
            "club_member_status": [None],
            "fashion_news_frequency": [None],
            "FN": [None],
            "Active": [1.0],
            "postal_code": [None],
            "recent_articles": [None],  # bought nothing before
        }
    )
    out = prepare_customers(frame, pd.Timestamp("2020-09-23"))
    assert out.iloc[0].to_dict() == {
        "customer_id": "c",
        "age_bucket": "unknown",
        "club_member_status": "unknown",
        "fashion_news_frequency": "unknown",
        "FN": "0",
        "Active": "1",
        "postal_code": postal_buckets(pd.Series(["unknown"]))[0],
        "month": "9",
        **dict.fromkeys(["recent_1", "recent_2", "recent_3", "recent_4"], "none"),
    }


def test_a_postal_code_lands_in_one_bucket_wherever_its_row_is() -> None:
    # NVTabular's CPU HashBucket mixes the row index into the hash: this would fail with it.
    codes = pd.Series(["p1", "p2", "p1", "p3", "p1"], index=[10, 3, 7, 0, 99])
    buckets = postal_buckets(codes)
    assert buckets[0] == buckets[2] == buckets[4]
    assert postal_buckets(pd.Series(["p1"]))[0] == buckets[0]


def test_fitting_refuses_rows_on_or_after_the_cutoff(tmp_path: Path) -> None:
    late = rows(["c1"], ["A"], [1.0], CUTOFF.date().isoformat())
    with pytest.raises(ValueError, match="before the cutoff"):
        fit_features(late, CUTOFF, tmp_path)


def test_recent_sales_look_at_the_week_before_each_row_and_never_at_its_own() -> None:
    day = pd.Timestamp
    frame = pd.DataFrame(
        {  # window 0 = Sep 1..7, window 1 = Aug 25..31 (cutoff Sep 8)
            "t_dat": [day("2020-08-25")] * 3 + [day("2020-09-01"), day("2020-09-07")],
            "article_id": ["A", "A", "A", "A", "B"],
        }
    )
    sales = RecentSales.from_rows(frame, CUTOFF)
    # A row of Sep 2 sees window 1 (3 purchases of A); its own week (window 0) is unseen.
    assert sales.buckets(pd.Series(["A", "B"]), pd.Series([day("2020-09-02")] * 2)).tolist() == [
        "2",  # floor(log2(1 + 3))
        "0",
    ]
    # The catalogue, as of the cutoff, sees window 0: the last 7 days of training data.
    assert sales.buckets(pd.Series(["A", "B", "C"])).tolist() == ["1", "1", "0"]


def test_recent_sales_survive_the_trip_between_flow_steps(fitted: FittedFeatures) -> None:
    assert fitted.recent_sales.cutoff == CUTOFF
    pd.testing.assert_series_equal(
        RecentSales.load(fitted.directory / RecentSales.FILE).counts, fitted.recent_sales.counts
    )
