"""Build `images.csv` for a folder of product photos in the Kaggle layout.

The Kaggle archive ships `images/0XX/0XXXXXXXXX.jpg` but no index; the pipeline's
`images_topic` and `images_t` view need one row per photo that actually exists, so
articles without a photo keep NULL instead of a broken link.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from recsys.datasets.hm_schema import IMAGES, image_path

PHOTO_NAME = re.compile(r"^[0-9]{10}\.jpg$")


def index_images(data_dir: Path) -> int:
    """Write DATA_DIR/images.csv listing every photo under DATA_DIR/images; returns the count."""
    folder = data_dir / "images"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no images folder (expected images/0XX/0XXXXXXXXX.jpg)")
    article_ids = sorted(p.stem for p in folder.glob("*/*.jpg") if PHOTO_NAME.match(p.name))
    with (data_dir / IMAGES.file).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(IMAGES.column_names)
        writer.writerows((article_id, image_path(article_id)) for article_id in article_ids)
    return len(article_ids)
