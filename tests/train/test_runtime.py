"""The flow's commands as a user types them: as root, without a user name, on any machine."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.train.runtime import FALLBACK_USER, NOISE, machine_cores

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "recsys" / "my_merlin_flow.py"
NAME_VARIABLES = ("METAFLOW_USER", "SUDO_USER", "USERNAME", "USER", "LOGNAME")


def python(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter with no user-name variables except those in `env`."""
    base = {k: v for k, v in os.environ.items() if k not in NAME_VARIABLES}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.parametrize("env", [{}, {"USER": "root"}, {"USER": "alice"}], ids=str)
def test_flow_help_works_as_written_and_defaults_to_the_machines_cores(env) -> None:  # noqa: ANN001
    result = python(str(FLOW), "run", "--help", **env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Unknown user" not in result.stdout + result.stderr
    assert "--learning-rates" in result.stdout  # the flow's own parameters are still there
    option = re.search(r"--max-workers INTEGER.*?\[default: (\d+)\]", result.stdout, re.S)
    assert option and int(option.group(1)) == machine_cores()  # not Metaflow's fixed 16


@pytest.mark.parametrize(
    ("env", "user"),
    [({}, None), ({"USER": "root"}, None), ({"USER": "alice"}, "alice"),
     ({"USERNAME": "bob", "USER": "root"}, "bob"), ({"METAFLOW_USER": "ci"}, "ci")],
)  # fmt: skip
def test_the_user_name_is_the_one_metaflow_would_read_never_root(env, user) -> None:  # noqa: ANN001
    login = pwd.getpwuid(os.getuid()).pw_name
    expected = user or (FALLBACK_USER if login == "root" else login)
    code = "from recsys.train.runtime import flow_user; print(flow_user())"
    assert python("-c", code, **env).stdout.strip() == expected


def test_tensorflow_noise_is_dropped_and_its_warnings_kept() -> None:
    code = (
        "from recsys.train.runtime import NOISE, prepare_flow_process\n"
        "prepare_flow_process()\n"
        "from absl import logging as absl_logging\n"
        "from tensorflow.python.platform import tf_logging\n"
        "for text in NOISE:\n"
        "    tf_logging.warning(f'TF says {text} here')\n"
        "    absl_logging.warning(f'absl says {text} here')\n"
        "tf_logging.warning('Gradients do not exist for variables')\n"
        "import os; print('TF_CPP_MIN_LOG_LEVEL', os.environ['TF_CPP_MIN_LOG_LEVEL'])\n"
    )
    result = python("-c", code)

    assert result.returncode == 0, result.stderr
    assert "Gradients do not exist" in result.stderr
    assert not [text for text in NOISE if text in result.stderr], result.stderr
    assert "TF_CPP_MIN_LOG_LEVEL 1" in result.stdout
