"""Configuration: defaults, validation naming the variable, and secrets never echoed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recsys.settings import REPO_ROOT, ConfigError, load_settings

EXAMPLE = REPO_ROOT / "local.env.example"


def test_defaults_run_embedded() -> None:
    settings = load_settings(env={})
    assert settings.risingwave_url is None
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.export_to_app is True
    assert settings.duckdb_path == settings.data_dir / "hm.duckdb"
    assert settings.image_dir == settings.data_dir / "images"


def test_data_dir_moves_dependent_defaults(tmp_path: Path) -> None:
    settings = load_settings(env={"DATA_DIR": str(tmp_path)})
    assert settings.duckdb_path == tmp_path / "hm.duckdb"
    assert settings.image_dir == tmp_path / "images"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost"),
        ("KAFKA_PARTITIONS", "zero"),
        ("KAFKA_PARTITIONS", "0"),
        ("KAFKA_CLIENT", "librdkafka"),
        ("EXPORT_TO_APP", "maybe"),
        ("RISINGWAVE_URL", "mysql://root@host/dev"),
        ("IMAGE_URL_TEMPLATE", "https://bucket/images/x.jpg"),
    ],
)
def test_malformed_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env={name: value})


def test_key_without_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="KAFKA_API_SECRET"):
        load_settings(env={"KAFKA_API_KEY": "ABCDEFGHIJ"})


def test_masked_hides_every_secret() -> None:
    secrets = {
        "KAFKA_API_KEY": "KEY1234567890",
        "KAFKA_API_SECRET": "s3cr3t-value-xyz",
        "COMET_API_KEY": "comet-key-abcdef",
        "RISINGWAVE_URL": "postgresql://admin:hunter2pass@rw.example.com:4566/dev",
    }
    shown = " ".join(load_settings(env=secrets).masked().values())
    for secret in ("KEY1234567890", "s3cr3t-value-xyz", "comet-key-abcdef", "hunter2pass"):
        assert secret not in shown
    assert "postgresql://admin:****@rw.example.com:4566/dev" in shown


def test_environment_overrides_local_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "local.env"
    env_file.write_text("KAFKA_PARTITIONS=7\nCOMET_PROJECT_NAME=from-file\n")
    monkeypatch.setattr("recsys.settings.LOCAL_ENV", env_file)
    monkeypatch.setenv("COMET_PROJECT_NAME", "from-env")
    monkeypatch.delenv("KAFKA_PARTITIONS", raising=False)
    settings = load_settings()
    assert settings.kafka_partitions == 7
    assert settings.comet_project == "from-env"


def test_example_documents_every_variable() -> None:
    source = (REPO_ROOT / "recsys" / "settings.py").read_text()
    read = set(re.findall(r'source\.\w+\(\s*"([A-Z_]+)"', source))
    documented = set(re.findall(r"^([A-Z_]+)=", EXAMPLE.read_text(), flags=re.MULTILINE))
    assert read, "no variables found in settings.py"
    assert read == documented
