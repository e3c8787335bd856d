"""The shared loaders: real Kaggle rows parse exactly, bad rows are reported with file and line."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from recsys.datasets.hm_schema import TABLES
from recsys.ingest.loaders import (
    MAX_LINE_BYTES,
    RAW_KEPT_CHARS,
    RowError,
    SchemaError,
    iter_batches,
    read_table,
)
from tests.csv_cases import CsvCase, csv_files

TX_HEADER = "t_dat,customer_id,article_id,price,sales_channel_id\n"
CUSTOMER = "a" * 64
GOOD_ROW = f"2020-09-01,{CUSTOMER},0108775015,0.0508305084745762,2\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("table", ["articles", "customers", "transactions"])
def test_real_kaggle_rows_parse_without_rejects(hm_sample: Path, table: str) -> None:
    frame, errors = read_table(table, hm_sample)
    assert errors == []
    source_rows = sum(1 for _ in (hm_sample / TABLES[table].file).open()) - 1
    assert len(frame) == source_rows
    assert list(frame.columns) == [*TABLES[table].column_names, "_line"]


def test_real_ids_keep_leading_zeros_and_nulls(hm_sample: Path) -> None:
    articles, _ = read_table("articles", hm_sample)
    assert articles["article_id"].str.fullmatch(r"0\d{9}").all()
    assert articles["product_code"].str.len().eq(7).all()
    assert articles.loc[0, "article_id"] == "0108775015"
    customers, _ = read_table("customers", hm_sample)
    assert customers["FN"].isna().mean() > 0.4  # empty FN is NULL, not 0 and not an error
    assert set(customers["FN"].dropna()) == {1.0}
    assert customers["age"].dtype == "Int64"
    tx, _ = read_table("transactions", hm_sample)
    assert tx["t_dat"].min() == pd.Timestamp("2018-09-20")
    assert set(tx["sales_channel_id"]) <= {1, 2}


def test_malformed_rows_are_reported_with_line_and_reason(tmp_path: Path) -> None:
    rows = [
        GOOD_ROW,  # line 2
        f"2020-09-01,{CUSTOMER},0108775015,0.05\n",  # 3: a column short
        f"2020-13-01,{CUSTOMER},0108775015,0.05,2\n",  # 4: bad date
        f"2020-09-01,{CUSTOMER},0108775015,abc,2\n",  # 5: bad price
        "2020-09-01,,0108775015,0.05,2\n",  # 6: empty id
        f"2020-09-01,{CUSTOMER},108775015,0.05,2\n",  # 7: id lost its zero
        "\n",  # 8: empty line
        GOOD_ROW.replace(",2\n", ",1\n"),  # 9
    ]
    data = write(tmp_path, "transactions_train.csv", TX_HEADER + "".join(rows))
    frame, errors = read_table("transactions", data)
    assert frame["_line"].tolist() == [2, 9]
    assert frame["sales_channel_id"].tolist() == [2, 1]
    by_line = {e.line: e for e in errors}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8]
    assert "expected 5 columns, found 4" in by_line[3].reason
    assert "t_dat" in by_line[4].reason and "2020-13-01" in by_line[4].reason
    assert "price is not a finite number: 'abc'" in by_line[5].reason
    assert "empty customer_id" in by_line[6].reason
    assert "article_id" in by_line[7].reason
    assert all(e.file == "transactions_train.csv" for e in errors)
    assert by_line[5].raw == f"2020-09-01,{CUSTOMER},0108775015,abc,2"
    assert len(frame) + len(errors) == len(rows)  # read = accepted + rejected


def test_line_numbers_stay_right_across_batches(tmp_path: Path) -> None:
    rows = [GOOD_ROW] * 30_000
    rows[10_000] = "broken\n"  # line 10,002
    rows[25_000] = GOOD_ROW.replace("0.0508", "x.0508")  # line 25,002
    data = write(tmp_path, "transactions_train.csv", TX_HEADER + "".join(rows))
    lines, errors = [], []
    batches = 0
    for valid, rejected in iter_batches("transactions", data, batch_rows=1_000):
        lines.extend(valid.column("_line").to_pylist())
        errors.extend(rejected)
        batches += 1
    assert batches >= 3
    assert [e.line for e in errors] == [10_002, 25_002]
    assert lines == [n for n in range(2, 30_002) if n not in (10_002, 25_002)]


def test_quoted_commas_in_description(tmp_path: Path, hm_sample: Path) -> None:
    header = (hm_sample / "articles.csv").open().readline()
    row = (
        "0108775015,0108775,Strap top,253,Vest top,Garment Upper body,1010016,Solid,9,Black,4,"
        "Dark,5,Black,1676,Jersey Basic,A,Ladieswear,1,Ladieswear,16,Womens Everyday Basics,"
        '1002,Jersey Basic,"Top with straps, a ""soft"" feel, and more."\n'
    )
    frame, errors = read_table("articles", write(tmp_path, "articles.csv", header + row))
    assert errors == []
    assert frame.loc[0, "detail_desc"] == 'Top with straps, a "soft" feel, and more.'


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="transactions_train.csv"):
        read_table("transactions", tmp_path)


def test_wrong_header_names_file_and_columns(tmp_path: Path, hm_sample: Path) -> None:
    shutil.copy(hm_sample / "customers.csv", tmp_path / "transactions_train.csv")
    with pytest.raises(SchemaError, match=r"transactions_train.csv:1: header"):
        read_table("transactions", tmp_path)


# ---------------------------------------------------------------- bad input (issue 14)


def loaded(data_dir: Path, batch_rows: int = 500_000) -> tuple[dict[int, dict], dict[int, str]]:
    """line -> typed row, line -> reason, checking the batches cover consecutive lines."""
    rows, reasons, next_line = {}, {}, 2
    for valid, rejected in iter_batches("transactions", data_dir, batch_rows=batch_rows):
        batch = {r.pop("_line"): r for r in valid.to_pylist()} | {e.line: e for e in rejected}
        assert sorted(batch) == list(range(next_line, next_line + len(batch)))
        next_line += len(batch)
        rows.update({line: r for line, r in batch.items() if isinstance(r, dict)})
        reasons.update({line: e.reason for line, e in batch.items() if isinstance(e, RowError)})
    return rows, reasons


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=csv_files())
def test_every_line_is_loaded_or_reported(case: CsvCase) -> None:
    """Random bad lines among good ones: loaded + reported = lines, good rows exact."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "transactions_train.csv").write_bytes(case.data)
        rows, reasons = loaded(Path(tmp), batch_rows=7)
    assert len(rows) + len(reasons) == case.lines
    assert rows == {line: row.values() for line, row in case.good.items()}


