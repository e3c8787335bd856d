"""What the flow's process needs before Metaflow and TensorFlow are imported.

`prepare_flow_process()` is called at the top of recsys/my_merlin_flow.py (every step
runs that file again in its own process), so the commands in the docs work as written:

- a user name: Metaflow refuses to run without one (it reads METAFLOW_USER, SUDO_USER,
  USERNAME, USER) and refuses "root", the usual user in containers and CI;
- `--max-workers` defaults to this machine's cores instead of Metaflow's fixed 16: each
  TensorFlow process already uses every core, more branches only add memory;
- TensorFlow's and absl's informational lines are dropped; their warnings are kept,
  except the few that say nothing is wrong (see NOISE).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import pwd
import sys
import types
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from pathlib import Path

RUN_COMMANDS = "metaflow.cli_components.run_cmds"  # defines `run` and `resume`
FALLBACK_USER = "local"  # what runs are tagged with when the only name is "root"
# Warnings that say nothing is wrong and that no user of this project can act on,
# measured in a flow run's log (tiny data: 39 of 149 lines were TensorFlow/absl noise).
NOISE = (
    "you can ignore this message",  # TF itself: executor start aborted while tracing
    "was *not* compiled",  # the exported query tower is loaded for inference only
    "Please fix your imports",  # merlin-models imports a moved TF module
    "Found untraced functions",  # Keras, on every SavedModel export
    "with unsupported characters which will be renamed",  # "FN"/"Active" in the SavedModel
)


def prepare_flow_process() -> None:
    """Set the user name, the worker default and the log levels; idempotent."""
    os.environ.setdefault("METAFLOW_USER", flow_user())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # C++ INFO off, warnings kept
    _quiet_python_logs()
    _default_max_workers(machine_cores())


def flow_user() -> str:
    """The user Metaflow will accept: the first name it would read, if it is not root."""
    names = [os.environ.get(v) for v in ("METAFLOW_USER", "SUDO_USER", "USERNAME", "USER")]
    with contextlib.suppress(KeyError):  # a uid without a passwd entry (docker --user N)
        names.append(pwd.getpwuid(os.getuid()).pw_name)
    return next((n for n in names if n and n != "root"), FALLBACK_USER)


def machine_cores() -> int:
    """Cores this process may run on (a container's CPU set), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS has no affinity call
        return os.cpu_count() or 1


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in NOISE)


def _quiet_python_logs() -> None:
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)  # absl INFO lines off
    for name in ("tensorflow", "absl"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())


def _default_max_workers(cores: int) -> None:
    """`run` and `resume --max-workers` default to `cores` (their --help shows it too).

    The commands are changed right after Metaflow imports their module, not by importing
    it here: Metaflow imports it once the flow class exists, and only then adds the flow's
    own parameters (--learning-rates, ...) to `run`.
    """

    def patch(run_cmds: types.ModuleType) -> None:
        for command in (run_cmds.run, run_cmds.resume):
            for param in command.params:
                if param.name == "max_workers":
                    param.default = cores

    if RUN_COMMANDS in sys.modules:
        patch(sys.modules[RUN_COMMANDS])
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(RUN_COMMANDS, patch))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls `then(module)` once `name` has been imported (by whoever imports it)."""

    def __init__(self, name: str, then: Callable[[types.ModuleType], None]) -> None:
        self.name, self.then = name, then

    def find_spec(self, name: str, path: object, target: object = None) -> ModuleSpec | None:
        if name != self.name:
            return None
        sys.meta_path.remove(self)  # let the regular finders find it, once
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            execute(module)
            self.then(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def isolated_flow_env(root: Path, data_dir: Path) -> dict[str, str]:
    """Environment for a flow run isolated under `root`, reading `data_dir`, Comet offline:
    its own Metaflow datastore, DuckDB file and OUTPUT_DIR (tests, benchmarks)."""
    (root / "metaflow").mkdir(parents=True, exist_ok=True)
    isolated = {
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root / "metaflow"),
        # cards otherwise land in ./.metaflow of the working directory
        "METAFLOW_CARD_LOCALROOT": str(root / "metaflow" / ".metaflow" / "mf.cards"),
        "METAFLOW_DEFAULT_DATASTORE": "local",
        "METAFLOW_DEFAULT_METADATA": "local",
        "USERNAME": "tester",
        "DATA_DIR": str(data_dir),
        "DUCKDB_PATH": str(root / "hm.duckdb"),
        "OUTPUT_DIR": str(root / "output"),
        "COMET_API_KEY": "",  # never online from tests or benchmarks
        "RISINGWAVE_URL": "",
        "EXPORT_TO_APP": "true",
        "DASK_DATAFRAME__QUERY_PLANNING": "False",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    return {**os.environ, **isolated}
