"""Benchmark: the whole flow (`make run`'s job) on one data folder, step by step.

    flock /tmp/heavy.lock .venv/bin/python bench/flow.py --data data/demo --name flow-demo
    flock /tmp/heavy.lock .venv/bin/python bench/flow.py --data /work/hm-full \
        --transactions 10000000 --name flow-10m
    flock /tmp/heavy.lock .venv/bin/python bench/flow.py --data /work/hm-full --name flow-full

Runs `recsys/my_merlin_flow.py run` exactly as `make run` does (default parameters: the
profile is picked from the data size), on a fresh DuckDB file, so the CSV load is
included. While it runs, the resident memory of the whole process tree (the flow, its
step processes, their threads and children) is sampled every 0.5 s. The table gives,
per step, wall time, peak RSS of the tree, and what the step printed about its rows;
then training examples/s, customers predicted per second and the whole run.
`--transactions N` uses the first N transactions with the full catalogue and customers.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import psutil  # noqa: E402
from results import markdown_table, write_result  # noqa: E402
from views import first_transactions  # noqa: E402

from recsys.train.runtime import isolated_flow_env  # noqa: E402

FLOW = REPO / "recsys" / "my_merlin_flow.py"
STEP_LINE = re.compile(
    r"\[\d+/(\w+)/\d+ \(pid \d+\)\] (Task is starting|Task finished successfully)"
)
FACTS = {  # what each step says about its size, as printed by the flow
    "start": re.compile(r"(loaded .*? rows|already holds [\d,]+ purchases)"),
    "get_dataset": re.compile(r"rows per split: (.*)"),
    "build_workflow": re.compile(r"encoded ([\d,]+ training rows into \d+ part\(s\)[^;]*)"),
    "train": re.compile(r"trained .* on (.*): ([\d,]+) examples/s"),
    "predict": re.compile(r"predict: ([\d,]+) customers in .*?, ([\d,]+)/s"),
    "train_ranker": re.compile(r"(ranker\w*): (best round .*)"),
    "evaluate": re.compile(r"served: (.*)"),
}
EXPORTED_TABLES = {  # the run's own figures, as its export holds them
    "metrics.parquet": "Test-week metrics, 95% bootstrap intervals over customers",
    "differences.parquet": "Test week, paired differences (method minus baseline)",
    "backtest.parquet": "Backtest (--backtest-weeks), all customers of each week and pooled",
    "backtest_differences.parquet": "Backtest, paired differences (method minus baseline)",
}


class TreeMemory:
    """Samples the summed RSS of a process and all its descendants, with timestamps."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.root = psutil.Process(pid)
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                for proc in [self.root, *self.root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):  # a step may end meanwhile
                        total += proc.memory_info().rss
            except psutil.Error:
                break
            self.samples.append((time.monotonic(), total))
            self._stop.wait(every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        return max((rss for t, rss in self.samples if start <= t <= end), default=0)


def run_flow(data: Path, work: Path, extra: list[str]) -> tuple[list[dict], dict, str]:
    env = {**isolated_flow_env(work, data), "USERNAME": "bench", "PYTHONUNBUFFERED": "1"}
    if not (data / "images").is_dir():  # generated without photos: point at a URL pattern
        env.setdefault("IMAGE_URL_TEMPLATE", "https://images.invalid/{folder}/{article_id}.jpg")
    command = [sys.executable, str(FLOW), "--no-pylint", "run", "--max-workers", "2", *extra]
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        env=env,
        cwd=work / "metaflow",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    memory = TreeMemory(proc.pid)
    steps: dict[str, dict] = {}
    log = []
    for line in proc.stdout:
        now = time.monotonic()
        log.append(line)
        sys.stdout.write(line)
        if match := STEP_LINE.search(line):
            name, event = match.groups()
            step = steps.setdefault(name, {"step": name, "start": now, "end": now, "facts": []})
            step["end"] = now
        for name, pattern in FACTS.items():
            if name in steps and (fact := pattern.search(line)):
                steps[name]["facts"].append(fact.groups())
    code = proc.wait()
    total = time.monotonic() - started
    memory.stop()
    for step in steps.values():
        step["peak"] = memory.peak(step["start"], step["end"])
    summary = {"code": code, "seconds": total, "peak": memory.peak(), "tables": []}
    for name, title in EXPORTED_TABLES.items():
        for path in sorted((work / "output").glob(f"*/{name}"))[-1:]:
            frame = pd.read_parquet(path).round(4)
            if "week" in frame and "segment" in frame:
                frame = frame[frame["segment"] == "all"].drop(columns="segment")
            summary["tables"].append(
                (f"{title} (`{name}`)", markdown_table(frame.to_dict("records")))
            )
    return list(steps.values()), summary, "".join(log)


def table(steps: list[dict], summary: dict, data: str) -> str:
    lines = [
        f"data: {data}",
        "",
        "| step | wall | peak RSS (process tree) | rows / facts |",
        "|---|---:|---:|---|",
    ]
    for step in steps:
        facts = "; ".join(", ".join(str(g) for g in fact) for fact in step["facts"][:4])
        lines.append(
            f"| {step['step']} | {_minutes(step['end'] - step['start'])} | "
            f"{step['peak'] / 1e9:.1f} GB | {facts} |"
        )
    status = "finished" if summary["code"] == 0 else f"FAILED (exit {summary['code']})"
    lines.append(
        f"| **whole run** ({status}) | **{_minutes(summary['seconds'])}** | "
        f"**{summary['peak'] / 1e9:.1f} GB** | |"
    )
    for title, rows in summary["tables"]:
        lines += ["", f"{title}:", "", rows]
    return "\n".join(lines)


def _minutes(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder with the H&M CSVs")
    parser.add_argument("--transactions", type=int, help="use only the first N transactions")
    parser.add_argument("--name", default="flow", help="result file: bench/results/NAME.md")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp dir)")
    parser.add_argument(
        "--keep", type=Path, help="run in this new folder and keep it (to open the inspector on it)"
    )
    parser.add_argument("flow_args", nargs="*", help="extra flow parameters, after --")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True)  # a new folder: never mixed with an older run
    with (
        contextlib.nullcontext(str(args.keep))
        if args.keep
        else tempfile.TemporaryDirectory(dir=args.work)
    ) as tmp:
        work = Path(tmp).resolve()
        data = args.data.resolve()
        if args.transactions:
            data = first_transactions(data, args.transactions, work)
        steps, summary, _ = run_flow(data, work / "run", args.flow_args)
    shown = f"{args.data}" + (
        f", first {args.transactions:,} transactions" if args.transactions else ""
    )
    text = table(steps, summary, shown)
    print(text)
    write_result(args.name, text)
    if args.keep:
        print(
            f"kept: {work}/run (its env: "
            f"recsys.train.runtime.isolated_flow_env({work}/run, {data}))"
        )
    return summary["code"]


if __name__ == "__main__":
    sys.exit(main())
