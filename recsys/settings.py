"""Every setting of the project, read from one place: the environment, plus `local.env`.

Variables set in the real environment win over `local.env`, so CI and containers can
override a developer's file. Every malformed value stops at once with the variable's
name (and, for `local.env`, the file and line). Secrets (API keys, passwords inside
connection strings) are never printed: `Settings.masked()` is the only way settings
are echoed, and it rebuilds the RisingWave connection string from libpq's own parse.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import quote, urlencode

from dotenv.parser import parse_stream

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_ENV = REPO_ROOT / "local.env"
DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_SERVE_HOST = "127.0.0.1"
DEFAULT_SERVE_PORT = 8000
# Why 3 GB: the main job on the full data must fit in 12 GB with memory flat in the data
# size; training alone takes 4-4.5 GB, and with this limit no engine step peaks above it.
# More is a little faster (the full training view: 38.5 s at 5 GB, 44.8 s at 4 GB).
DEFAULT_DUCKDB_MEMORY_LIMIT = "3GB"
KAFKA_CLIENTS = ("confluent", "kafka-python")
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SASL_SSL", "SASL_PLAINTEXT")
SECRET_FIELDS = ("kafka_api_key", "kafka_api_secret", "comet_api_key")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment; see local.env.example for what each one means."""

    data_dir: Path
    duckdb_path: Path
    output_dir: Path
    image_dir: Path
    image_url_template: str | None
    kafka_bootstrap_servers: str
    kafka_api_key: str | None
    kafka_api_secret: str | None
    kafka_client: str
    kafka_partitions: int
    risingwave_url: str | None
    comet_api_key: str | None
    comet_project: str
    comet_workspace: str | None
    export_to_app: bool
    metaflow_root: Path | None = None
    # SASL_SSL (Confluent Cloud) when an API key is set, else PLAINTEXT; SASL_PLAINTEXT
    # only for a local broker with a SASL listener (the wrong-credentials test).
    kafka_security_protocol: str = "PLAINTEXT"
    # How RisingWave reaches Kafka, when that differs from how this machine does (in
    # docker-compose.yml RisingWave uses kafka:29092, the host 127.0.0.1:9092).
    risingwave_kafka_bootstrap: str | None = None
    # The embedded engine's CSV load keeps only transactions before this day, so that the
    # later ones can be replayed through Kafka as new events (`producer --from` that day).
    data_until: dt.date | None = None
    # The recommendation service (python -m recsys.serve) listens here; the page reads it.
    serve_host: str = DEFAULT_SERVE_HOST
    serve_port: int = DEFAULT_SERVE_PORT
    # The embedded engine's memory for queries and loads (it spills to disk beyond it).
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    # The variables that were set (not left to their defaults): a run's recorded data
    # folder, DuckDB file and photos are used where these do not name others.
    given: frozenset[str] = frozenset()

    @property
    def service_url(self) -> str:
        """Where clients reach the service (a wildcard listen address means this machine)."""
        host = "127.0.0.1" if self.serve_host in ("0.0.0.0", "::") else self.serve_host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.serve_port}"

    def masked(self) -> dict[str, str]:
        """All settings as strings, secrets replaced so the result is safe to print or log."""
        shown: dict[str, str] = {}
        for field in fields(self):
            if field.name == "given":
                continue
            value = getattr(self, field.name)
            if value is None:
                shown[field.name] = "(unset)"
            elif field.name in SECRET_FIELDS:
                shown[field.name] = mask(str(value))
            elif field.name == "risingwave_url":
                shown[field.name] = mask_url(str(value))
            else:
                shown[field.name] = str(value)
        return shown


def mask(secret: str) -> str:
    """Keep only enough of a secret to recognise which one is configured."""
    return "****" if len(secret) < 8 else f"{secret[:2]}****{secret[-2:]}"


