"""`python -m recsys.serve [--consume] [--run-id ID]`: the recommendation service.

Listens on SERVE_HOST:SERVE_PORT (127.0.0.1:8000); OpenAPI at /docs. Refuses to start
(exit 2) without an exported run, and says which command makes one.
"""

from __future__ import annotations

import os

# One BLAS thread, set before numpy loads: concurrent requests are the parallelism, and
# OpenBLAS's threads made a call of the query tower 0.24 ms instead of 0.09 (demo run).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

from recsys.settings import ConfigError, Settings, load_settings  # noqa: E402


def build_service(
    settings: Settings,
    run_id: str | None = None,
    consume: bool = False,
    from_now: bool = False,
    hold: bool = False,
):
    """The run, the views and (with `consume`) the in-process consumer, as a Service.

    Raises RunMissing before anything heavy is loaded when there is no run to serve;
    with `hold` (a service process), FileHeld when another process holds the embedded
    engine's file (`recsys.store.holder`), before the state is built.
    """
    from recsys.run_folder import RunFolder, settings_for_run
    from recsys.serve.app import Service
    from recsys.serve.live import LiveConsumer
    from recsys.serve.run import load_run
    from recsys.serve.views import Views

    run = load_run(RunFolder.named(settings, run_id))
    settings, notes = settings_for_run(settings, run.info)
    print(f"run {run.run_id}:", *notes, sep="\n  ", flush=True)
    holder = None
    if hold and not settings.risingwave_url:
        from recsys.store.holder import Holder

        holder = Holder(settings.duckdb_path, "service" + " with its consumer" * consume)
    views = Views(settings, run, writable=consume)
    service = Service(settings, run, views, on_stop=[views.close])
    if holder is not None:
        service.on_stop.append(holder.release)
    if consume:
        live = LiveConsumer(settings, views).start(from_now)
        service.lag, service.consumer = live.lag, live.status
        service.on_stop.insert(0, live.stop)
    return service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consume", action="store_true",
                        help="run the Kafka consumer in this process (embedded engine: "
                        "the one way to write the DuckDB file while serving)")  # fmt: skip
    parser.add_argument("--from-now", action="store_true",
                        help="with --consume, a file that never consumed starts at the topics' "
                        "end (its past came from the CSV load: make live)")  # fmt: skip
    parser.add_argument("--run-id", help="serve this run of OUTPUT_DIR (default: the newest)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.consume and settings.risingwave_url:
        print("error: --consume is for the embedded engine; RisingWave reads the Kafka topics "
              "itself (RISINGWAVE_URL is set)", file=sys.stderr)  # fmt: skip
        return 2
    from recsys.run_folder import RunMissing
    from recsys.store.engine import EngineError

    try:
        service = build_service(settings, args.run_id, args.consume, args.from_now, hold=True)
    except (RunMissing, EngineError) as error:
        print(f"error: cannot serve: {error}", file=sys.stderr)
        return 2
    return serve(service)


def serve(service) -> int:
    import uvicorn

    from recsys.serve.app import create_app

    settings = service.settings
    url = settings.service_url
    print(f"serving run {service.run.run_id} ({service.views.kind} engine) on {url} "
          f"(API docs: {url}/docs)", flush=True)  # fmt: skip
    try:
        uvicorn.run(
            create_app(service), host=settings.serve_host, port=settings.serve_port,
            log_level="warning",
        )  # fmt: skip
    except KeyboardInterrupt:  # uvicorn stops gracefully, then raises Ctrl-C again
        print("stopped", flush=True)
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
