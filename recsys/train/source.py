"""Where the flow's data comes from: the settings, the engine, and the CSV load when the
embedded engine is still empty. Errors become FlowInputError, which Metaflow prints as a
message instead of a traceback."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from recsys.settings import ConfigError, Settings, load_settings
from recsys.store.engine import Engine
from recsys.train.plan import FlowInputError

# The catalogue the flow exports and encodes: articles_metadata_t's columns it needs.
ARTICLE_COLUMNS = (
    "article_id, prod_name, product_type_no, product_type_name, product_group_name, "
    "graphical_appearance_no, colour_group_code, colour_group_name, perceived_colour_value_id, "
    "department_no, index_code, section_no, garment_group_no, image_path"
)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        raise FlowInputError(str(error)) from None


def engine(kind: str, read_only: bool = False) -> Engine:
    """The engine; read-only for steps that only read (grid branches run side by side,
    and DuckDB lets one process write a file at a time)."""
    from recsys.store.engine import EngineError, open_engine

    try:
        return open_engine(settings(), read_only=read_only, kind=None if kind == "auto" else kind)
    except EngineError as error:
        raise FlowInputError(f"cannot open the {kind} engine: {error}") from None


def output_root(parameter: str) -> Path:
    """--output-dir, else the OUTPUT_DIR setting."""
    return Path(parameter).expanduser().resolve() if parameter else settings().output_dir


def ensure_data(eng: Engine, data_dir: Path) -> int:
    """Create the views if needed; load `data_dir`'s CSVs when the embedded file is empty.
    Returns the number of purchases the engine holds."""
    eng.apply()
    count = eng.count("dedup_transactions_t")  # joined_transactions_t's rows, no joins
    if count:
        print(f"engine ({eng.kind}) already holds {count:,} purchases; using them")
        return count
    if eng.kind != "embedded":
        raise FlowInputError(
            "RisingWave has no purchases yet: stream the CSVs with `python kafka/producer.py` "
            "(see docs) and wait for the views to fill, then run the flow again."
        )
    if not (data_dir / "transactions_train.csv").is_file():
        raise FlowInputError(
            f"the DuckDB file has no data and {data_dir}/transactions_train.csv does not exist: "
            "set DATA_DIR to a folder with the H&M CSVs, or generate demo data with "
            "`python data/generate.py`."
        )
    print(f"the DuckDB file has no data yet: loading the CSVs of {data_dir} (fast path)")
    report = eng.load_csv(data_dir)
    print(f"loaded {report.rows} rows; {report.rejected} malformed rows went to `rejects`")
    if report.skipped:  # DATA_UNTIL: the rest is left to be replayed through Kafka
        print(f"{report.skipped:,} transactions outside {report.days} not loaded (DATA_UNTIL)")
    return eng.count("dedup_transactions_t")


def date_range(eng: Engine) -> tuple[date, date]:
    """The first and last purchase days the views hold."""
    row = eng.query("SELECT MIN(t_dat) AS first, MAX(t_dat) AS last FROM dedup_transactions_t")
    if row.empty or pd.isna(row.iloc[0, 0]):
        raise FlowInputError("dedup_transactions_t is empty: load transactions first.")
    return pd.Timestamp(row.iloc[0, 0]).date(), pd.Timestamp(row.iloc[0, 1]).date()


def articles(eng: Engine) -> pd.DataFrame:
    """The catalogue (ARTICLE_COLUMNS of articles_metadata_t); an empty one is an error."""
    frame = eng.query(f"SELECT {ARTICLE_COLUMNS} FROM articles_metadata_t")
    if frame.empty:
        raise FlowInputError("articles_metadata_t is empty: load articles.csv into the engine.")
    return frame
