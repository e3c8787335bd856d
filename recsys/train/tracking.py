"""Comet experiments: online with COMET_API_KEY, otherwise offline archives under the run's folder.

Auto-logging is off: everything logged is chosen explicitly (parameters, per-epoch
metrics, catalogue metrics, tables), so no environment variable or secret can leak.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

from recsys.settings import Settings

COMET_HTTP_TIMEOUT_S = 3
_QUIET = {
    "auto_metric_logging": False,
    "auto_param_logging": False,
    "auto_output_logging": False,
    "auto_histogram_weight_logging": False,
    "log_code": False,
    "log_graph": False,
    "log_env_details": False,
    "log_env_gpu": False,
    "log_env_host": False,
    "log_env_cpu": False,
    "log_git_metadata": False,
    "log_git_patch": False,
    "parse_args": False,
    "display_summary_level": 0,
}


def start_experiment(settings: Settings, name: str, tags: list[str], offline_dir: Path):
    """A Comet experiment named `name`; offline (zip in `offline_dir`) unless an API key is set.

    An online experiment Comet does not accept (server unreachable, key refused) becomes
    an offline one, said loudly: its metrics are kept for `comet upload`, not dropped.
    """
    # Comet's SDK reports its own errors to Sentry unless told not to: no calls home.
    os.environ.setdefault("COMET_ERROR_TRACKING_ENABLE", "false")
    # Its defaults (10 s per request, retried) took 239 s against a silent server.
    os.environ.setdefault("COMET_TIMEOUT_HTTP", str(COMET_HTTP_TIMEOUT_S))
    os.environ.setdefault("COMET_TIMEOUT_API", str(COMET_HTTP_TIMEOUT_S))
    os.environ.setdefault("COMET_HTTP_SESSION_RETRY_TOTAL", "0")
    os.environ.setdefault("COMET_GET_OR_ADD_EXPERIMENT_RETRY_TOTAL", "0")
    import comet_ml

    common = {"project_name": settings.comet_project, "workspace": settings.comet_workspace}
    experiment = None
    if settings.comet_api_key:
        experiment = comet_ml.Experiment(api_key=settings.comet_api_key, **common, **_QUIET)
        if not experiment.alive:
            print(
                "warning: Comet did not accept the experiment (is it reachable, and is "
                "COMET_API_KEY right?); it is logged offline instead. " + upload_hint(offline_dir),
                file=sys.stderr,
            )
            experiment = None
    if experiment is None:
        offline_dir.mkdir(parents=True, exist_ok=True)
        experiment = comet_ml.OfflineExperiment(
            offline_directory=str(offline_dir), **common, **_QUIET
        )
    experiment.set_name(name)
    experiment.add_tags(tags)
    return experiment


def epoch_logger(experiment):
    """A training callback (epoch, logs) that logs each epoch's metrics under `train`."""

    def log(epoch: int, logs: dict[str, float]) -> None:
        experiment.log_metrics(logs, prefix="train", epoch=epoch + 1, step=epoch + 1)

    return log


def log_rankers(experiment, fitted: dict, folder: Path) -> dict[str, dict]:
    """Each ranker's validation MAP@12 per round, facts, feature importance and model
    file (in `folder`, `<name>.txt`), and the training parameters, as one experiment
    (then ended); returns each ranker's facts, as the run records them."""
    from recsys.strategy.ranker import importance
    from recsys.train.ranker import PARAMS

    experiment.log_parameters({f"ranker_{k}": v for k, v in PARAMS.items()})
    facts = {}
    for name, one in fitted.items():
        for round_, value in enumerate(one.validation_map, start=1):
            experiment.log_metric(f"{name}_validation_map@12", value, step=round_)
        facts[name] = one.facts()
        experiment.log_metrics(facts[name], prefix=name)
        experiment.log_model(name, str(folder / f"{name}.txt"))
    models = {name: one.model for name, one in fitted.items()}
    experiment.log_table("ranker_importance.csv", tabular_data=importance(models))
    experiment.end()
    return facts


def upload_hint(offline_dir: Path) -> str:
    """How to send offline archives to Comet later (the key comes from the environment)."""
    return (
        f"Comet experiments were saved offline in {offline_dir}. To upload them: "
        f"COMET_API_KEY=<your key> comet upload {offline_dir}/*.zip"
    )


def read_offline_archive(archive: Path) -> tuple[dict[str, object], dict[str, list[float]]]:
    """(parameters, metric name -> values) from an offline archive: for checks and tests."""
    params: dict[str, object] = {}
    metrics: dict[str, list[float]] = {}
    with zipfile.ZipFile(archive) as zipped:
        for line in zipped.read("messages.json").decode().splitlines():
            message = json.loads(line)
            payload = message.get("payload", {})
            param = payload.get("param") or payload.get("params") or {}  # "params": a list value
            if message.get("type") == "parameter_msg" and param.get("source") == "manual":
                params[param["paramName"]] = param["paramValue"]
            elif message.get("type") == "metric_msg":
                metric = payload["metric"]
                metrics.setdefault(metric["metricName"], []).append(float(metric["metricValue"]))
    return params, metrics
