"""docker-compose.yml cannot be started here (no Docker), so it is checked against the
Compose Specification's JSON schema (as shipped by check-jsonschema) and against the
facts the rest of the project depends on."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_schema() -> dict:
    vendored = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text())


def test_compose_file_follows_the_compose_specification() -> None:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(COMPOSE), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_check_would_catch_a_mistake() -> None:
    schema = compose_schema()
    broken = {"services": {"kafka": {"image": "x", "healthcheck": {"tests": ["CMD", "true"]}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_kafka_image_is_the_local_brokers_pinned_version() -> None:
    pom = (ROOT / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom).group(1)
    assert COMPOSE["services"]["kafka"]["image"] == f"apache/kafka:{version}"
    assert COMPOSE["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_risingwave_runs_single_node_on_its_documented_ports() -> None:
    service = COMPOSE["services"]["risingwave"]
    assert re.fullmatch(r"risingwavelabs/risingwave:v\d+\.\d+\.\d+", service["image"])
    assert service["command"] == "single_node"
    assert {"4566:4566", "5691:5691"} <= set(service["ports"])
    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_every_service_has_a_health_check_and_a_pinned_image() -> None:
    for name, service in COMPOSE["services"].items():
        assert service["healthcheck"]["test"][0] == "CMD-SHELL", name
        assert not service["image"].endswith(":latest"), name


def test_risingwave_reaches_kafka_on_an_advertised_listener() -> None:
    advertised = COMPOSE["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "kafka:29092" in advertised  # RisingWave, inside the compose network
    assert "127.0.0.1:9092" in advertised  # the producer and consumer on the host
    header = (ROOT / "docker-compose.yml").read_text().split("\nname:")[0]
    assert "RISINGWAVE_KAFKA_BOOTSTRAP_SERVERS=kafka:29092" in header
