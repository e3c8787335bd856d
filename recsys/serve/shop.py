"""`make live` (`python -m recsys.serve.shop`): the held-out test week, replayed as a live shop.

1. the embedded engine is rebuilt with the purchases before the served run's test week
   only (`risingwave/setup.py --load --until <test start>`): the past the model knew;
2. the service starts with the consumer in its process, reading only what is produced
   from now on (`python -m recsys.serve --consume --from-now`);
3. the test week is produced to Kafka as new events, `--speedup` times faster than real
   time (`kafka/producer.py --from <test start> --replay`).

Open the inspector (`make app`) and its live panel shows the service's answers change as
the week's purchases arrive. The broker must be up (`make live` starts it). Ctrl-C stops
the replay and the service (each in its own session, so the key reaches this process
alone, which stops them in order and says where the shop was); `make kafka-down` stops
the broker.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request

from recsys.run_folder import RunFolder, RunMissing
from recsys.settings import REPO_ROOT, ConfigError, load_settings

START_TIMEOUT_S = 600  # building the online state of the full data takes a minute or more
DEFAULT_SPEEDUP = 86_400 / 30  # one day of purchases every 30 seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speedup", type=float, default=DEFAULT_SPEEDUP,
                        help="replay speed (default: one day every 30 s)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        folder = RunFolder.latest(settings)
        test_start = folder.info().dates["test_start"].isoformat()
    except (ConfigError, RunMissing) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    python, started = sys.executable, time.monotonic()
    service = replay = None
    try:
        step(f"the views with the purchases before {test_start} (the run's test week left out)")
        setup = [python, "risingwave/setup.py", "--engine", "embedded"]
        for flags in (["--drop"], ["--load", "--until", test_start]):
            if _start([*setup, *flags]).wait():
                raise SystemExit("setting up the views failed: see above")
        step("the service, with the Kafka consumer in its process")
        service = _start(
            [python, "-m", "recsys.serve", "--consume", "--from-now", "--run-id", folder.path.name]
        )
        wait_for(settings.service_url, service)
        step(f"the test week from {test_start}, replayed {args.speedup:,.0f}x (make app to watch)")
        replay = _start(
            [python, "kafka/producer.py", "--topics", "transactions_topic", "--from", test_start,
             "--replay", "--speedup", str(args.speedup)]
        )  # fmt: skip
        if replay.wait():
            raise SystemExit(f"the replay stopped (exit {replay.returncode}): see above")
        step(f"replay done; the service keeps answering on {settings.service_url} (Ctrl-C stops)")
        service.wait()
    except KeyboardInterrupt:
        print(f"\n{summary(settings.service_url, time.monotonic() - started)}", flush=True)
    finally:
        for process in (replay, service):
            _stop(process)  # a setup step still running is stopped by its own end
    return 0


def _start(command: list[str]) -> subprocess.Popen:
    """A child in its own session: Ctrl-C reaches this process only, which stops it."""
    return subprocess.Popen(command, cwd=REPO_ROOT, start_new_session=True)


def _stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        process.wait(timeout=60)


def summary(url: str, seconds: float) -> str:
    """Where the shop was when stopped: the service's own /health, when it answers."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            health = json.loads(response.read())
        where = (f"the views' newest day {health['newest_day']}, consumer lag "
                 f"{health['consumer_lag']}")  # fmt: skip
    except OSError:
        where = "the service did not answer"
    return (f"stopped after {seconds:.0f} s: {where}; the service and the replay are stopped, "
            "the broker is still up (make kafka-down stops it)")  # fmt: skip


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def wait_for(url: str, service: subprocess.Popen) -> None:
    """Until /health answers; the service exiting first (no run, port taken) stops us."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise SystemExit(f"the service stopped (exit {service.returncode}): see above")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"the service did not answer on {url} within {START_TIMEOUT_S} s")


if __name__ == "__main__":
    sys.exit(main())
