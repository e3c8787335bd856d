"""What every answer shares, read from the streaming views: the popular list of
`article_popularity_t`, the articles the model may recommend (the run's candidate rule
as of the day after the newest) and what the other candidate sources and the rankers read
of the articles (`strategy.inputs.Day.read`), read by one background thread: again when a new day
arrives in the online state, or, while purchases of the same day arrive, at most once
per READ_SPACING times what the last read took (on DuckDB from the base tables with the
flow's own queries: `popular_articles`). Per customer nothing is read here: the online
state (`recsys.serve.state`) answers.

Embedded engine: DuckDB lets one process write a file, and no other process open it
meanwhile. So the service holds the file for its lifetime and, with `--consume`, runs
the Kafka consumer in its own process (`recsys.serve.__main__`): each thread queries
through its own cursor on the one database and sees the last committed batch.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys.serve.state import OnlineState
from recsys.settings import Settings
from recsys.store.engine import Engine, open_engine
from recsys.strategy.inputs import Day, popular_articles

if TYPE_CHECKING:
    from recsys.serve.run import ServedRun

REFRESH_S = 5.0
# The popular list and the candidates cost 1.8 s to read on the full data (20 ms on the
# demo data): read again for each REFRESH_S of same-day purchases, they took a third of
# a core from the requests; spaced by ten times their cost, a tenth at most.
READ_SPACING = 10
POPULAR_DEPTH = 100  # the most a request asks for (k <= 100)
POPULAR_SQL = (
    "SELECT article_id FROM article_popularity_t "
    f"ORDER BY units DESC, article_id LIMIT {POPULAR_DEPTH}"
)
# DuckDB once the state is built: one thread per query (the shared reads then take one
# core at most from the requests) and a smaller buffer pool (their 7 or so days of
# purchases need little; the pool keeps what the build read until told otherwise).
DUCKDB_THREADS = 1
DUCKDB_SERVING_MEMORY = "512MB"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shared:
    """What every request reads, refreshed in the background."""

    newest_day: date | None  # the latest purchase day the state held
    events: int  # purchase rows the state had applied
    day: Day  # as of the day after newest_day: the popular list and the model's candidates
    read_at: float  # time.monotonic() when the popular list and candidates were read
    read_s: float  # how long reading them took


def read_again(last: Shared | None, newest: date | None, events: int, now: float) -> bool:
    """Whether the popular list and the candidates are read again: on a new day, or for
    new purchases of the same day once the last read is READ_SPACING times its cost old."""
    if last is None or newest != last.newest_day:
        return True
    return events != last.events and now - last.read_at >= READ_SPACING * last.read_s


def popular_now(engine: Engine, cutoff: date) -> list[str]:
    """article_popularity_t's list as of `cutoff`, the day after the newest. RisingWave
    keeps the view materialised; DuckDB would compute it on read over every purchase
    (56 s on the full data), so there the flow's query for the same 7 days answers
    (`strategy.inputs.popular_articles`: 0.8 s, the same list; tests/serve/test_serve_views.py)."""
    if engine.kind == "embedded":
        return popular_articles(engine, cutoff, POPULAR_DEPTH)
    return [str(article_id) for (article_id,) in engine.rows(POPULAR_SQL)]


class Views:
    """The held engine, the online state built from it, and the shared reads."""

    def __init__(self, settings: Settings, run: ServedRun, writable: bool = False) -> None:
        self.settings, self.run = settings, run
        self.engine = open_engine(settings, read_only=not writable, keep_open=True)
        started = time.monotonic()
        self.state = build_state(self.engine, run)
        log.warning("online state: %s customers in %.1f s", f"{len(self.state):,}",
                    time.monotonic() - started)  # fmt: skip
        if self.engine.kind == "embedded":
            self.engine.execute(f"SET threads = {DUCKDB_THREADS}")
            self.engine.execute(f"SET memory_limit = '{DUCKDB_SERVING_MEMORY}'")
        self._local = threading.local()
        self._stop = threading.Event()
        self.new_day = threading.Event()  # set by the consumer when a newer day arrives
        self.shared = self._read_shared()
        self._refresher = threading.Thread(target=self._refresh, name="views-refresh", daemon=True)
        self._refresher.start()

    @property
    def kind(self) -> str:
        return self.engine.kind

    def _engine(self) -> Engine:
        handle = getattr(self._local, "engine", None)
        if handle is None:
            handle = self._local.engine = self.engine.for_thread()
        return handle

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self._engine().query(sql, params)

    def counts(self) -> dict[str, int]:
        """Customers and articles the views hold (for /health; not per request)."""
        return {
            "customers": self._engine().count("customers_t"),
            "articles": self._engine().count("articles_t"),
        }

    def _read_shared(self, last: Shared | None = None) -> Shared:
        """The popular list, the model's candidates and what the other sources and the
        rankers read of the articles (`Day.read`), as of the day after the state's
        newest (the day being recommended for, as in the flow's predict step); `last`
        again unless `read_again`."""
        newest, events = self.state.newest_day, self.state.applied
        if not read_again(last, newest, events, time.monotonic()):
            return last
        started = time.monotonic()
        engine = self._engine()
        cutoff = (newest or date.today()) + timedelta(days=1)
        popular = np.asarray(popular_now(engine, cutoff), dtype=object)
        run = self.run
        day = Day.read(engine, cutoff, run.catalogue, run.info.candidate_rule, POPULAR_DEPTH,
                       run.rankers, popular)  # fmt: skip
        return Shared(newest, events, day, started, time.monotonic() - started)

    def _refresh(self) -> None:
        while not self._stop.is_set():
            self.new_day.wait(REFRESH_S)
            self.new_day.clear()
            if self._stop.is_set():
                return
            try:
                self.shared = self._read_shared(self.shared)
            except Exception:  # noqa: BLE001 - keep serving the last good read, say why
                log.exception("could not refresh the popular list and candidates")

    def close(self) -> None:
        self._stop.set()
        self.new_day.set()
        self._refresher.join(timeout=10)
        self.state.close()
        self.engine.close()


def build_state(engine: Engine, run: ServedRun) -> OnlineState:
    """The online state of the views the service reads: from the file on the embedded
    engine, from the views' subscriptions on RisingWave (`recsys.serve.subscription`)."""
    if engine.kind != "embedded":
        from recsys.serve.subscription import state_from_subscriptions

        return state_from_subscriptions(engine, run)
    return OnlineState.build(engine, run.inputs, run.tower, run.catalogue.article_ids)