def test_unbalanced_quote_loses_no_lines(tmp_path: Path) -> None:
    rows = [GOOD_ROW] * 3_000
    rows[999] = GOOD_ROW.replace(f",{CUSTOMER}", f',"{CUSTOMER}')  # line 1,001: never closed
    rows[1_999] = f'2020-09-01,"{CUSTOMER[:10]}\n'  # lines 2,001-2,002: a quoted newline
    rows[2_000] = f'{CUSTOMER[10:]}",0108775015,0.05,2\n'
    write(tmp_path, "transactions_train.csv", TX_HEADER + "".join(rows))
    good, reasons = loaded(tmp_path, batch_rows=500)
    assert sorted(reasons) == [1_001, 2_001, 2_002]
    assert "quoted field that does not close" in reasons[1_001]
    assert len(good) == 2_997 and max(good) == 3_001  # line numbers (event ids) not shifted


def test_impossible_dates_and_numbers_are_refused(tmp_path: Path) -> None:
    cases = {
        "2020-02-30": "t_dat is not a calendar date",
        "2021-02-29": "t_dat is not a calendar date",
        "2020-04-31": "t_dat is not a calendar date",
        "0000-01-01": "t_dat is not a calendar date",
    }
    numbers = {
        ("1e999", "2"): "price is not a finite number",
        ("nan", "2"): "price is not a finite number",
        ("0.05", "9223372036854775808"): "sales_channel_id is not an integer within BIGINT",
        ("0.05", "1" + "0" * 30): "sales_channel_id is not an integer within BIGINT",
    }
    lines = [f"{day},{CUSTOMER},0108775015,0.05,2\n" for day in cases]
    lines += [f"2020-02-29,{CUSTOMER},0108775015,{p},{c}\n" for p, c in numbers]
    lines.append(f"2020-02-29,{CUSTOMER},0108775015,0.05,-9223372036854775808\n")
    write(tmp_path, "transactions_train.csv", TX_HEADER + "".join(lines))
    good, reasons = loaded(tmp_path)
    expected = [*cases.values(), *numbers.values()]
    assert all(reasons[line].startswith(why) for line, why in enumerate(expected, start=2))
    assert good == {
        10: {
            "t_dat": dt.date(2020, 2, 29),
            "customer_id": CUSTOMER,
            "article_id": "0108775015",
            "price": 0.05,
            "sales_channel_id": -(2**63),
        }
    }


def test_bad_byte_huge_line_and_bom_are_reported_by_line(tmp_path: Path) -> None:
    rows = [GOOD_ROW.encode()] * 20
    rows[3] = GOOD_ROW.replace("0.05", "0.\xff05").encode("latin-1")  # line 5
    rows[7] = GOOD_ROW.replace(",2\n", "," + "x" * 10_000_000 + "\n").encode()  # line 9
    (tmp_path / "transactions_train.csv").write_bytes(
        b"\xef\xbb\xbf" + TX_HEADER.encode() + b"".join(rows)
    )
    size = len(rows[7]) - 1
    for batch_rows in (1, 500_000):  # the huge line across blocks, and inside one
        good, reasons = loaded(tmp_path, batch_rows=batch_rows)
        too_long = f"line of {size:,} bytes: longer than {MAX_LINE_BYTES:,}"
        assert reasons == {5: "not UTF-8 text", 9: too_long}
        assert sorted(good) == [n for n in range(2, 22) if n not in (5, 9)]
        errors = [
            e for _, batch in iter_batches("transactions", tmp_path, batch_rows) for e in batch
        ]
        huge = next(e for e in errors if e.line == 9)
        assert huge.raw_bytes == size and len(huge.raw) == RAW_KEPT_CHARS
