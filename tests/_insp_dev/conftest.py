import json, os
from pathlib import Path
import pytest
from tests.fixtures_flow import FlowRun

@pytest.fixture(scope="session")
def tiny_flow_run():
    env = {**os.environ, **json.load(open("/tmp/insp_dev/tiny/env.json"))}
    root = Path("/tmp/insp_dev/tiny/flow")
    rid = (root / "run_id").read_text().strip()
    return FlowRun(rid, root / "output" / rid, env, Path(env["DATA_DIR"]), "")
