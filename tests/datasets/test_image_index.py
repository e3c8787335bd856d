"""images.csv for the real Kaggle photos: one row per photo that exists."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.ingest.loaders import read_table
from recsys.settings import REPO_ROOT


def test_index_real_photos(hm_sample: Path, tmp_path: Path) -> None:
    shutil.copytree(hm_sample / "images", tmp_path / "images")
    (tmp_path / "images" / "010" / "notes.txt").parent.mkdir(exist_ok=True)
    (tmp_path / "images" / "010" / "notes.txt").write_text("not a photo")
    result = subprocess.run(
        [sys.executable, "data/generate.py", "--index-images", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    frame, errors = read_table("images", tmp_path)
    photos = sorted((hm_sample / "images").glob("*/*.jpg"))
    assert errors == []
    assert frame["article_id"].tolist() == [p.stem for p in photos]
    assert all((tmp_path / path).is_file() for path in frame["image_path"])


def test_index_without_images_folder_names_it(tmp_path: Path) -> None:
    from recsys.datasets.image_index import index_images

    with pytest.raises(FileNotFoundError, match="images"):
        index_images(tmp_path)
