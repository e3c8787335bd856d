"""The four H&M tables: file names, columns in Kaggle order, and the type of each column.

This is the single description of the data that the loaders, the producer, the SQL
and the generator all agree on (see ARCHITECTURE.md for the JSON contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pyarrow as pa


class Kind(Enum):
    """How a CSV text field is validated and typed."""

    ARTICLE_ID = "article_id"  # 10 digits, zero-padded: kept as a string
    PRODUCT_CODE = "product_code"  # 7 digits, zero-padded: kept as a string
    HEX_ID = "hex_id"  # 64-character lowercase hex hash (customer_id, postal_code)
    TEXT = "text"
    INT = "int"  # also accepts integral floats such as "49.0" (the Kaggle age column)
    FLOAT = "float"
    DATE = "date"  # YYYY-MM-DD


ARROW_TYPES = {
    Kind.ARTICLE_ID: pa.string(),
    Kind.PRODUCT_CODE: pa.string(),
    Kind.HEX_ID: pa.string(),
    Kind.TEXT: pa.string(),
    Kind.INT: pa.int64(),
    Kind.FLOAT: pa.float64(),
    Kind.DATE: pa.date32(),
}

ID_PATTERNS = {
    Kind.ARTICLE_ID: r"^[0-9]{10}$",
    Kind.PRODUCT_CODE: r"^[0-9]{7}$",
    Kind.HEX_ID: r"^[0-9a-f]{64}$",
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = False  # an empty value is a malformed row, not a NULL


@dataclass(frozen=True)
class Table:
    name: str
    file: str
    columns: tuple[Column, ...]
    key: str  # Kafka message key: keeps each entity's events in one partition

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(c.name, ARROW_TYPES[c.kind]) for c in self.columns])


def _text(*names: str) -> list[Column]:
    return [Column(n, Kind.TEXT) for n in names]


def _ints(*names: str) -> list[Column]:
    return [Column(n, Kind.INT) for n in names]


ARTICLES = Table(
    name="articles",
    file="articles.csv",
    key="article_id",
    columns=(
        Column("article_id", Kind.ARTICLE_ID, required=True),
        Column("product_code", Kind.PRODUCT_CODE, required=True),
        *_text("prod_name"),
        *_ints("product_type_no"),
        *_text("product_type_name", "product_group_name"),
        *_ints("graphical_appearance_no"),
        *_text("graphical_appearance_name"),
        *_ints("colour_group_code"),
        *_text("colour_group_name"),
        *_ints("perceived_colour_value_id"),
        *_text("perceived_colour_value_name"),
        *_ints("perceived_colour_master_id"),
        *_text("perceived_colour_master_name"),
        *_ints("department_no"),
        *_text("department_name", "index_code", "index_name"),
        *_ints("index_group_no"),
        *_text("index_group_name"),
        *_ints("section_no"),
        *_text("section_name"),
        *_ints("garment_group_no"),
        *_text("garment_group_name", "detail_desc"),
    ),
)

CUSTOMERS = Table(
    name="customers",
    file="customers.csv",
    key="customer_id",
    columns=(
        Column("customer_id", Kind.HEX_ID, required=True),
        Column("FN", Kind.FLOAT),
        Column("Active", Kind.FLOAT),
        Column("club_member_status", Kind.TEXT),
        Column("fashion_news_frequency", Kind.TEXT),
        Column("age", Kind.INT),
        Column("postal_code", Kind.HEX_ID),
    ),
)

TRANSACTIONS = Table(
    name="transactions",
    file="transactions_train.csv",
    key="customer_id",
    columns=(
        Column("t_dat", Kind.DATE, required=True),
        Column("customer_id", Kind.HEX_ID, required=True),
        Column("article_id", Kind.ARTICLE_ID, required=True),
        Column("price", Kind.FLOAT, required=True),
        Column("sales_channel_id", Kind.INT, required=True),
    ),
)

IMAGES = Table(
    name="images",
    file="images.csv",
    key="article_id",
    columns=(
        Column("article_id", Kind.ARTICLE_ID, required=True),
        Column("image_path", Kind.TEXT, required=True),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (ARTICLES, CUSTOMERS, TRANSACTIONS, IMAGES)}


def image_path(article_id: str) -> str:
    """Kaggle layout of a product photo, relative to the data directory."""
    return f"images/{article_id[:3]}/{article_id}.jpg"
