"""The embedded engine's behaviour: apply/drop, CSV loading with rejects, settings,
file locking between processes, and the RisingWave side that can run without a server."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from recsys.datasets.hm_schema import TABLES
from recsys.ingest.events import DayRange
from recsys.settings import Settings
from recsys.store import risingwave as engine_module
from recsys.store.engine import NEW_PURCHASES_SQL, DuckDBEngine, EngineError, open_engine
from recsys.store.sql_objects import load_objects, render_risingwave
from tests.fixtures_engine import engine_settings_for, insert_raw, rows_of

HEX = "0123456789abcdef" * 4
VIEWS = {obj.name for obj in load_objects() if obj.is_view}
TABLE_NAMES = {obj.name for obj in load_objects() if not obj.is_view}


def catalogue(engine: DuckDBEngine) -> set[tuple[str, str]]:
    return set(
        rows_of(
            engine,
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = 'main'",
        )
    )


def test_apply_creates_every_object_and_is_idempotent(embedded_engine: DuckDBEngine) -> None:
    first = catalogue(embedded_engine)
    assert {name for name, kind in first if kind == "VIEW"} == VIEWS
    assert {name for name, kind in first if kind == "BASE TABLE"} == TABLE_NAMES | {
        "rejects",
        "kafka_offsets",
    }
    insert_raw(embedded_engine, "images", [{"article_id": "0000000001", "image_path": "x.jpg"}])
    embedded_engine.set_training_settings(min_purchases=5, cutoff=dt.date(2020, 9, 15))

    embedded_engine.apply()

    assert catalogue(embedded_engine) == first
    assert rows_of(embedded_engine, "SELECT COUNT(*) FROM images_t") == [(1,)]
    assert embedded_engine.training_settings() == (5, dt.date(2020, 9, 15))


def test_drop_removes_everything(embedded_engine: DuckDBEngine) -> None:
    embedded_engine.drop()
    assert catalogue(embedded_engine) == set()
    embedded_engine.apply()  # and it comes back
    assert len(catalogue(embedded_engine)) == len(VIEWS) + len(TABLE_NAMES) + 2  # rejects, offsets


def write_csvs(data_dir: Path, transactions: list[str]) -> None:
    """Tiny Kaggle-shaped files; `transactions` are the data lines after the header."""
    article = "0108775015,0108775,Strap top,253,Vest top,Garment Upper body,1010016,Solid,9,"
    article += "Black,4,Dark,5,Black,1676,Jersey Basic,A,Ladieswear,1,Ladieswear,16,"
    article += 'Womens Everyday Basics,1002,Jersey Basic,"Jersey top, narrow straps."'
    files = {
        "articles": [article],
        "customers": [f"{HEX},,,ACTIVE,NONE,49.0,{HEX}"],
        "images": ["0108775015,images/010/0108775015.jpg"],
        "transactions": transactions,
    }
    for table, lines in files.items():
        header = ",".join(TABLES[table].column_names)
        (data_dir / TABLES[table].file).write_text("\n".join([header, *lines]) + "\n")


def test_keyed_tables_keep_the_latest_row_per_key(embedded_engine: DuckDBEngine) -> None:
    """RisingWave's keyed tables overwrite on conflict; DuckDB's writer does the same,
    within one batch and across batches."""
    a, b = "a" * 64, "b" * 64
    insert_raw(
        embedded_engine,
        "customers",
        [
            {"customer_id": a, "age": 20},
            {"customer_id": b, "age": 30},
            {"customer_id": a, "age": 21},
        ],
    )
    insert_raw(embedded_engine, "customers", [{"customer_id": b, "age": 31}])

    assert rows_of(
        embedded_engine, "SELECT customer_id, age FROM customers_raw ORDER BY customer_id"
    ) == [(a, 21), (b, 31)]


def test_load_csv_fills_base_tables_and_keeps_bad_rows_aside(tmp_path: Path) -> None:
    write_csvs(
        tmp_path,
        [
            f"2020-09-01,{HEX},0108775015,0.05,2",
            f"2020-09-01,{HEX},0108775015,0.05,2",  # second unit, same day
            f"2020-13-01,{HEX},0108775015,0.05,2",  # line 4: impossible date
            f"2020-09-02,{HEX},0108775015,not-a-price,1",  # line 5
            f"2020-09-03,{HEX},0108775015,0.07,1",
        ],
    )
    with open_engine(engine_settings_for(tmp_path)) as engine:
        engine.apply()
        report = engine.load_csv(tmp_path)
        assert report.rows == {"articles": 1, "customers": 1, "images": 1, "transactions": 3}
        assert report.rejected == 2
        rejects = rows_of(engine, "SELECT source, file, line, reason FROM rejects ORDER BY line")
        assert [(s, f, n) for s, f, n, _ in rejects] == [
            ("csv", "transactions_train.csv", 4),
            ("csv", "transactions_train.csv", 5),
        ]
        assert "t_dat" in rejects[0][3] and "price" in rejects[1][3]
        ids = rows_of(engine, "SELECT event_id FROM transactions_raw ORDER BY event_id")
        (day1, hash1, rank1), (day2, hash2, rank2), (day3, hash3, rank3) = (
            i.split(":") for (i,) in ids
        )  # the two identical rows: one hash, ranks 0 and 1 (two units, two events)
        assert (day1, day2, day3) == ("2020-09-01", "2020-09-01", "2020-09-03")
        assert hash1 == hash2 != hash3 and (rank1, rank2, rank3) == ("0", "1", "0")
        assert rows_of(engine, "SELECT t_dat, units FROM dedup_transactions_t ORDER BY 1") == [
            (dt.date(2020, 9, 1), 2),
            (dt.date(2020, 9, 3), 1),
        ]
        assert rows_of(engine, "SELECT detail_desc, age FROM articles_t, customers_t") == [
            ("Jersey top, narrow straps.", 49)
        ]

        engine.load_csv(tmp_path)  # loading again replaces, never doubles
        assert rows_of(engine, "SELECT COUNT(*) FROM transactions_raw") == [(3,)]
        assert rows_of(engine, "SELECT COUNT(*) FROM rejects") == [(2,)]


def test_load_csv_keeps_the_days_asked_for(tmp_path: Path) -> None:
    """DATA_UNTIL (the flow's load) or an explicit range: only those days' transactions;
    the parts' event ids are the whole file's."""
    write_csvs(tmp_path, [f"2020-09-0{d},{HEX},0108775015,0.05,2" for d in (1, 1, 2, 3)])
    query = "SELECT event_id, t_dat FROM transactions_raw ORDER BY 1"
    with open_engine(engine_settings_for(tmp_path)) as engine:
        engine.apply()
        engine.load_csv(tmp_path)
        whole = rows_of(engine, query)
    with open_engine(engine_settings_for(tmp_path, DATA_UNTIL="2020-09-02")) as engine:
        report = engine.load_csv(tmp_path)
        before = rows_of(engine, query)
        assert report.rows["transactions"] == 2 and report.skipped == 2
        assert "2 transactions outside days before 2020-09-02 not loaded" in report.table()
        engine.load_csv(tmp_path, DayRange(since=dt.date(2020, 9, 2)))
        after = rows_of(engine, query)
    assert [day for _, day in before] == [dt.date(2020, 9, 1)] * 2
    assert sorted(before + after) == whole


def test_load_csv_names_a_missing_file(tmp_path: Path) -> None:
    write_csvs(tmp_path, [])
    (tmp_path / "images.csv").unlink()
    with open_engine(engine_settings_for(tmp_path)) as engine:
        engine.apply()
        with pytest.raises(FileNotFoundError, match="images.csv"):
            engine.load_csv(tmp_path)


def test_a_failed_load_leaves_the_previous_data(tmp_path: Path) -> None:
    write_csvs(tmp_path, [f"2020-09-01,{HEX},0108775015,0.05,2"])
    with open_engine(engine_settings_for(tmp_path)) as engine:
        engine.apply()
        engine.load_csv(tmp_path)
        (tmp_path / "transactions_train.csv").write_text("wrong,header\n")
        with pytest.raises(ValueError, match="header"):
            engine.load_csv(tmp_path)
        assert rows_of(engine, "SELECT COUNT(*) FROM transactions_raw") == [(1,)]
        assert rows_of(engine, "SELECT COUNT(*) FROM articles_raw") == [(1,)]
        staging = "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%_load'"
        assert rows_of(engine, staging) == []  # the staged rows are dropped too


def test_a_batch_says_which_purchases_are_new_reading_its_own_days_only(tmp_path: Path) -> None:
    """What the service's online state adds: the batch's events the file does not hold
    yet, as dedup_transactions_t counts them (a redelivery, padded or not, adds nothing;
    two events of one article and day are 2 units, online when one of them was, as the
    day's highest channel). The file is read for the batch's days
    only: the scan of transactions_raw carries the day range (its other row groups are
    skipped)."""
    import pyarrow as pa

    write_csvs(tmp_path, [f"2020-09-0{day},{HEX},0108775015,0.05,2" for day in range(1, 4)])
    with open_engine(engine_settings_for(tmp_path)) as engine:
        engine.apply()
        engine.load_csv(tmp_path)
        [old] = engine.rows("SELECT event_id FROM transactions_raw WHERE t_dat = '2020-09-03'")
        day = dt.date(2020, 9, 3)
        rows = [{"event_id": event, "t_dat": day, "customer_id": HEX, "article_id": article,
                 "price": 0.05, "sales_channel_id": channel, "_offset": i}
                for i, (event, article, channel) in enumerate(
                    [(old[0], "108775015", 2), ("n1", "0108775015", 1), ("n2", "108775015", 2),
                     ("n2", "0108775015", 2), ("n3", "", 1)])]  # fmt: skip
        new = engine.write_batch({"transactions": pa.Table.from_pylist(rows)}, new_purchases=True)
        assert new.to_pylist() == [
            {"t_dat": day, "customer_id": HEX, "article_id": "0108775015", "units": 2, "online": 2}
        ]
        again = engine.write_batch({"transactions": pa.Table.from_pylist(rows)}, new_purchases=True)
        assert again.num_rows == 0
        engine.execute("CREATE TEMP TABLE new_rows AS SELECT * FROM transactions_raw LIMIT 1")
        plan = engine.rows(f"EXPLAIN {NEW_PURCHASES_SQL}", [day, day])[0][1]
        assert "t_dat>='2020-09-03'" in plan.replace("\n", "").replace(" ", ""), plan


@pytest.mark.parametrize(
    ("min_purchases", "cutoff", "message"),
    [
        (0, dt.date(2020, 1, 1), "at least 1"),
        ("3", dt.date(2020, 1, 1), "integer"),
        (2, "2020-01-01", "datetime.date"),
    ],
)
def test_set_training_settings_rejects_bad_values(
    embedded_engine: DuckDBEngine, min_purchases: object, cutoff: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        embedded_engine.set_training_settings(min_purchases=min_purchases, cutoff=cutoff)


def test_changing_training_settings_never_leaves_the_table_without_its_row(
    embedded_engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a reader (or RisingWave's dynamic filter) sees after every statement written."""
    seen: list[list[tuple]] = []
    execute = embedded_engine.execute

    def observed(sql: str, params=None) -> None:
        execute(sql, params)
        seen.append(rows_of(embedded_engine, "SELECT id, min_purchases FROM training_settings"))

    monkeypatch.setattr(embedded_engine, "execute", observed)
    for min_purchases in (3, 7, 1):
        embedded_engine.set_training_settings(min_purchases, dt.date(2020, 9, 16))

    assert seen == [[(1, 3)], [(1, 7)], [(1, 1)]]  # one statement per change, row kept
    assert embedded_engine.training_settings() == (1, dt.date(2020, 9, 16))


def test_read_only_engine_needs_an_existing_file(engine_settings: Settings) -> None:
    with pytest.raises(EngineError, match="no DuckDB file yet"):
        open_engine(engine_settings, read_only=True)


def test_reader_waits_for_a_writer_in_another_process(
    embedded_engine: DuckDBEngine, engine_settings: Settings
) -> None:
    """DuckDB lets one process write and none read meanwhile: the reader retries."""
    insert_raw(embedded_engine, "images", [{"article_id": "0000000001", "image_path": "x.jpg"}])
    embedded_engine.close()
    holder = textwrap.dedent(
        f"""
        import sys, time, duckdb
        con = duckdb.connect({str(engine_settings.duckdb_path)!r})
        print("locked", flush=True)
        time.sleep(1.5)
        con.close()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with open_engine(engine_settings, read_only=True) as reader:
            assert rows_of(reader, "SELECT COUNT(*) FROM images_t") == [(1,)]
        assert time.monotonic() - started > 0.5  # it really had to wait
    finally:
        proc.wait(timeout=30)


def test_read_only_engine_does_not_hold_the_file(
    embedded_engine: DuckDBEngine, engine_settings: Settings
) -> None:
    """Between queries a reader holds no lock, so a writer (the consumer) can open it."""
    embedded_engine.close()
    with open_engine(engine_settings, read_only=True) as reader:
        reader.query("SELECT 1")
        writer = open_engine(engine_settings)
        insert_raw(writer, "images", [{"article_id": "0000000001", "image_path": "x.jpg"}])
        writer.close()
        assert rows_of(reader, "SELECT COUNT(*) FROM images_raw") == [(1,)]


def test_record_batches_stream_every_row_of_a_query(
    embedded_engine: DuckDBEngine, engine_settings: Settings
) -> None:
    """Big results (the training frame) come as Arrow batches, not one pandas frame."""
    images = [{"article_id": f"{i:010d}", "image_path": f"{i}.jpg"} for i in range(5)]
    insert_raw(embedded_engine, "images", images)
    query = "SELECT article_id, image_path FROM images_t ORDER BY article_id"
    batches = list(embedded_engine.record_batches(query, batch_rows=2))
    assert all(batch.num_rows <= 2 for batch in batches)
    assert [row for b in batches for row in b.to_pylist()] == images
    embedded_engine.close()
    with open_engine(engine_settings, read_only=True) as reader:
        got = [b.num_rows for b in reader.record_batches("SELECT * FROM images_t WHERE $1", [True])]
        assert sum(got) == 5
        open_engine(engine_settings).close()  # the reader let go of the file


# ------------------------------------------------------------- RisingWave without a server


def sasl_settings(tmp_path: Path) -> Settings:
    return engine_settings_for(
        tmp_path,
        KAFKA_BOOTSTRAP_SERVERS="broker.example:9092",
        KAFKA_API_KEY="KEY1234567",
        KAFKA_API_SECRET="s3cr3t-value-xyz",
    )


def test_risingwave_render_fills_connection_and_masks_secrets(tmp_path: Path) -> None:
    source = next(obj for obj in load_objects() if obj.name == "transactions_raw")
    settings = sasl_settings(tmp_path)
    real = render_risingwave(source, settings)
    shown = render_risingwave(source, settings, masked=True)
    assert "properties.bootstrap.server = 'broker.example:9092'" in real
    assert "properties.sasl.password = 's3cr3t-value-xyz'" in real
    assert "properties.security.protocol = 'SASL_SSL'" in real
    assert "s3cr3t-value-xyz" not in shown and "KEY1234567" not in shown
    assert "${" not in real and "@kafka_security" not in real
    plain = render_risingwave(source, engine_settings_for(tmp_path))
    assert "sasl" not in plain and "security.protocol" not in plain


def test_setup_print_masks_secrets(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": "broker.example:9092",
        "KAFKA_API_KEY": "KEY1234567",
        "KAFKA_API_SECRET": "s3cr3t-value-xyz",
        "DUCKDB_PATH": str(tmp_path / "x.duckdb"),
    }
    result = subprocess.run(
        [sys.executable, "risingwave/setup.py", "--engine", "risingwave", "--print"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    assert result.stdout.count("CREATE MATERIALIZED VIEW IF NOT EXISTS") == len(VIEWS)
    assert "s3cr3t-value-xyz" not in result.stdout and "KEY1234567" not in result.stdout
    assert "properties.sasl.password = 's3****yz'" in result.stdout


def test_risingwave_engine_needs_its_url(engine_settings: Settings) -> None:
    with pytest.raises(EngineError, match="RISINGWAVE_URL is not set"):
        open_engine(engine_settings, kind="risingwave")


def test_unreachable_risingwave_is_named_without_its_password(tmp_path: Path) -> None:
    settings = engine_settings_for(
        tmp_path, RISINGWAVE_URL="postgresql://root:hunter2@127.0.0.1:9/dev"
    )
    with pytest.raises(EngineError, match=r"127\.0\.0\.1:9") as error:
        open_engine(settings)
    assert "hunter2" not in str(error.value)


def test_risingwave_date_columns_are_recognised_by_postgres_type_oid() -> None:
    from psycopg.postgres import types

    from recsys.store.risingwave import POSTGRES_DATE_OID

    assert types["date"].oid == POSTGRES_DATE_OID


def test_unresponsive_risingwave_fails_within_its_connect_timeout(tmp_path: Path) -> None:
    """A port that accepts the connection and never answers (no timeout: 131 s here)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nothing ever replies
        port = silent.getsockname()[1]
        url = f"postgresql://root:Hunter2-secret@127.0.0.1:{port}/dev?connect_timeout=2"
        settings = engine_settings_for(tmp_path, RISINGWAVE_URL=url)
        started = time.monotonic()
        with pytest.raises(
            EngineError, match=r"RisingWave .*RISINGWAVE_URL.*cannot reach it within 2 s"
        ) as error:
            open_engine(settings)
    assert time.monotonic() - started < 6
    assert "Hunter2-secret" not in str(error.value) and "root:****@" in str(error.value)
    without = url.replace("?connect_timeout=2", "")
    assert engine_module._connect_timeout(without) == engine_module.RISINGWAVE_CONNECT_TIMEOUT_S
    assert engine_module._connect_timeout(f"{without}?connect_timeout=600") == 10
