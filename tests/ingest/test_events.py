"""Event ids and day ranges (recsys/ingest/events.py), without a broker: the properties the
Kafka and CSV paths rely on (tests/store/test_consumer.py checks them end to end)."""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.ingest.events import (
    ID_SEED,
    MURMUR_M,
    DayRange,
    TransactionEvents,
    add_day_arguments,
    day_range,
    murmur64a,
)
from recsys.ingest.loaders import iter_batches
from recsys.settings import ConfigError

MASK = (1 << 64) - 1
DAYS = [dt.date(2020, 9, 20) + dt.timedelta(days=n) for n in range(3)]
Row = tuple[dt.date, str, str, float, int]
# few values per column, so that generated lists hold identical rows
rows_strategy = st.tuples(
    st.sampled_from(DAYS),
    st.sampled_from(["a" * 64, "0123456789abcdef" * 4]),
    st.sampled_from(["0108775015", "0663713001"]),
    st.sampled_from([0.0508305084745762, 0.05, 0.0]),
    st.sampled_from([1, 2]),
)


def reference_murmur64a(data: bytes, seed: int) -> int:
    """MurmurHash64A as published (Austin Appleby's C code), for keys of whole blocks."""
    r = 47
    h = (seed ^ (len(data) * MURMUR_M)) & MASK
    for (k,) in struct.iter_unpack("<Q", data):
        k = (k * MURMUR_M) & MASK
        k ^= k >> r
        k = (k * MURMUR_M) & MASK
        h ^= k
        h = (h * MURMUR_M) & MASK
    h ^= h >> r
    h = (h * MURMUR_M) & MASK
    return h ^ (h >> r)


@settings(max_examples=50, deadline=None)
@given(
    keys=st.integers(1, 12).flatmap(
        lambda n: st.lists(st.binary(min_size=8 * n, max_size=8 * n), min_size=1, max_size=5)
    )
)
def test_vectorised_murmur_is_murmurhash64a(keys: list[bytes]) -> None:
    words = np.frombuffer(b"".join(keys), dtype="<u8").reshape(len(keys), -1)
    got = murmur64a(list(np.ascontiguousarray(words.T)), len(keys))
    assert got.tolist() == [reference_murmur64a(key, ID_SEED) for key in keys]


def batch_of(rows: list[Row]) -> pa.Table:
    """Rows typed as the loaders type them."""
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return pa.table(
        {
            "t_dat": pa.array(columns[0], pa.date32()),
            "customer_id": pa.array(columns[1], pa.string()),
            "article_id": pa.array(columns[2], pa.string()),
            "price": pa.array(columns[3], pa.float64()),
            "sales_channel_id": pa.array(columns[4], pa.int64()),
        }
    )


def ids_in_batches(rows: list[Row], cuts: list[int], days: DayRange | None = None) -> list[str]:
    """Ids of `rows` given to one TransactionEvents in batches split at `cuts`."""
    events = TransactionEvents(days or DayRange())
    bounds = [0, *sorted(c % (len(rows) + 1) for c in cuts), len(rows)]
    ids: list[str] = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        ids += events.take(batch_of(rows[start:end])).column("event_id").to_pylist()
    return ids


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(rows_strategy, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    data=st.data(),
)
def test_ids_are_equal_exactly_for_the_same_row_and_occurrence(
    rows: list[Row], cuts: list[int], data: st.DataObject
) -> None:
    ids = ids_in_batches(rows, cuts)
    rank = [rows[:i].count(row) for i, row in enumerate(rows)]  # identical rows before it
    for i in range(len(rows)):
        for j in range(len(rows)):
            same = rows[i] == rows[j] and rank[i] == rank[j]
            assert (ids[i] == ids[j]) == same, (rows[i], rows[j])
    assert all(i.startswith(f"{row[0]}:") and i.endswith(f":{k}") for i, row, k in
               zip(ids, rows, rank, strict=True))  # fmt: skip

    # a redelivery in any order and batching: the same events
    shuffled = data.draw(st.permutations(rows))
    assert sorted(ids_in_batches(shuffled, data.draw(st.lists(st.integers(0, 40))))) == sorted(ids)
    # cut at a day: the two parts hold the whole file's ids, none twice
    day = data.draw(st.sampled_from(DAYS))
    before = ids_in_batches(rows, cuts, DayRange(until=day))
    after = ids_in_batches(rows, cuts, DayRange(since=day))
    assert sorted(before + after) == sorted(ids)


