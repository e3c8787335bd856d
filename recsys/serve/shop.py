"""`make live` (`python -m recsys.serve.shop`): the held-out test week, replayed as a live shop.

1. the embedded engine is rebuilt with the purchases before the served run's test week
   only (`risingwave/setup.py --load --until <test start>`): the past the model knew;
2. the service starts with the consumer in its process, reading only what is produced
   from now on (`python -m recsys.serve --consume --from-now`);
3. the test week is produced to Kafka as new events, `--speedup` times faster than real
   time (`kafka/producer.py --from <test start> --replay`).

Open the inspector (`make app`) and its live panel shows the service's answers change as
the week's purchases arrive. The broker must be up (`make live` starts it). Ctrl-C stops
the service; `make kafka-down` stops the broker.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.request

from recsys.run_folder import RunFolder, RunMissing
from recsys.settings import REPO_ROOT, ConfigError, load_settings

START_TIMEOUT_S = 600  # TensorFlow's import alone takes tens of seconds on a busy machine
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
    python = sys.executable
    step(f"the views with the purchases before {test_start} (the run's test week left out)")
    setup = [python, "risingwave/setup.py", "--engine", "embedded"]
    subprocess.run([*setup, "--drop"], cwd=REPO_ROOT, check=True)
    subprocess.run([*setup, "--load", "--until", test_start], cwd=REPO_ROOT, check=True)
    step("the service, with the Kafka consumer in its process")
    service = subprocess.Popen(
        [python, "-m", "recsys.serve", "--consume", "--from-now", "--run-id", folder.path.name],
        cwd=REPO_ROOT,
    )
    try:
        wait_for(settings.service_url, service)
        step(f"the test week from {test_start}, replayed {args.speedup:,.0f}x (make app to watch)")
        subprocess.run(
            [python, "kafka/producer.py", "--topics", "transactions_topic", "--from", test_start,
             "--replay", "--speedup", str(args.speedup)],
            cwd=REPO_ROOT, check=True,
        )  # fmt: skip
        step(f"replay done; the service keeps answering on {settings.service_url} (Ctrl-C stops)")
        service.wait()
    except KeyboardInterrupt:
        pass
    finally:
        service.terminate()
        service.wait(timeout=60)
    return 0


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
