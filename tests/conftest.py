"""Test-session set-up: each area keeps its fixtures in its own plugin module."""

import pytest

pytest_plugins = [
    "tests.fixtures_data",
    "tests.fixtures_kafka",
    "tests.fixtures_engine",
    "tests.fixtures_flow",
]


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001
    """A test that starts the broker must say so (`-m "not kafka"` runs without Java)."""
    unmarked = [i.nodeid for i in items if "kafka_broker" in getattr(i, "fixturenames", ())
                and i.get_closest_marker("kafka") is None]  # fmt: skip
    if unmarked:
        raise pytest.UsageError(
            f"tests use the Kafka broker without @pytest.mark.kafka: {unmarked}"
        )