def mask_url(url: str) -> str:
    """The connection string with its passwords hidden, rebuilt from libpq's own parse.

    Whatever libpq takes as a password (`user:pw@` in a URL, an empty user, a
    `?password=` parameter, the `key=value` form, `sslpassword`) is replaced; nothing
    of the original text is echoed, so a spelling no regular expression foresaw cannot
    leak. A string libpq cannot parse is not shown at all.
    """
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = {k: str(v) for k, v in conninfo_to_dict(url).items()}
    except ProgrammingError:
        return "(a connection string libpq cannot parse)"
    hidden = {k: "****" if "password" in k else v for k, v in parts.items()}
    if "@" in hidden.get("host", ""):  # an unencoded '@' in the password: its rest is here
        hidden["host"] = "****"
    return _as_url(hidden)


def _as_url(parts: dict[str, str]) -> str:
    """libpq's parts as a postgresql:// URL (hosts and ports paired as libpq pairs them)."""
    user, password = parts.pop("user", ""), parts.pop("password", None)
    auth = quote(user, safe="") + (f":{password}" if password is not None else "")
    hosts = parts.pop("host", "").split(",")
    ports = parts.pop("port", "").split(",")
    ports = ports * len(hosts) if len(ports) == 1 else ports
    where = ",".join(
        quote(h, safe="") + (f":{quote(p, safe='')}" if p else "")
        for h, p in zip(hosts, ports, strict=False)
    )
    dbname = quote(parts.pop("dbname", ""), safe="")
    query = f"?{urlencode(parts)}" if parts else ""
    return f"postgresql://{auth + '@' if auth else ''}{where}/{dbname}{query}"


