"""Test-session set-up: each area keeps its fixtures in its own plugin module."""

pytest_plugins = [
    "tests.fixtures_data",
    "tests.fixtures_kafka",
    "tests.fixtures_engine",
    "tests.fixtures_flow",
]
