"""The SQL files of `risingwave/`: one CREATE statement each, read, checked and rendered.

The files are the single definition of every table and view. RisingWave runs them as
written (connection placeholders filled in); DuckDB runs the very same SELECT bodies,
translated mechanically by sqlglot (`to_duckdb`), so there is no second copy of any view
to drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp

from recsys.settings import REPO_ROOT, Settings, mask

SQL_DIR = REPO_ROOT / "risingwave"
SECURITY_MARKER = "-- @kafka_security"
BOOTSTRAP_PLACEHOLDER = "${KAFKA_BOOTSTRAP_SERVERS}"
# RisingWave's table clause for a table that only ever receives inserts. sqlglot does not
# parse it, and DuckDB has no such notion: it is read off here and kept for RisingWave only.
APPEND_ONLY = re.compile(r"\)\s*APPEND\s+ONLY\b", re.IGNORECASE)


class EngineError(RuntimeError):
    """A statement failed; the message names the SQL file and the statement."""


@dataclass(frozen=True)
class SqlObject:
    """One file of `risingwave/`: one CREATE statement for one named object."""

    path: Path
    name: str
    kind: str  # "TABLE" or "MATERIALIZED VIEW"
    sql: str  # the statement as written, placeholders included
    tree: exp.Create = field(repr=False, compare=False)  # without APPEND ONLY
    append_only: bool = False  # RisingWave `APPEND ONLY` table: inserts only

    @property
    def is_view(self) -> bool:
        return self.kind == "MATERIALIZED VIEW"

    @property
    def has_connector(self) -> bool:
        return BOOTSTRAP_PLACEHOLDER in self.sql

    def select_sql(self) -> str:
        """The SELECT body as written (RisingWave dialect)."""
        return self.tree.expression.sql(dialect="risingwave")


def load_objects(sql_dir: Path = SQL_DIR) -> list[SqlObject]:
    """Every object of `sql_dir`, in file-name (= dependency) order."""
    objects = []
    for path in sorted(sql_dir.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        parseable, append_only = APPEND_ONLY.subn(")", text, count=1)
        try:
            statements = [s for s in sqlglot.parse(parseable, read="risingwave") if s is not None]
        except sqlglot.errors.ParseError as error:
            raise EngineError(f"{path}: not valid RisingWave SQL: {error}") from error
        if len(statements) != 1 or not isinstance(statements[0], exp.Create):
            raise EngineError(f"{path}: expected exactly one CREATE statement")
        tree = statements[0]
        kind = "MATERIALIZED VIEW" if tree.kind == "VIEW" else tree.kind
        name = tree.this.this.name if isinstance(tree.this, exp.Schema) else tree.this.name
        objects.append(SqlObject(path, name, kind, text.strip(), tree, bool(append_only)))
    if not objects:
        raise EngineError(f"{sql_dir}: no .sql files found")
    return objects


def render_risingwave(obj: SqlObject, settings: Settings, masked: bool = False) -> str:
    """The statement for RisingWave with the Kafka connection filled in from settings."""
    bootstrap = settings.risingwave_kafka_bootstrap or settings.kafka_bootstrap_servers
    sql = obj.sql.replace(BOOTSTRAP_PLACEHOLDER, bootstrap)
    lines = []
    for line in sql.splitlines():
        if line.strip() == SECURITY_MARKER:
            indent = line[: len(line) - len(line.lstrip())]
            lines.extend(indent + prop for prop in _security_properties(settings, masked))
        else:
            lines.append(line)
    return "\n".join(lines)


def _security_properties(settings: Settings, masked: bool) -> list[str]:
    """SASL/PLAIN properties (Confluent Cloud: SASL_SSL) when an API key is set, else none."""
    if not settings.kafka_security_protocol.startswith("SASL"):
        return []
    key, secret = settings.kafka_api_key or "", settings.kafka_api_secret or ""
    if masked:
        key, secret = mask(key), mask(secret)
    return [
        f"properties.security.protocol = '{settings.kafka_security_protocol}',",
        "properties.sasl.mechanism = 'PLAIN',",
        f"properties.sasl.username = '{_quote(key)}',",
        f"properties.sasl.password = '{_quote(secret)}',",
    ]


def _quote(value: str) -> str:
    return value.replace("'", "''")


def to_duckdb(obj: SqlObject) -> str:
    """The same statement for DuckDB: a view for a materialized view, a plain table
    (connector, FORMAT, ENCODE, APPEND ONLY and PRIMARY KEY removed) for a table.

    APPEND ONLY only tells RisingWave how little state to keep; in DuckDB the one
    append-only table, transactions_raw, is only ever appended to (`_insert_rows`),
    or emptied and refilled as a whole by `load_csv`.

    Why no primary key: in DuckDB the writer keeps each key's latest row itself
    (`_insert_rows`: delete the batch's keys, insert its last row per key), which is
    what RisingWave's keyed table does on conflict. DuckDB's index on 1.37 M 64-character
    customer ids made loading the customers 4x slower (docs/streaming-sql.md).
    """
    if obj.is_view:
        select = obj.tree.expression.sql(dialect="duckdb", comments=False)
        return f"CREATE OR REPLACE VIEW {obj.name} AS\n{select}"
    table = obj.tree.copy()
    table.set("properties", None)
    for key in table.find_all(exp.PrimaryKey):
        key.pop()
    return table.sql(dialect="duckdb", comments=False)


def rendered_statements(
    kind: str, settings: Settings, masked: bool = True
) -> list[tuple[Path, str]]:
    """(file, statement) pairs as `kind` ("risingwave" | "embedded") would run them."""
    if kind == "risingwave":
        return [(obj.path, render_risingwave(obj, settings, masked)) for obj in load_objects()]
    return [(obj.path, to_duckdb(obj)) for obj in load_objects()]


def first_line(sql: str) -> str:
    """The statement's first line that is not a comment, to name it in errors."""
    for line in sql.splitlines():
        if line.strip() and not line.strip().startswith("--"):
            return line.strip()
    return sql.strip()[:80]