def test_an_id_is_the_documented_hash_and_is_frozen() -> None:
    """The hash is MurmurHash64A of the record row_hashes documents. Ids are stored in
    topics and databases: if the literal changes, a redelivery of an old row no longer
    matches it. Change it only with a migration of the stored events."""
    row = (dt.date(2018, 9, 20), "0123456789abcdef" * 4, "0663713001", 0.0508305084745762, 2)
    record = struct.pack("<q", (row[0] - dt.date(1970, 1, 1)).days) + row[1].encode()
    record += struct.pack("<qdq", int(row[2]), row[3], row[4])
    expected = f"{reference_murmur64a(record, ID_SEED):016x}"
    assert ids_in_batches([row, row], []) == [
        f"2018-09-20:{expected}:0",
        f"2018-09-20:{expected}:1",
    ]
    assert expected == "abf68305986668d4"


def test_real_duplicate_lines_are_separate_events(hm_sample: Path) -> None:
    """The Kaggle file's identical lines (several units bought together) get ranks 0, 1, ...:
    10,000 lines, 10,000 distinct ids."""
    events = TransactionEvents()
    ids = [i for b, _ in iter_batches("transactions", hm_sample, batch_rows=1_000)
           for i in events.take(b).column("event_id").to_pylist()]  # fmt: skip
    lines = (hm_sample / "transactions_train.csv").read_text().splitlines()[1:]
    copies = sum(n - 1 for n in collections.Counter(lines).values())
    assert copies > 0 and len(ids) == len(lines) == len(set(ids))
    assert sum(not i.endswith(":0") for i in ids) == copies


def test_day_range_keeps_half_open_days() -> None:
    rows = [(day, "a" * 64, "0108775015", 0.05, 1) for day in DAYS]
    batch = batch_of(rows)
    ranges = [DayRange(*r) for r in [(DAYS[1], None), (None, DAYS[1]), (DAYS[0], DAYS[2])]]
    kept = {str(r): r.keep(batch).column("t_dat").to_pylist() for r in [*ranges, DayRange()]}
    assert list(kept.values()) == [DAYS[1:], DAYS[:1], DAYS[:2], DAYS]
    assert list(kept) == [
        "days from 2020-09-21",
        "days before 2020-09-21",
        "days from 2020-09-20 before 2020-09-22",
        "all days",
    ]
    with pytest.raises(ConfigError, match="--from 2020-09-21 is not before --until 2020-09-21"):
        DayRange(DAYS[1], DAYS[1])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--until", "2020-09-31"], "--until='2020-09-31': expected a calendar day YYYY-MM-DD"),
        (["--from", "20200916"], "--from='20200916': expected a calendar day"),
        (["--from", "2020-09-16", "--until", "2020-09-01"], "is not before --until"),
    ],
)
def test_bad_days_on_the_command_line_name_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    parser = argparse.ArgumentParser(prog="producer")
    add_day_arguments(parser)
    with pytest.raises(SystemExit) as exited:
        day_range(parser.parse_args(argv), parser)
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_until_defaults_to_the_setting_and_the_flag_wins() -> None:
    parser = argparse.ArgumentParser()
    add_day_arguments(parser)
    setting = dt.date(2020, 9, 16)
    assert day_range(parser.parse_args([]), parser, until=setting) == DayRange(until=setting)
    flag = parser.parse_args(["--until", "2020-09-10"])
    assert day_range(flag, parser, until=setting) == DayRange(until=dt.date(2020, 9, 10))
