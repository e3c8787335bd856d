"""A flow run's folder, OUTPUT_DIR/<run id>/: its file names, `run_info.json`, and reading it.

The flow writes it (`recsys.train.export`); the backtest, the service, the live shop and
the Streamlit page read it, all through this module (ARCHITECTURE.md, "Flow export
contract", lists what each file holds). `run_info.json` is written last: its presence
means the export is complete.

The run records where its data was (data folder, engine, DuckDB file, photos): the page
and the service read that run's data unless a setting says otherwise
(`settings_for_run`), so `make app` after `DATA_DIR=<dir> make run` shows that run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from recsys.settings import Settings
from recsys.strategy.inputs import CandidateRule
from recsys.strategy.served import Served

FLOW_NAME = "MyMerlinFlow"
RUN_COMMAND = "python recsys/my_merlin_flow.py run"

RUN_INFO = "run_info.json"
PREDICTIONS = "predictions.parquet"
METRICS = "metrics.parquet"
DIFFERENCES = "differences.parquet"
BACKTEST = "backtest.parquet"
BACKTEST_DIFFERENCES = "backtest_differences.parquet"
TEST_ACTUALS = "test_actuals.parquet"
ARTICLES = "articles.parquet"
CUSTOMER_EMBEDDINGS = "customer_embeddings.parquet"
ARTICLE_EMBEDDINGS = "article_embeddings.parquet"
ARTICLE_INDEX = "article_index.faiss"
GRID = "grid.parquet"
RANKERS = "rankers"  # the learned rankers: <name>.txt, LightGBM's model files
RANKER_IMPORTANCE = "ranker_importance.parquet"  # ranker, feature, gain, splits
QUERY_TOWER = "query_tower"
QUERY_TOWER_WEIGHTS = "query_tower.npz"  # the same tower as arrays (the service's numpy pass)
WORKFLOWS = "workflows"
CUSTOMER_WORKFLOW = "workflows/customers"
WORK = "work"  # the run's scratch data while it runs (removed by the flow's end step)


# Where a run's data was: RunInfo's field -> the setting that overrides it.
RUN_LOCATIONS = {
    "data_dir": "DATA_DIR",
    "duckdb_path": "DUCKDB_PATH",
    "image_dir": "IMAGE_DIR",
    "image_url_template": "IMAGE_URL_TEMPLATE",
}


class RunMissing(RuntimeError):
    """No usable run folder: the message names the missing file and what makes one."""


@dataclass(frozen=True)
class RunInfo:
    """`run_info.json`: what the run was, on what data, and what it serves."""

    run_id: str
    created_at: str  # ISO time, UTC
    data_dir: str
    engine: str  # "embedded" | "risingwave"
    dates: dict[str, date]  # first_day, train_start, validation_start, test_start, end, ...
    rows: dict[str, int]  # per split
    served: Served
    candidate_rule: CandidateRule
    top_k: int
    duckdb_path: str | None = None  # the embedded engine's file (None on RisingWave)
    image_dir: str | None = None  # where the photos were looked for
    image_url_template: str | None = None
    photos: bool = True  # whether the run's data had photos (a folder or a URL template)
    flow: str = FLOW_NAME
    profile: str = ""
    device: str = ""
    best_hyperparameters: dict = field(default_factory=dict)
    validation: dict[str, float] = field(default_factory=dict)
    rankers: dict[str, dict] = field(default_factory=dict)  # how each ranker trained

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        served, rule = data.pop("served"), data.pop("candidate_rule")
        data |= {"warm_strategy": served["warm"], "fallback": served["cold"]}
        data |= {"candidate_days": rule["days"], "candidate_min_purchases": rule["min_purchases"],
                 "candidate_prior": rule["prior"]}  # fmt: skip
        data["dates"] = {k: v.isoformat() for k, v in self.dates.items()}
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RunInfo:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        served = Served(data.pop("warm_strategy", "two_tower"), data.pop("fallback", "popular"))
        rule = CandidateRule(
            int(data.pop("candidate_days", 0) or 0),
            int(data.pop("candidate_min_purchases", 1) or 1),
            float(data.pop("candidate_prior", 0.0) or 0.0),
        )
        dates = {k: date.fromisoformat(v) for k, v in (data.pop("dates", None) or {}).items()}
        kept = {k: v for k, v in data.items() if k in known}
        return cls(**kept, dates=dates, served=served, candidate_rule=rule)


class RunFolder:
    """OUTPUT_DIR/<run id>/ by name: `folder.file(PREDICTIONS)`, `folder.info()`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return self.file(name).exists()

    def require(self, *names: str) -> None:
        """Raise RunMissing naming the first of `names` (and run_info.json) not there."""
        for name in (RUN_INFO, *names):
            if not self.has(name):
                raise RunMissing(
                    f"{self.file(name)} is missing: not a complete export of {FLOW_NAME} "
                    "(EXPORT_TO_APP=false, or a run from an older version); make a new run "
                    f"with `{RUN_COMMAND}`"
                )

    def info(self) -> RunInfo:
        self.require()
        return RunInfo.from_json(self.file(RUN_INFO).read_text())

    def write_info(self, info: RunInfo) -> None:
        """Written last by the export: from then on the folder counts as complete."""
        self.file(RUN_INFO).write_text(info.to_json())

    @classmethod
    def latest(cls, settings: Settings) -> RunFolder:
        """The newest complete run under OUTPUT_DIR (by its created time)."""
        folders = [cls(p.parent) for p in settings.output_dir.glob(f"*/{RUN_INFO}")]
        readable = [(f, _created_at(f)) for f in folders]
        readable = [(f, created) for f, created in readable if created is not None]
        if not readable:
            raise RunMissing(no_run_message(settings))
        return max(readable, key=lambda pair: pair[1])[0]

    @classmethod
    def named(cls, settings: Settings, run_id: str | None) -> RunFolder:
        """The run `run_id` of OUTPUT_DIR, or the newest when None."""
        if run_id is None:
            return cls.latest(settings)
        folder = cls(settings.output_dir / run_id)
        if not folder.has(RUN_INFO):
            raise RunMissing(f"{folder.path}: no exported run {run_id!r} there (OUTPUT_DIR)")
        return folder


def _created_at(folder: RunFolder) -> str | None:
    try:
        return str(json.loads(folder.file(RUN_INFO).read_text()).get("created_at", ""))
    except (OSError, ValueError):
        return None


def no_run_message(settings: Settings) -> str:
    """What to say before any run exists, with the command that creates one."""
    return (
        f"No successful run of {FLOW_NAME} with exported predictions was found in "
        f"{settings.output_dir}. Create one (it trains on DATA_DIR and writes to OUTPUT_DIR):"
        f"\n\n    DATA_DIR={settings.data_dir} OUTPUT_DIR={settings.output_dir} {RUN_COMMAND}"
    )


def settings_for_run(settings: Settings, info: RunInfo) -> tuple[Settings, list[str]]:
    """`settings` with the run's data folder, DuckDB file and photos wherever no setting
    names them, and one line per choice saying which is used and why."""
    changes: dict[str, object] = {}
    notes = []
    for name, variable in RUN_LOCATIONS.items():
        recorded = getattr(info, name)
        if variable in settings.given or recorded is None:
            notes.append(f"{variable}: {getattr(settings, name)} (the setting)")
        else:
            changes[name] = recorded if name == "image_url_template" else Path(recorded)
            notes.append(f"{variable}: {recorded} (the run's)")
    if not info.photos:
        notes.append("photos: none in the run's data (placeholders are shown)")
    return dataclasses.replace(settings, **changes), notes
