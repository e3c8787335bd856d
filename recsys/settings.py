"""Every setting of the project, read from one place: the environment, plus `local.env`.

Variables set in the real environment win over `local.env`, so CI and containers can
override a developer's file. Secrets (API keys, passwords inside URLs) are never
printed: `Settings.masked()` is the only way settings are echoed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from dotenv import dotenv_values

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_ENV = REPO_ROOT / "local.env"
DEFAULT_KAFKA = "127.0.0.1:9092"
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

    def masked(self) -> dict[str, str]:
        """All settings as strings, secrets replaced so the result is safe to print or log."""
        shown: dict[str, str] = {}
        for field in fields(self):
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
    """Hide the password of a `scheme://user:password@host/...` connection string."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1****@", url)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `env` (tests) or from os.environ layered over local.env."""
    if env is None:
        file_values = {k: v for k, v in dotenv_values(LOCAL_ENV).items() if v is not None}
        env = {**file_values, **os.environ}
    source = _Source(env)
    data_dir = source.path("DATA_DIR", REPO_ROOT / "data" / "demo")
    kafka_client = source.text("KAFKA_CLIENT", "confluent")
    if kafka_client not in KAFKA_CLIENTS:
        raise ConfigError(f"KAFKA_CLIENT={kafka_client!r}: expected one of {KAFKA_CLIENTS}")
    settings = Settings(
        data_dir=data_dir,
        duckdb_path=source.path("DUCKDB_PATH", data_dir / "hm.duckdb"),
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
    )
    if (settings.kafka_api_key is None) != (settings.kafka_api_secret is None):
        raise ConfigError("KAFKA_API_KEY and KAFKA_API_SECRET must be set together (or neither)")
    return settings


class _Source:
    """Reads one variable at a time; empty strings count as unset (as in local.env.example)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def path(self, name: str, default: Path) -> Path:
        value = self.optional(name)
        return Path(value).expanduser().resolve() if value else default

    def positive_int(self, name: str, default: int) -> int:
        value = self.optional(name)
        if value is None:
            return default
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(f"{name}={value!r}: expected a positive integer")
        return int(value)

    def flag(self, name: str, default: bool) -> bool:
        value = self.optional(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError(f"{name}={value!r}: expected true/false (also 1/0, yes/no, on/off)")


def _bootstrap(value: str) -> str:
    """`host:port[,host:port...]`; a typo here would otherwise surface as a slow Kafka timeout."""
    for server in value.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(
                f"KAFKA_BOOTSTRAP_SERVERS={value!r}: expected host:port[,host:port...]"
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
    if value is not None and not value.startswith(("postgres://", "postgresql://")):
        raise ConfigError(
            f"RISINGWAVE_URL={mask_url(value)!r}: expected postgresql://user[:password]@host:port/db"
        )
    return value


def _optional_path(value: str | None) -> Path | None:
    return Path(value).expanduser().resolve() if value else None


def _url_template(value: str | None) -> str | None:
    if value is not None and "{article_id}" not in value:
        raise ConfigError(
            f"IMAGE_URL_TEMPLATE={value!r}: must contain {{article_id}} (and may use {{folder}})"
        )
    return value
