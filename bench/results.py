"""Where every benchmark writes its table: `bench/results/<name>.md`, with when, which
commit and how busy the machine was, so the README can quote a file, never a typed number.

    from results import write_result   # bench/ scripts run as `python bench/x.py`
    write_result("flow-demo", table_text, command="bench/flow.py --scale demo")
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_line() -> str:
    """Cores, memory and the load averages at the time of writing (these machines are shared)."""
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {memory:.1f} GiB, "
        f"load average (1/5/15 min) {load}"
    )


def commit_line() -> str:
    """The commit measured, marked `+dirty` when the work tree had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    return sha + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def markdown_table(rows: list[dict]) -> str:
    """Rows of one shape as a Markdown table: numbers right-aligned, ints with separators."""
    columns = list(rows[0])

    def cell(value: object) -> str:
        if value is None:
            return "-"
        return f"{value:,}" if isinstance(value, int | float) else str(value)

    numeric = [all(isinstance(r[c], int | float | None) for r in rows) for c in columns]
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
        *("| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows),
    ]
    return "\n".join(lines)


def write_result(name: str, table: str, command: str | None = None) -> Path:
    """Write `table` (Markdown) to bench/results/<name>.md with its provenance; print the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.md"
    command = command or " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    header = (
        f"# {name}\n\n"
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
        f"- commit: {commit_line()}\n"
        f"- machine: {machine_line()}\n"
        f"- command: `{command}`\n\n"
    )
    path.write_text(header + table.rstrip() + "\n", encoding="utf-8")
    print(f"written to {path}")
    return path
