"""Comet: an online experiment Comet does not accept keeps its metrics offline, quickly."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from recsys.settings import load_settings
from recsys.train.tracking import read_offline_archive, start_experiment


def test_unusable_comet_key_falls_back_to_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as silent:  # a Comet server that accepts and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv(
            "COMET_URL_OVERRIDE", f"http://127.0.0.1:{silent.getsockname()[1]}/clientlib/"
        )
        monkeypatch.setenv("COMET_TIMEOUT_HTTP", "1")
        monkeypatch.setenv("COMET_TIMEOUT_API", "1")
        settings = load_settings(env={"COMET_API_KEY": "not-a-usable-key-123"})
        started = time.monotonic()
        experiment = start_experiment(settings, "t", ["tag"], tmp_path / "comet")
        experiment.log_metric("recall_at_12", 0.25)
        experiment.end()
    assert time.monotonic() - started < 10
    assert "logged offline instead" in capsys.readouterr().err
    archive = next((tmp_path / "comet").glob("*.zip"))
    assert read_offline_archive(archive)[1] == {"recall_at_12": [0.25]}
