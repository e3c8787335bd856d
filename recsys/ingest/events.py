"""Transactions as events: the id that makes a redelivery recognisable, and the days a run keeps.

Why ids from the content: a shop sends tomorrow's purchases as a new
`transactions_train.csv`, so ids made of file name and line would repeat old ones and the
dedup view would drop the new rows as redeliveries. An event is identified by what it is:
`<t_dat>:<hash>:<k>`, where `hash` is MurmurHash64A of the row's typed fields and `k`
counts the identical rows of that day before it (0 for the first). H&M has real identical
lines (several units of one article, same customer, day, price and channel): they are
distinct purchases and get ranks 0, 1, ...; the k-th identical row of a day has the same id
in whatever file, order or batch it comes, so re-sending a file, or a reordering of it,
adds nothing. The limit this implies: the identical rows of one day must come in one file
(a file split in the middle of a day's identical rows would look like a redelivery).

Why a day range: a replay through Kafka must send only what the initial load left out.
The range is half-open, so `--until D` and `--from D` split a file into two parts with
no row in both or in neither, and the ranks (counted per day) are the same in the parts
as in the whole file.

The producer (`recsys.ingest.producer`) and the embedded engine's CSV path (`Engine.load_csv`)
both take their transactions through `TransactionEvents`: one definition of both rules.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys.settings import ConfigError, parse_day

MURMUR_M = 0xC6A4A7935BD1E995  # MurmurHash64A's multiplier and shift (Austin Appleby)
MURMUR_R = 47
ID_SEED = 0x4845_4D5F  # fixed: changing it changes every id, and old events stop matching
CUSTOMER_ID_BYTES = 64
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@dataclass(frozen=True)
class DayRange:
    """Transaction days kept: on or after `since` (`--from`), strictly before `until`."""

    since: dt.date | None = None
    until: dt.date | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise ConfigError(
                f"--from {self.since} is not before --until {self.until}: no day is in the range"
            )

    def keep(self, batch: pa.Table) -> pa.Table:
        """The rows of `batch` whose t_dat is in the range."""
        days = batch.column("t_dat")
        conditions = []
        if self.since is not None:
            conditions.append(pc.greater_equal(days, pa.scalar(self.since, pa.date32())))
        if self.until is not None:
            conditions.append(pc.less(days, pa.scalar(self.until, pa.date32())))
        if not conditions:
            return batch
        mask = conditions[0] if len(conditions) == 1 else pc.and_(*conditions)
        return batch.filter(mask)

    def __str__(self) -> str:
        """E.g. "days from 2020-09-16 before 2020-09-23", for reports."""
        since = f" from {self.since}" if self.since else ""
        until = f" before {self.until}" if self.until else ""
        return f"days{since}{until}" if since or until else "all days"


def add_day_arguments(parser: argparse.ArgumentParser, until_help: str = "") -> None:
    """`--from` and `--until` for a command line (the producer's, the CSV loader's)."""
    parser.add_argument("--from", dest="since", metavar="YYYY-MM-DD",
                        help="transactions on or after this day only")  # fmt: skip
    parser.add_argument("--until", metavar="YYYY-MM-DD",
                        help="transactions strictly before this day only" + until_help)  # fmt: skip


def day_range(
    args: argparse.Namespace, parser: argparse.ArgumentParser, until: dt.date | None = None
) -> DayRange:
    """The range of `--from`/`--until` (`until` when --until is not given); a malformed
    day or a range with no day stops like any bad flag (exit status 2), naming the flag."""
    try:
        return DayRange(
            since=parse_day("--from", args.since) if args.since is not None else None,
            until=parse_day("--until", args.until) if args.until is not None else until,
        )
    except ConfigError as error:
        parser.error(str(error))


@dataclass
class TransactionEvents:
    """The transactions of one file, batch by batch in file order: rows outside `days`
    dropped (counted in `skipped`), an `event_id` column added to the others.

    Keeps, per day, every distinct row hash seen and how often (12 bytes per distinct
    row: about 350 MB for the 31.8 M-row Kaggle file), so that the k-th identical row
    gets rank k even when its copies are far apart in the file.
    """

    days: DayRange = field(default_factory=DayRange)
    skipped: int = 0
    _seen: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def take(self, batch: pa.Table) -> pa.Table:
        kept = self.days.keep(batch)
        self.skipped += batch.num_rows - kept.num_rows
        return kept.append_column("event_id", self._ids(kept))

    def _ids(self, batch: pa.Table) -> pa.Array:
        """`<t_dat>:<hash>:<rank>` of each row, the rank counting earlier identical rows of
        the same day in this and the earlier batches."""
        days = pc.cast(batch.column("t_dat"), pa.int32()).to_numpy()
        hashes = row_hashes(batch)
        ranks = self._ranks(days, hashes)
        return pc.binary_join_element_wise(
            pc.cast(batch.column("t_dat"), pa.string()),
            _hex(hashes),
            pc.cast(pa.array(ranks), pa.string()),
            ":",
        )

    def _ranks(self, days: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        """Occurrence rank of each row among identical rows (same day and hash) so far."""
        count = len(hashes)
        order = np.lexsort((hashes, days))
        day, value = days[order], hashes[order]
        starts = np.ones(count, dtype=bool)
        starts[1:] = (day[1:] != day[:-1]) | (value[1:] != value[:-1])
        first = np.flatnonzero(starts)
        group = np.cumsum(starts) - 1
        sizes = np.diff(np.append(first, count))
        earlier = np.zeros(len(first), dtype=np.int64)
        group_days, group_hashes = day[first], value[first]
        for d in np.unique(group_days):
            in_day = group_days == d
            earlier[in_day] = self._count_and_add(int(d), group_hashes[in_day], sizes[in_day])
        ranks = np.empty(count, dtype=np.int64)
        ranks[order] = earlier[group] + np.arange(count) - first[group]
        return ranks

    def _count_and_add(self, day: int, hashes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """How often each of `hashes` (distinct, sorted) was seen on `day`; then add `sizes`."""
        seen, counts = self._seen.get(day, (np.empty(0, np.uint64), np.empty(0, np.uint32)))
        at = np.searchsorted(seen, hashes)
        found = at < len(seen)
        found[found] = seen[at[found]] == hashes[found]
        before = np.zeros(len(hashes), dtype=np.int64)
        before[found] = counts[at[found]]
        counts[at[found]] += sizes[found].astype(np.uint32)
        new = ~found  # inserted where they sort: the day's hashes stay sorted
        self._seen[day] = (
            np.insert(seen, at[new], hashes[new]),
            np.insert(counts, at[new], sizes[new].astype(np.uint32)),
        )
        return before


def row_hashes(batch: pa.Table) -> np.ndarray:
    """MurmurHash64A (seed ID_SEED) of each row's 96-byte record: t_dat as days since
    1970 (int64), the 64 characters of customer_id, article_id as an integer, the price's
    float64 bits (-0.0 counted as 0.0) and sales_channel_id, little-endian 8-byte words.

    Typed values, not the CSV text: "0.05" and "0.050" are the same purchase.
    """
    customer = _fixed_width(batch.column("customer_id"), CUSTOMER_ID_BYTES).view("<u8")
    blocks = [
        pc.cast(batch.column("t_dat"), pa.int32()).to_numpy().astype(np.int64).view(np.uint64),
        *np.ascontiguousarray(customer.T),
        pc.cast(batch.column("article_id"), pa.int64()).to_numpy().view(np.uint64),
        (batch.column("price").to_numpy() + 0.0).view(np.uint64),
        batch.column("sales_channel_id").to_numpy().view(np.uint64),
    ]
    return murmur64a(blocks, batch.num_rows)


def murmur64a(blocks: Sequence[np.ndarray], rows: int) -> np.ndarray:
    """MurmurHash64A of `rows` keys made of the 8-byte blocks `blocks[0][i], blocks[1][i],
    ...` (little-endian uint64, no tail), vectorised over keys: NumPy's uint64 arithmetic
    wraps modulo 2**64 as the C code's does."""
    m, r = np.uint64(MURMUR_M), np.uint64(MURMUR_R)
    start = (ID_SEED ^ (len(blocks) * 8 * MURMUR_M)) & 0xFFFF_FFFF_FFFF_FFFF
    h = np.full(rows, start, dtype=np.uint64)
    k = np.empty(rows, dtype=np.uint64)
    for block in blocks:
        np.multiply(block, m, out=k)
        k ^= k >> r
        k *= m
        h ^= k
        h *= m
    h ^= h >> r
    h *= m
    h ^= h >> r
    return h


def _fixed_width(values: pa.ChunkedArray | pa.Array, width: int) -> np.ndarray:
    """The bytes of strings that all have `width` bytes, as a (rows, width) array (no copy
    per value: the loaders have checked the ids' format)."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1,
                            offset=array.offset * 4)  # fmt: skip
    if len(array) and (array.null_count or np.any(np.diff(offsets) != width)):
        raise ValueError(f"expected {width}-character ids without nulls")
    data = np.frombuffer(array.buffers()[2] or b"", dtype=np.uint8)
    return np.ascontiguousarray(data[offsets[0] : offsets[0] + width * len(array)]).reshape(
        len(array), width
    )


def _hex(hashes: np.ndarray) -> pa.Array:
    """16 lowercase hex digits per hash, as Arrow strings."""
    raw = hashes.astype(">u8").view(np.uint8).reshape(-1, 8)
    digits = np.empty((len(hashes), 16), dtype=np.uint8)
    digits[:, 0::2], digits[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 15]
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), len(hashes), [None, pa.py_buffer(digits.tobytes())]
    )
    return fixed.cast(pa.binary()).cast(pa.string())