def read_local_env(path: Path) -> dict[str, str]:
    """`local.env` as a dict; a line that is not NAME=value stops with file and line
    (python-dotenv only warns and skips it: an unclosed quote on RISINGWAVE_URL then
    silently meant the embedded engine). Values are never quoted in the message."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    with path.open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            text = binding.original.string  # may start with the blank lines before it
            blank = text[: len(text) - len(text.lstrip())].count("\n")
            where = f"{path}:{binding.original.line + blank}"
            if binding.error:
                raise ConfigError(f"{where}: cannot read this line (an unclosed quote?)")
            if binding.key is not None and binding.value is None:
                raise ConfigError(f"{where}: {binding.key} has no '=' (write {binding.key}=...)")
            if binding.key is not None:
                values[binding.key] = binding.value or ""
    return values


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `env` (tests) or from os.environ layered over local.env."""
    if env is None:
        env = {**read_local_env(LOCAL_ENV), **os.environ}
    source = _Source(env)
    data_dir = source.path("DATA_DIR", REPO_ROOT / "data" / "demo")
    kafka_client = source.text("KAFKA_CLIENT", "confluent")
    if kafka_client not in KAFKA_CLIENTS:
        raise ConfigError(f"KAFKA_CLIENT={kafka_client!r}: expected one of {KAFKA_CLIENTS}")
    settings = Settings(
        data_dir=data_dir,
        duckdb_path=_database_path(source, data_dir / "hm.duckdb"),
        output_dir=source.path("OUTPUT_DIR", REPO_ROOT / "output"),
        image_dir=source.path("IMAGE_DIR", data_dir / "images"),
        image_url_template=_url_template(source.optional("IMAGE_URL_TEMPLATE")),
        kafka_bootstrap_servers=_bootstrap(source.text("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA)),
        kafka_api_key=source.optional("KAFKA_API_KEY"),
        kafka_api_secret=source.optional("KAFKA_API_SECRET"),
        kafka_client=kafka_client,
        kafka_partitions=source.positive_int("KAFKA_PARTITIONS", 3),
        risingwave_url=_risingwave_url(source.optional("RISINGWAVE_URL")),
        comet_api_key=source.optional("COMET_API_KEY"),
        comet_project=source.text("COMET_PROJECT_NAME", "hm-recsys"),
        comet_workspace=source.optional("COMET_WORKSPACE"),
        export_to_app=source.flag("EXPORT_TO_APP", True),
        # Metaflow reads this itself, but only once at import; the app's run list needs it
        # per call (tests point it at a fresh run after Metaflow was imported).
        metaflow_root=_optional_path(source.optional("METAFLOW_DATASTORE_SYSROOT_LOCAL")),
        kafka_security_protocol=_security_protocol(source),
        risingwave_kafka_bootstrap=_optional_bootstrap(
            source.optional("RISINGWAVE_KAFKA_BOOTSTRAP_SERVERS")
        ),
        data_until=source.day("DATA_UNTIL"),
        serve_host=_serve_host(source.text("SERVE_HOST", DEFAULT_SERVE_HOST)),
        serve_port=_serve_port(source.optional("SERVE_PORT")),
        duckdb_memory_limit=_memory_limit(
            source.text("DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT)
        ),
        given=source.given(),
    )
    if (settings.kafka_api_key is None) != (settings.kafka_api_secret is None):
        raise ConfigError("KAFKA_API_KEY and KAFKA_API_SECRET must be set together (or neither)")
    return settings


class _Source:
    """Reads one variable at a time; empty strings count as unset (as in local.env.example)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._read: set[str] = set()

    def given(self) -> frozenset[str]:
        """The variables read so far that had a value."""
        return frozenset(name for name in self._read if self.optional(name) is not None)

    def optional(self, name: str) -> str | None:
        self._read.add(name)
        value = self._env.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def path(self, name: str, default: Path) -> Path:
        """A folder (or a file's) path; one that names an existing file is refused here,
        not with a traceback later."""
        value = self.optional(name)
        path = Path(value).expanduser().resolve() if value else default
        if name.endswith("_DIR") and path.is_file():
            raise ConfigError(f"{name}={value}: is a file, expected a folder")
        return path

    def positive_int(self, name: str, default: int) -> int:
        value = self.optional(name)
        if value is None:
            return default
        if not (value.isascii() and value.isdigit()) or int(value) < 1:  # not "²"
            raise ConfigError(f"{name}={value!r}: expected a positive integer")
        return int(value)

    def day(self, name: str) -> dt.date | None:
        value = self.optional(name)
        return None if value is None else parse_day(name, value)

    def flag(self, name: str, default: bool) -> bool:
        value = self.optional(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError(f"{name}={value!r}: expected true/false (also 1/0, yes/no, on/off)")


def _database_path(source: _Source, default: Path) -> Path:
    """DUCKDB_PATH: a file path whose missing folders can be created (the engine creates
    them on first write); a folder, or a path under a file or a read-only folder, is
    refused here rather than with a traceback later."""
    path = source.path("DUCKDB_PATH", default)
    if path.is_dir():
        raise ConfigError(f"DUCKDB_PATH={path}: is a folder, expected a database file path")
    existing = next(parent for parent in path.parents if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"DUCKDB_PATH={path}: its folder cannot be created ({existing} is not a "
            "writable folder)"
        )
    return path


def _bootstrap(value: str) -> str:
    """`host:port[,host:port...]`; a typo here would otherwise surface as a slow Kafka timeout."""
    for server in value.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or "://" in host or " " in host or not _is_port(port):
            raise ConfigError(
                f"KAFKA_BOOTSTRAP_SERVERS={value!r}: expected host:port[,host:port...] "
                "(no scheme, ports 1-65535)"
            )
    return value


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 1 <= int(text) <= 65535


def _serve_host(value: str) -> str:
    """A host name or IP address to listen on, nothing else (no scheme, port or path)."""
    if "://" in value or any(c in value for c in "/ @") or value.count(":") == 1:
        raise ConfigError(
            f"SERVE_HOST={value!r}: expected a host name or IP address such as 127.0.0.1 "
            "(no scheme, port or path; the port is SERVE_PORT)"
        )
    return value


def _serve_port(value: str | None) -> int:
    if value is None:
        return DEFAULT_SERVE_PORT
    if not _is_port(value):
        raise ConfigError(f"SERVE_PORT={value!r}: expected a port number from 1 to 65535")
    return int(value)


def _memory_limit(value: str) -> str:
    """A size DuckDB understands (`4GB`, `512MB`, `1.5GiB`); checked here so a typo names
    the variable instead of failing inside the first query."""
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value, re.IGNORECASE):
        raise ConfigError(
            f"DUCKDB_MEMORY_LIMIT={value!r}: expected a size such as 4GB, 512MB or 1.5GiB"
        )
    return value


def _security_protocol(source: _Source) -> str:
    has_key = source.optional("KAFKA_API_KEY") is not None
    value = source.text("KAFKA_SECURITY_PROTOCOL", "SASL_SSL" if has_key else "PLAINTEXT")
    if value not in KAFKA_SECURITY_PROTOCOLS:
        raise ConfigError(
            f"KAFKA_SECURITY_PROTOCOL={value!r}: expected one of {KAFKA_SECURITY_PROTOCOLS}"
        )
    if value.startswith("SASL") != has_key:
        raise ConfigError(
            f"KAFKA_SECURITY_PROTOCOL={value}: SASL needs KAFKA_API_KEY/KAFKA_API_SECRET "
            "and they are only used with SASL"
        )
    return value


def _optional_bootstrap(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return _bootstrap(value)
    except ConfigError as error:
        raise ConfigError(str(error).replace("KAFKA_", "RISINGWAVE_KAFKA_", 1)) from None


def _risingwave_url(value: str | None) -> str | None:
    """Any connection string libpq accepts (URL or key=value) with a host and valid ports.

    The value itself is never quoted here: a password libpq misreads (an unencoded '@')
    ends up in the host, so even the masked form could show part of it.
    """
    if value is None:
        return None
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    expected = "expected postgresql://user:password@host:port/db (or libpq's key=value form)"
    if "://" in value.split("=", 1)[0] and not value.startswith(("postgres://", "postgresql://")):
        raise ConfigError(f"RISINGWAVE_URL: not a postgresql:// URL; {expected}")
    try:
        parts = conninfo_to_dict(value)
    except ProgrammingError:
        raise ConfigError(f"RISINGWAVE_URL: libpq cannot parse it; {expected}") from None
    host = str(parts.get("host", ""))
    if "@" in host:
        raise ConfigError(
            "RISINGWAVE_URL: the host contains '@': write an '@' in the password as %40"
        )
    if not host:
        raise ConfigError(f"RISINGWAVE_URL: no host; {expected}")
    ports = str(parts.get("port", "4566")).split(",")
    if not all(_is_port(port) for port in ports):
        raise ConfigError(f"RISINGWAVE_URL: port must be a number from 1 to 65535; {expected}")
    return value


def parse_day(name: str, text: str) -> dt.date:
    """A calendar day written YYYY-MM-DD (the form of the data's t_dat), else a ConfigError
    naming `name` (a variable or a command-line flag)."""
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise ConfigError(f"{name}={text!r}: expected a calendar day YYYY-MM-DD, e.g. 2020-09-16")


def _optional_path(value: str | None) -> Path | None:
    return Path(value).expanduser().resolve() if value else None


def _url_template(value: str | None) -> str | None:
    """Checked by filling it as the page will, so an unknown field fails here, not there."""
    if value is None:
        return None
    usage = "must contain {article_id} and may use {folder}, nothing else in braces"
    try:
        value.format(article_id="0108775015", folder="010")
    except (KeyError, IndexError, ValueError, AttributeError) as error:
        raise ConfigError(f"IMAGE_URL_TEMPLATE={value!r}: {usage} ({error!r})") from None
    if "{article_id}" not in value:
        raise ConfigError(f"IMAGE_URL_TEMPLATE={value!r}: {usage}")
    return value
