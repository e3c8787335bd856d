"""Time the synthetic data generator at each scale: rows per file, seconds, peak memory.

Also quotes the life-cycle statistic `data/generate.py` prints (recsys/datasets/still_selling.py):
the share of a 1,400-customer sample's earlier / last-90-days articles that sell in the
last week, and their ratio (real H&M: 0.31 / 0.79, ratio 2.5); and, in a second table
next to the real H&M figures, the six per-buyer-week statistics it prints
(recsys/datasets/behaviour.py, issue 23).

    python bench/generate.py                 # tiny and demo (with images)
    flock /tmp/heavy.lock python bench/generate.py --full   # adds full (without images)

The table goes to bench/results/generate-<scales>.md (bench/results.py).

Each scale runs `data/generate.py` in a child process, so the peak resident memory
reported is that child's own (from os.wait4), not the benchmark's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import markdown_table, write_result

from recsys.datasets.behaviour import (
    HEADERS,
    REAL_HM,
    STATISTICS,
    TABLE_HEADER,
    WEEKS,
    Behaviour,
    format_row,
)
from recsys.datasets.hm_schema import TABLES

SCRIPT = Path(__file__).resolve().parents[1] / "data" / "generate.py"
# the line StillSelling.__str__ prints: earlier share, 90-day share, ratio
STILL_SELLING = re.compile(
    r"last week: ([\d.]+) of .* bought before it, ([\d.]+) of .*\(ratio ([\d.]+)\)"
)
TOLERANCE = 0.25  # issue 23: each statistic within 25 % of the real figure
FILES = {name: TABLES[name].file for name in ("articles", "customers", "transactions", "images")}


def run_scale(
    scale: str, out: Path, images: bool
) -> tuple[dict[str, float | int | str], Behaviour]:
    """Generate one scale in a child process: its row counts, seconds and peak RSS, and the
    per-buyer-week statistics it printed."""
    command = [sys.executable, str(SCRIPT), "--scale", scale, "--out", str(out)]
    if not images:
        command.append("--no-images")
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as summary:
        child = subprocess.Popen(command, stdout=summary)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(command)} failed with status {status}")
        summary.seek(0)
        printed = summary.read()
    shares, behaviour = STILL_SELLING.search(printed), Behaviour.parse(printed)
    if shares is None or behaviour is None:
        raise RuntimeError(f"{' '.join(command)} printed no still-selling or behaviour line")
    result: dict[str, float | int | str] = {"scale": scale}
    for name, file in FILES.items():
        result[name] = count_rows(out / file)
    result["image files"] = sum(1 for _ in (out / "images").rglob("*.jpg")) if images else 0
    result["seconds"] = round(seconds, 1)
    result["peak RSS MiB"] = round(usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux
    result["MB on disk"] = round(sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6)
    result["still selling: earlier / 90 days / ratio"] = " / ".join(shares.groups())
    return result, behaviour


def behaviour_table(rows: dict[str, Behaviour]) -> str:
    """The real H&M figures, then each scale's, and how far each scale is from them."""
    lines = [TABLE_HEADER, format_row("real H&M (0.1 % of customers)", REAL_HM)]
    lines += [format_row(scale, stats) for scale, stats in rows.items()]
    names = dict(zip(STATISTICS, HEADERS, strict=True))
    gaps = []
    for scale, stats in rows.items():
        name, gap = max(stats.relative_gaps(REAL_HM).items(), key=lambda item: item[1])
        verdict = "within" if gap <= TOLERANCE else "NOT within"
        gaps.append(f"{scale} {verdict} {TOLERANCE:.0%} (largest gap {gap:.0%}: {names[name]})")
    return (
        f"Per buyer-week, the last {WEEKS} weeks pooled (recsys/datasets/behaviour.py; "
        "tiny, 12 weeks of 300 articles, is for plumbing tests only):\n\n"
        + "\n".join(lines)
        + "\n\nOf the real figures: "
        + "; ".join(gaps)
        + "."
    )


def count_rows(path: Path) -> int:
    """Data rows of a CSV (lines minus the header); one record per line, as the files are."""
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            lines += block.count(b"\n")
    return lines - 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["tiny", "demo"], help="default: tiny demo")
    parser.add_argument("--full", action="store_true", help="add the full scale (without images)")
    parser.add_argument("--no-images", dest="images", action="store_false")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write (then removed)")
    args = parser.parse_args(argv)
    plan = [(scale, args.images) for scale in args.scales]
    if args.full:
        plan.append(("full", False))
    results, behaviours = [], {}
    for scale, images in plan:
        out = Path(tempfile.mkdtemp(prefix=f"bench-{scale}-", dir=args.workdir))
        try:
            result, behaviours[scale] = run_scale(scale, out, images)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        results.append(result)
        print(f"{scale}: done in {result['seconds']} s", file=sys.stderr)
    table = (
        markdown_table(results)
        + "\n\nPeak RSS is the generator process's own.\n\n"
        + behaviour_table(behaviours)
    )
    print(table)
    write_result("generate-" + "-".join(scale for scale, _ in plan), table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
