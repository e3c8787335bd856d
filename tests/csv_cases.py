"""Hypothesis strategies for the bad-input tests: transactions CSV files mixing good rows
with bad lines of every kind, and the expected outcome computed independently of the
loaders (which line is good, and its values)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
from hypothesis import strategies as st

from recsys.datasets.hm_schema import TABLES
from recsys.ingest.events import TransactionEvents
from recsys.ingest.loaders import MAX_LINE_BYTES

TX_HEADER = b"t_dat,customer_id,article_id,price,sales_channel_id\n"
HEX = "0123456789abcdef"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Row:
    """A valid transaction and its typed values."""

    t_dat: dt.date
    customer_id: str
    article_id: str
    price: float
    sales_channel_id: int

    def fields(self) -> list[str]:
        return [
            self.t_dat.isoformat(),
            self.customer_id,
            self.article_id,
            repr(self.price),
            str(self.sales_channel_id),
        ]

    def values(self) -> dict:
        return {
            "t_dat": self.t_dat,
            "customer_id": self.customer_id,
            "article_id": self.article_id,
            "price": self.price,
            "sales_channel_id": self.sales_channel_id,
        }


rows = st.builds(
    Row,
    t_dat=st.dates(dt.date(2018, 1, 1), dt.date(2021, 12, 31)),
    customer_id=st.text(HEX, min_size=64, max_size=64),
    article_id=st.text("0123456789", min_size=10, max_size=10),
    price=st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
    sales_channel_id=st.integers(INT64_MIN, INT64_MAX),
)


@st.composite
def good_line(draw: st.DrawFn) -> tuple[bytes, Row]:
    """A valid row; sometimes with one field legally quoted (quotes alone are no fault)."""
    row = draw(rows)
    fields = row.fields()
    quoted = draw(st.none() | st.integers(0, 4))
    if quoted is not None:
        fields[quoted] = f'"{fields[quoted]}"'
    return (",".join(fields) + "\n").encode(), row


def _replace(field: int, value: str):  # noqa: ANN202
    return lambda fields: [*fields[:field], value, *fields[field + 1 :]]


BAD_FIELDS = {
    "impossible date": _replace(0, "2020-02-30"),
    "not a leap year": _replace(0, "2021-02-29"),
    "month 13": _replace(0, "2020-13-01"),
    "short date": _replace(0, "2020-9-1"),
    "price overflows": _replace(3, "1e999"),
    "price nan": _replace(3, "nan"),
    "price text": _replace(3, "abc"),
    "channel above BIGINT": _replace(4, str(INT64_MAX + 1)),
    "channel 10^30": _replace(4, "1" + "0" * 30),
    "channel fraction": _replace(4, "1.5"),
    "empty customer": _replace(1, ""),
    "column missing": lambda fields: fields[:-1],
    "column extra": lambda fields: [*fields, "2"],
    "unclosed quote": lambda fields: [fields[0], '"' + fields[1], *fields[2:]],
}


@st.composite
def bad_lines(draw: st.DrawFn) -> list[bytes]:
    """One fault: the physical lines it makes (a quoted newline makes two)."""
    kind = draw(
        st.sampled_from([*BAD_FIELDS, "bad byte", "quoted newline", "empty", "huge", "nul"])
    )
    fields = draw(rows).fields()
    if kind in BAD_FIELDS:
        return [(",".join(BAD_FIELDS[kind](fields)) + "\n").encode()]
    if kind == "bad byte":
        return [(",".join(fields) + "\n").encode().replace(b",", b"\xff,", 1)]
    if kind == "quoted newline":
        return [f'{fields[0]},"{fields[1][:20]}\n'.encode(), f'{fields[1][20:]}",1,2,3\n'.encode()]
    if kind == "empty":
        return [b"\n"]
    if kind == "nul":
        return [(",".join(fields) + "\n").encode().replace(b",", b"\x00,", 1)]
    return [(",".join(fields) + "," + "x" * (MAX_LINE_BYTES + 10) + "\n").encode()]


@dataclass(frozen=True)
class CsvCase:
    """A file's bytes and what must come of it: line -> row for the good lines."""

    data: bytes
    good: dict[int, Row]
    lines: int  # physical lines after the header

    def event_ids(self) -> dict[int, str]:
        """line -> event id of each good row, from its typed values (not the loaders')."""
        lines = sorted(self.good)
        rows = [self.good[line].values() for line in lines]
        batch = pa.Table.from_pylist(rows, schema=TABLES["transactions"].arrow_schema)
        ids = TransactionEvents().take(batch).column("event_id").to_pylist()
        return dict(zip(lines, ids, strict=True))


@st.composite
def csv_files(draw: st.DrawFn, max_lines: int = 60) -> CsvCase:
    parts = draw(
        st.lists(st.one_of(good_line().map(lambda g: [g]), bad_lines()), max_size=max_lines)
    )
    body, good, line = [TX_HEADER], {}, 2
    for part in parts:
        for item in part:
            text, row = item if isinstance(item, tuple) else (item, None)
            body.append(text)
            if row is not None:
                good[line] = row
            line += 1
    return CsvCase(b"".join(body), good, line - 2)
