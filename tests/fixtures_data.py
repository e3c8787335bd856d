"""Shared fixtures: sample data every area's tests run on."""

from __future__ import annotations

from pathlib import Path

import pytest

HM_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "hm-sample"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `tiny` scale, generated once per test session; tests must not modify it."""
    from recsys.datasets.generator import generate  # imported here so other tests run without it

    out = tmp_path_factory.mktemp("tiny-data")
    generate(scale="tiny", out_dir=out, seed=42)
    return out


@pytest.fixture(scope="session")
def hm_sample() -> Path:
    """Real Kaggle rows in ../shared/hm-sample (not redistributable, so never in the repo)."""
    if not (HM_SAMPLE / "transactions_train.csv").is_file():
        pytest.skip(f"real H&M sample not found at {HM_SAMPLE}; these checks need it")
    return HM_SAMPLE
