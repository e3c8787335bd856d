"""Generate the synthetic H&M-shaped data set (see docs/data.md and recsys/datagen.py).

python data/generate.py --scale demo --out data/demo
python data/generate.py --scale full --out /work/hm-full --no-images
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from recsys.datagen import SCALES, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="demo")
    parser.add_argument("--out", type=Path, required=True, help="data directory to write")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--no-images",
        dest="images",
        action="store_false",
        help="skip drawing images (images.csv is then written with its header only)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = generate(scale=args.scale, out_dir=args.out, seed=args.seed, images=args.images)
    rows = ", ".join(f"{name} {count:,}" for name, count in counts.items())
    print(f"wrote {args.out}: {rows} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
