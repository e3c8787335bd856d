"""Configuration: defaults, validation naming the variable, and secrets never echoed."""

from __future__ import annotations

import datetime as dt
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
        ("DATA_UNTIL", "2020-09-31"),
        ("DATA_UNTIL", "16.09.2020"),
        ("DUCKDB_MEMORY_LIMIT", "4"),
        ("DUCKDB_MEMORY_LIMIT", "4GB'; DROP TABLE rejects; --"),
    ],
)
def test_malformed_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env={name: value})


def test_data_until_is_a_day() -> None:
    assert load_settings(env={}).data_until is None
    assert load_settings(env={"DATA_UNTIL": "2020-09-16"}).data_until == dt.date(2020, 9, 16)


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


# ---------------------------------------------------------------- bad input (issue 14)

PASSWORD = "Hunter2-secret"
LIBPQ_FORMS = [  # every way libpq takes a password, and what the masked form must show
    (f"postgresql://admin:{PASSWORD}@rw.example.com:4566/dev", "postgresql://admin:****@"),
    (f"postgres://admin:{PASSWORD}@rw.example.com/dev", "postgresql://admin:****@"),
    (f"postgresql://:{PASSWORD}@rw.example.com/dev", "postgresql://:****@"),
    (f"postgresql://admin@rw.example.com/dev?password={PASSWORD}", "postgresql://admin:****@"),
    (f"postgresql://rw.example.com/dev?user=admin&password={PASSWORD}", "admin:****@"),
    (f"postgresql://admin:{PASSWORD.replace('-', '%2D')}@rw.example.com/dev", "admin:****@"),
    (f"postgresql://admin:p%40{PASSWORD}@rw.example.com/dev", "admin:****@"),
    (f"postgresql://admin:{PASSWORD}@h1:4566,h2:4567/dev", "@h1:4566,h2:4567/dev"),
    (f"host=rw.example.com user=admin password={PASSWORD} dbname=dev", "admin:****@"),
    (f"host=rw.example.com password='{PASSWORD} x' dbname=dev", ":****@rw.example.com"),
    (f"host=rw.example.com sslpassword={PASSWORD}", "sslpassword=%2A%2A%2A%2A"),
]


@pytest.mark.parametrize(("url", "shown"), LIBPQ_FORMS)
def test_passwords_are_masked_in_every_libpq_form(url: str, shown: str) -> None:
    masked = load_settings(env={"RISINGWAVE_URL": url}).masked()["risingwave_url"]
    assert PASSWORD not in masked and PASSWORD.replace("-", "%2D") not in masked
    assert shown in masked


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://admin:p@{PASSWORD}@rw.example.com/dev",  # '@' not written %40
        f"http://admin:{PASSWORD}@rw.example.com/dev",
        f"postgresql://admin:{PASSWORD}@rw.example.com:99999/dev",
        f"postgresql://admin:{PASSWORD}@rw.example.com:²/dev",
        f"postgresql:///dev?password={PASSWORD}",  # no host
        f"password={PASSWORD} host",  # libpq cannot parse it
    ],
)
def test_malformed_risingwave_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError, match="RISINGWAVE_URL") as error:
        load_settings(env={"RISINGWAVE_URL": url})
    assert PASSWORD not in str(error.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KAFKA_PARTITIONS", "²"),
        ("KAFKA_BOOTSTRAP_SERVERS", "PLAINTEXT://broker:9092"),
        ("KAFKA_BOOTSTRAP_SERVERS", "broker:99999"),
        ("KAFKA_BOOTSTRAP_SERVERS", "broker:0"),
        ("RISINGWAVE_KAFKA_BOOTSTRAP_SERVERS", "kafka:port"),
        ("IMAGE_URL_TEMPLATE", "https://cdn/{article_id}/{size}.jpg"),
        ("IMAGE_URL_TEMPLATE", "https://cdn/{article_id}/{0}.jpg"),
        ("IMAGE_URL_TEMPLATE", "https://cdn/{article_id.x}.jpg"),
        ("IMAGE_URL_TEMPLATE", "https://cdn/{article_id}.jpg}"),
    ],
)
def test_malformed_settings_stop_with_the_variable_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env={name: value})


def test_bad_paths_stop_with_the_variable_name(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    cases = {
        "DUCKDB_PATH": [str(tmp_path), str(tmp_path / "a-file" / "sub" / "hm.duckdb")],
        "DATA_DIR": [str(tmp_path / "a-file")],
        "OUTPUT_DIR": [str(tmp_path / "a-file")],
    }
    for name, values in cases.items():
        for value in values:
            with pytest.raises(ConfigError, match=name):
                load_settings(env={name: value})


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("KAFKA_PARTITIONS=3\nRISINGWAVE_URL\n", 2, "RISINGWAVE_URL has no '='"),
        (f"A=1\n\nRISINGWAVE_URL='postgresql://u:{PASSWORD}@h/dev\nB=2\n", 3, "unclosed quote"),
    ],
)
def test_local_env_errors_name_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, line: int, why: str
) -> None:
    env_file = tmp_path / "local.env"
    env_file.write_text(text)
    monkeypatch.setattr("recsys.settings.LOCAL_ENV", env_file)
    with pytest.raises(ConfigError, match=f"{env_file}:{line}: .*{why}") as error:
        load_settings()
    assert PASSWORD not in str(error.value)
