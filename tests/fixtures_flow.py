"""Shared fixtures: flow. Runs of MyMerlinFlow, once per test session, for every area's tests.

Each run is a real `python recsys/my_merlin_flow.py run` (Metaflow local runtime) in its
own temp folder: its own Metaflow sysroot, DuckDB file and OUTPUT_DIR, so runs never
collide with a developer's runs or with each other.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from recsys.train.runtime import isolated_flow_env

REPO_ROOT = Path(__file__).resolve().parents[1]
FLOW = REPO_ROOT / "recsys" / "my_merlin_flow.py"
# Small but real: two grid points exercise the foreach and the join. The tiny data's
# weeks are thin: with the profile's minimum of 3 purchases fewer than 100 articles are
# candidates and the model ranks the whole catalogue, so the tiny run keeps 1, which
# restricts (tests/serve/test_serve.py checks the restriction).
TINY_ARGS = [
    "--learning-rates", "0.01,0.003", "--batch-sizes", "256", "--epochs", "2",
    "--candidate-min-purchases", "1",
]  # fmt: skip
DEMO_ARGS = ["--learning-rates", "0.01", "--batch-sizes", "1024", "--epochs", "3"]


@dataclass(frozen=True)
class FlowRun:
    """A finished run: where its export is and the environment that finds it again."""

    run_id: str
    export_dir: Path
    env: dict[str, str]  # METAFLOW_DATASTORE_SYSROOT_LOCAL, OUTPUT_DIR, DATA_DIR, DUCKDB_PATH, ...
    data_dir: Path
    output: str  # the run's console output (stdout + stderr)

    @property
    def metaflow_root(self) -> Path:
        return Path(self.env["METAFLOW_DATASTORE_SYSROOT_LOCAL"])


def run_flow(env: dict[str, str], *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python recsys/my_merlin_flow.py run ...`, at most 2 branches at once (2 cores in CI)."""
    return subprocess.run(
        [sys.executable, str(FLOW), "--no-pylint", "run", "--max-workers", "2", *args],
        env=env,
        # Metaflow writes cards under ./.metaflow of the working directory, and its client
        # reads them next to the run's datastore: run where both are the same place.
        cwd=env["METAFLOW_DATASTORE_SYSROOT_LOCAL"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def finished_run(root: Path, data_dir: Path, args: list[str]) -> FlowRun:
    env = isolated_flow_env(root, data_dir)
    run_id_file = root / "run_id"
    result = run_flow(env, "--run-id-file", str(run_id_file), *args)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise AssertionError(f"the flow failed (exit {result.returncode}):\n{output[-6000:]}")
    run_id = run_id_file.read_text().strip()
    return FlowRun(run_id, Path(env["OUTPUT_DIR"]) / run_id, env, data_dir, output)


@pytest.fixture(scope="session")
def tiny_flow_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> FlowRun:
    """The whole flow, once, on the tiny data, with a 2-week backtest (about 3 minutes on
    2 cores)."""
    args = [*TINY_ARGS, "--backtest-weeks", "2"]
    return finished_run(tmp_path_factory.mktemp("tiny-flow"), tiny_data, args)


@pytest.fixture(scope="session")
def tiny_data_without_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny data again, as `data/generate.py --no-images` writes it: no photos."""
    from recsys.datasets.generator import generate

    out = tmp_path_factory.mktemp("tiny-data-no-photos")
    generate(scale="tiny", out_dir=out, seed=42, images=False)
    return out


@pytest.fixture(scope="session")
def tiny_flow_run_without_photos(
    tiny_data_without_photos: Path, tmp_path_factory: pytest.TempPathFactory
) -> FlowRun:
    """The tiny run on the same rows without photos, and its training rows cut into
    Parquet parts of 1,000 rows: neither may change a result."""
    args = [*TINY_ARGS, "--part-rows", "1000"]
    root = tmp_path_factory.mktemp("tiny-flow-no-photos")
    return finished_run(root, tiny_data_without_photos, args)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `demo` scale, generated once per session (built to carry a learnable signal)."""
    from recsys.datasets.generator import generate

    out = tmp_path_factory.mktemp("demo-data")
    generate(scale="demo", out_dir=out, seed=42)
    return out


@pytest.fixture(scope="session")
def demo_flow_run(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> FlowRun:
    """The whole flow on the demo data with a reduced grid (slow: several minutes)."""
    return finished_run(tmp_path_factory.mktemp("demo-flow"), demo_data, DEMO_ARGS)
