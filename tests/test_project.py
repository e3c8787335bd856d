"""The environment itself: the locked set is what is installed, every named package imports,
the top-level folders never shadow libraries, and the code is lint-clean."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version

import pytest

from recsys.settings import REPO_ROOT

NAMED_PACKAGES = [
    "risingwave",  # risingwave-py
    "psycopg",
    "kafka",  # kafka-python
    "confluent_kafka",
    "metaflow",
    "comet_ml",
    "merlin.models.tf",  # merlin-models
    "nvtabular",
    "streamlit",
    "pandas",
    "duckdb",
    "sqlglot",
    "faiss",
    "lightgbm",
]


def run_python(code: str) -> str:
    """Run code in a fresh interpreter from the repository root, as a user's script would."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_top_level_folders_do_not_shadow_libraries() -> None:
    out = run_python(
        "import sys; sys.path.insert(0, '.')\n"
        "import kafka, streamlit\n"
        "print(kafka.__file__); print(streamlit.__file__)\n"
        "from kafka import KafkaProducer; import streamlit.testing.v1"
    )
    kafka_file, streamlit_file = out.split()
    assert "site-packages" in kafka_file and "site-packages" in streamlit_file
    assert not (REPO_ROOT / "kafka" / "__init__.py").exists()
    assert not (REPO_ROOT / "streamlit" / "__init__.py").exists()


def test_every_named_package_imports() -> None:
    imports = "\n".join(f"import {name}" for name in NAMED_PACKAGES)
    out = run_python(
        f"{imports}\nfrom risingwave import RisingWave, RisingWaveConnOptions, OutputFormat\n"
        "import tensorflow as tf; print(tf.__version__)"
    )
    assert out.strip().splitlines()[-1] == "2.12.1"


def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    return {p["name"]: p["version"] for p in lock["package"] if "version" in p}


@pytest.mark.parametrize(
    "name",
    [
        "pandas",
        "numpy",
        "pyarrow",
        "dask",
        "tensorflow-cpu",
        "merlin-models",
        "merlin-core",
        "nvtabular",
        "typing-extensions",
        "protobuf",
        "risingwave-py",
        "streamlit",
    ],
)
def test_installed_version_is_the_locked_one(name: str) -> None:
    try:
        installed = version(name)
    except PackageNotFoundError:
        pytest.fail(f"{name} is locked but not installed: run `make setup`")
    assert installed == locked_versions()[name]


def test_conflicting_pins_are_overridden_on_purpose() -> None:
    uv = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["uv"]
    overrides = " ".join(uv["override-dependencies"])
    assert "pandas==2.2.3" in overrides and "typing-extensions" in overrides
    assert version("pandas") == "2.2.3"  # risingwave-py's floor, over merlin-core's pandas<1.6
    assert not any(p.startswith("dask-expr") for p in locked_versions())


def test_ruff_lint_and_format() -> None:
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run([*ruff, "check", "."], cwd=REPO_ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-3000:]
    fmt = subprocess.run(
        [*ruff, "format", "--check", "."], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout[-3000:]
