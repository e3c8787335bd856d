"""The training rows as Parquet parts: how the work is cut never changes what is trained on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import merlin.io
import numpy as np
import pandas as pd
import pytest

from recsys.store.engine import open_engine
from recsys.train import dataset
from recsys.train.features import fit_workflows
from tests.fixtures_engine import engine_settings_for

CUTOFF = dt.date(2020, 9, 9)
PRICE_TOLERANCE = 1e-5  # the mean price is summed part by part: float32 rounding only


@pytest.fixture(scope="module")
def tiny_engine(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory):
    engine = open_engine(engine_settings_for(tmp_path_factory.mktemp("dataset-engine")))
    engine.apply()
    engine.load_csv(tiny_data)
    engine.set_training_settings(min_purchases=2, cutoff=CUTOFF)
    yield engine
    engine.close()


def write(
    engine,
    out: Path,
    part_rows: int,
    fraction: float = 1.0,
    orders: int = 1,
    since: dt.date | None = None,
) -> dataset.TrainingParts:
    sales = dataset.recent_sales(engine, CUTOFF)
    return dataset.write_training_parts(engine, sales, out, part_rows, fraction, orders, since)


def rows_of(parts: dataset.TrainingParts, order: int = 0) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in parts.orders[order]], ignore_index=True)


def test_many_parts_hold_the_same_rows_in_the_same_order_as_one(tiny_engine, tmp_path) -> None:
    one = write(tiny_engine, tmp_path / "one", part_rows=1_000_000, orders=2)
    many = write(tiny_engine, tmp_path / "many", part_rows=1_000, orders=2)
    view = tiny_engine.query("SELECT customer_id, article_id FROM filtered_dataframe_t")
    assert len(one.orders[0]) == 1 and len(many.orders[0]) >= 8
    assert one.rows == many.rows == len(view)
    for order in (0, 1):
        pd.testing.assert_frame_equal(rows_of(one, order), rows_of(many, order))
    # Each epoch's order holds the same rows in another order.
    first, second = rows_of(one, 0), rows_of(one, 1)
    assert not first["article_id"].equals(second["article_id"])
    columns = list(first.columns)
    pd.testing.assert_frame_equal(
        first.sort_values(columns).reset_index(drop=True),
        second.sort_values(columns).reset_index(drop=True),
    )
    engine_order = view["article_id"].tolist()
    assert rows_of(one)["article_id"].tolist() != engine_order  # really reordered
    assert sorted(rows_of(one)["article_id"]) == sorted(engine_order)  # every row once


def test_a_sample_is_the_same_rows_however_the_work_is_cut(tiny_engine, tmp_path) -> None:
    whole = rows_of(write(tiny_engine, tmp_path / "all", part_rows=1_000_000))
    half_one = rows_of(write(tiny_engine, tmp_path / "h1", part_rows=1_000_000, fraction=0.5))
    half_many = rows_of(write(tiny_engine, tmp_path / "h2", part_rows=1_000, fraction=0.5))
    pd.testing.assert_frame_equal(half_one, half_many)
    assert 0.4 * len(whole) < len(half_one) < 0.6 * len(whole)
    keys = ["customer_id", "article_id", "month"]
    assert set(map(tuple, half_one[keys].to_numpy())) <= set(map(tuple, whole[keys].to_numpy()))


def test_encoded_features_do_not_depend_on_the_part_size(tiny_engine, tmp_path) -> None:
    encoded = {}
    for name, part_rows in (("one", 1_000_000), ("many", 1_000)):
        parts = write(tiny_engine, tmp_path / name, part_rows)
        sales = dataset.recent_sales(tiny_engine, CUTOFF)
        features = fit_workflows(parts.dataset(), sales, tmp_path / f"{name}-workflows")
        paths = features.encode(parts.dataset(), tmp_path / f"{name}-encoded")
        assert len(paths) == len(parts.orders[0])
        encoded[name] = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
        frequencies = features.item_frequencies(merlin.io.Dataset([str(p) for p in paths]))
        assert frequencies.sum() == len(encoded[name]) + len(frequencies)  # +1 smoothing each
    one, many = encoded["one"], encoded["many"]
    assert list(one.columns) == list(many.columns)
    for column in one.columns:
        if one[column].dtype.kind == "f":
            np.testing.assert_array_equal(one[column], many[column])
        else:
            assert one[column].equals(many[column]), column


def test_recent_sales_counted_by_the_engine_match_counting_the_rows(tiny_engine) -> None:
    from recsys.train.features import RecentSales

    rows = tiny_engine.query(
        "SELECT t_dat, article_id FROM joined_transactions_t WHERE t_dat < $1", [CUTOFF]
    )
    by_rows = RecentSales.from_rows(rows, pd.Timestamp(CUTOFF)).counts.sort_index()
    by_engine = dataset.recent_sales(tiny_engine, CUTOFF).counts.sort_index()
    assert by_engine.astype("int64").equals(by_rows.astype("int64"))


def test_a_training_window_keeps_only_the_rows_since_its_first_day(tiny_engine, tmp_path) -> None:
    since = CUTOFF - dt.timedelta(weeks=4)
    window = write(tiny_engine, tmp_path / "window", part_rows=1_000, since=since)
    whole = write(tiny_engine, tmp_path / "whole", part_rows=1_000)
    expected = tiny_engine.query(
        "SELECT customer_id, article_id FROM filtered_dataframe_t WHERE t_dat >= $1", [since]
    )
    assert 0 < window.rows == len(expected) < whole.rows
    got = rows_of(window)
    assert sorted(zip(got["customer_id"], got["article_id"], strict=True)) == sorted(
        zip(expected["customer_id"], expected["article_id"], strict=True)
    )
