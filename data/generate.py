"""Generate the synthetic H&M-shaped data set (see docs/data.md and recsys/datasets/generator.py).

python data/generate.py                  # demo scale into DATA_DIR (default data/demo)
python data/generate.py --scale tiny --out /tmp/tiny --seed 7
python data/generate.py --scale full --out /work/hm-full --no-images
python data/generate.py --index-images data/kaggle   # images.csv for the real Kaggle photos
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from recsys.datasets.behaviour import behaviour
from recsys.datasets.generator import SCALES, simulate, write
from recsys.datasets.image_index import index_images
from recsys.datasets.still_selling import still_selling
from recsys.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="demo")
    parser.add_argument("--out", type=Path, help="data directory to write (default: DATA_DIR)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--no-images",
        dest="images",
        action="store_false",
        help="skip drawing images (images.csv is then written with its header only)",
    )
    parser.add_argument(
        "--index-images",
        type=Path,
        metavar="DIR",
        help="generate nothing: write DIR/images.csv for the photos in DIR/images (real data)",
    )
    args = parser.parse_args(argv)
    if args.index_images:
        count = index_images(args.index_images)
        print(f"wrote {args.index_images / 'images.csv'}: {count:,} images")
        return 0
    args.out = args.out or load_settings().data_dir
    started = time.perf_counter()
    data = simulate(args.scale, args.seed)
    counts = write(data, args.out, args.images)
    summary = ", ".join(f"{name} {count:,}" for name, count in counts.items())
    print(f"wrote {args.out}: {summary} in {time.perf_counter() - started:.1f} s")
    rows = data.rows
    print(still_selling(rows.day, rows.customer, rows.article))
    print(behaviour(rows.day, rows.customer, rows.article, data.catalogue.product))
    return 0


if __name__ == "__main__":
    sys.exit(main())
