"""What the streaming views hold now, read per request through the project's engine.

Per request only point look-ups by customer: `customers_t` (the profile the query tower
reads) and `customer_recent_articles_t` (the customer's 12 latest distinct articles:
repurchases, history, and the answer's `as_of`). What every request shares, the newest
day of data, the popular list of `article_popularity_t`, the articles the model may
recommend (the run's candidate rule as of the day after the newest) and what the other
candidate sources and the ranker read of the articles (`strategy.inputs.Day.read`), is
read by one background thread instead: the newest day every REFRESH_S, the rest when a new
day arrives or, while purchases of the same day arrive, at most once per READ_SPACING
times what the last read took (on DuckDB from the base tables with the flow's own
queries: `popular_articles`).

Embedded engine: DuckDB lets one process write a file, and no other process open it
meanwhile. So the service holds the file for its lifetime and, with `--consume`, runs
the Kafka consumer in its own process (`recsys.serve.__main__`): each thread queries
through its own cursor on the one database, sees the last committed batch, and never
waits for the writer (docs/serving.md has the measurement). RisingWave: one connection
per thread.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from recsys.datasets.hm_schema import ID_PATTERNS, Kind
from recsys.settings import Settings
from recsys.store.engine import DuckDBEngine, Engine, open_engine
from recsys.strategy.inputs import REPURCHASE_WINDOW_DAYS, Day, popular_articles
from recsys.train.features import CUSTOMER_COLUMNS

if TYPE_CHECKING:
    from recsys.serve.run import ServedRun

REFRESH_S = 5.0
# The popular list and the candidates cost 1.8 s to read on the full data (20 ms on the
# demo data): read again for each REFRESH_S of same-day purchases, they took a third of
# a core from the requests; spaced by ten times their cost, a tenth at most.
READ_SPACING = 10
_HEX_ID = re.compile(ID_PATTERNS[Kind.HEX_ID])
POPULAR_DEPTH = 100  # the most a request asks for (k <= 100)
HISTORY = 12  # customer_recent_articles_t keeps a customer's 12 latest articles
# The customer's profile: the columns the query tower reads.
CUSTOMER_SQL = "SELECT {} FROM customers_t WHERE customer_id = $1".format(
    ", ".join(f'"{column}"' for column in CUSTOMER_COLUMNS)
)
# The customer's distinct articles, latest first (ties by article_id: the order in which
# customer_recent_articles_t keeps 12), each with the units bought since $2, the
# repurchase window's start (the flow orders and cuts repurchases by them), and online.
# RisingWave keeps the view materialised: a look-up by its leading key; the view keeps
# 12 articles and their units over all time only, which stand for the window's there,
# and no sales channel (the ranker's online share is then unknown, NaN).
RECENT_SQL = (
    "SELECT article_id, last_t_dat, units, units AS window_units, "
    "CAST(NULL AS BIGINT) AS online_units "
    "FROM customer_recent_articles_t WHERE customer_id = $1 "
    "ORDER BY last_t_dat DESC, article_id"
)
# DuckDB computes views on read: through the view chain the look-up cost 16.6 ms of CPU
# per request on the demo data, this query 6.8 ms (the bare scan of the customer's rows
# 4.6; docs/serving.md). It restates, for one customer, transactions_t's cleaning (ids
# padded, incomplete events left out), dedup_transactions_t's rule (an event counts once
# however often it was delivered: one row per event_id, day and article, with the highest
# channel of its deliveries; a day's units of an article count as online when any of
# them was) and the view's units (distinct events over all days). MATERIALIZED keeps the
# cleaning filters off the scan: evaluated on every row of the table they cost more than
# the scan itself. Every article is kept: the first 12 are the view's rows
# (tests/serve/test_serve_views.py compares them), the rest let the repurchases be cut as
# the flow cuts them and give the ranker the customer's whole history, as the flow's.
RECENT_EMBEDDED_SQL = """
WITH mine AS MATERIALIZED (
    SELECT t_dat, article_id, event_id, sales_channel_id
    FROM transactions_raw WHERE customer_id = $1
),
days AS (
    SELECT t_dat, article_id, COUNT(*) AS units, MAX(channel) AS channel
    FROM (
        SELECT t_dat, LPAD(article_id, 10, '0') AS article_id, event_id,
            MAX(sales_channel_id) AS channel
        FROM mine
        WHERE event_id <> '' AND t_dat IS NOT NULL AND article_id <> ''
        GROUP BY t_dat, LPAD(article_id, 10, '0'), event_id
    ) AS events
    GROUP BY t_dat, article_id
)
SELECT
    article_id,
    MAX(t_dat) AS last_t_dat,
    CAST(SUM(units) AS BIGINT) AS units,
    CAST(SUM(CASE WHEN t_dat >= $2 THEN units ELSE 0 END) AS BIGINT) AS window_units,
    CAST(SUM(CASE WHEN channel = 2 THEN units ELSE 0 END) AS BIGINT) AS online_units
FROM days
GROUP BY article_id
ORDER BY last_t_dat DESC, article_id
"""
# What changes the shared reads: the newest day and the number of events (cheap next to
# the popular list and the candidates, which are read again only when these change).
NEWEST_SQL = "SELECT MAX(t_dat) AS newest, COUNT(*) AS events FROM transactions_t"
# DuckDB: the same figures from the base table, which only the loader and the consumer
# write, after checking every field transactions_t filters on (recsys.datasets.hm_schema,
# recsys.store.consumer): from DuckDB's statistics in 12 ms on the full data, where the view's
# filters over 31.8 M rows took 2.4 s, every REFRESH_S while purchases stream in.
NEWEST_EMBEDDED_SQL = "SELECT MAX(t_dat) AS newest, COUNT(*) AS events FROM transactions_raw"
POPULAR_SQL = (
    "SELECT article_id FROM article_popularity_t "
    f"ORDER BY units DESC, article_id LIMIT {POPULAR_DEPTH}"
)
# DuckDB: the columns the look-ups read, read once as the service starts. A customer's
# rows lie scattered over transactions_raw (it is in purchase order), and the first
# look-up of a customer loads each block they lie in: 30-55 ms on the full data, 5.5 ms
# once these reads have loaded the columns (2.2 s and 1.6 GB of DuckDB's buffer pool,
# which keeps within the memory limit and evicts what it needs room for; docs/serving.md).
PREWARM_COLUMNS = {
    "transactions_raw": ("customer_id", "t_dat", "article_id", "event_id"),
    "customers_raw": CUSTOMER_COLUMNS,
}
# DuckDB: one thread per query. Concurrent requests are the parallelism; a point query
# split over threads waited on them (8 ms on one thread, 12 ms on two, demo data).
DUCKDB_THREADS = 1
log = logging.getLogger(__name__)


class Bought(NamedTuple):
    """One row of customer_recent_articles_t, with its units in the repurchase window and
    online (None: not known, on RisingWave)."""

    article_id: str
    last_t_dat: date
    units: int
    window_units: int
    online_units: int | None


@dataclass(frozen=True)
class CustomerState:
    """One customer as the views hold them at the moment of the request."""

    profile: dict | None  # their customers_t row; None when the views do not know them
    bought: list[Bought]  # latest first, ties by article_id (at least the view's 12)

    @property
    def history(self) -> list[Bought]:
        """customer_recent_articles_t's rows, newest first, then most bought."""
        return sorted(self.bought[:HISTORY], key=_newest_then_most_bought)

    @property
    def latest_day(self) -> date | None:
        return self.bought[0].last_t_dat if self.bought else None

    @property
    def unknown(self) -> bool:
        """Never seen by the data: no profile and no purchase (a new customer)."""
        return self.profile is None and not self.bought


@dataclass(frozen=True)
class Shared:
    """What every request reads, refreshed in the background."""

    newest_day: date | None  # the latest purchase day the views hold
    events: int  # transactions_t's rows when read
    day: Day  # as of the day after newest_day: the popular list and the model's candidates
    read_at: float  # time.monotonic() when the popular list and candidates were read
    read_s: float  # how long reading them took


def _newest_then_most_bought(bought: Bought) -> tuple:
    return -bought.last_t_dat.toordinal(), -bought.units, bought.article_id


def read_again(last: Shared | None, newest: date | None, events: int, now: float) -> bool:
    """Whether the popular list and the candidates are read again: on a new day, or for
    new purchases of the same day once the last read is READ_SPACING times its cost old."""
    if last is None or newest != last.newest_day:
        return True
    return events != last.events and now - last.read_at >= READ_SPACING * last.read_s


def repurchase_window_start(newest_day: date | None) -> date:
    """The first day of the repurchase window that ends with the newest day."""
    return (newest_day or date.today()) + timedelta(days=1 - REPURCHASE_WINDOW_DAYS)


def with_literal_id(sql: str, customer_id: str) -> str:
    """`sql` with its `$1` replaced by the customer id written out, the other parameters
    renumbered. DuckDB reads an index by a literal key in 1-5 ms on the full data and by
    a `$1` parameter in 5-24 ms (docs/serving.md). Only a well-formed id is written into
    SQL: 64 lowercase hex digits, as the API already demands (anything else is an error)."""
    if not _HEX_ID.fullmatch(customer_id):
        raise ValueError(f"customer id {customer_id!r}: expected 64 lowercase hex digits")
    return sql.replace("$1", f"'{customer_id}'").replace("$2", "$1")


def popular_now(engine: Engine, cutoff: date) -> list[str]:
    """article_popularity_t's list as of `cutoff`, the day after the newest. RisingWave
    keeps the view materialised; DuckDB would compute it on read over every purchase
    (56 s on the full data), so there the flow's query for the same 7 days answers
    (`strategy.inputs.popular_articles`: 0.8 s, the same list; tests/serve/test_serve_views.py)."""
    if engine.kind == "embedded":
        return popular_articles(engine, cutoff, POPULAR_DEPTH)
    return [str(article_id) for (article_id,) in engine.rows(POPULAR_SQL)]


def _index_look_ups(settings: Settings) -> None:
    """On the embedded engine, build the indexes the per-customer look-ups read through
    (`DuckDBEngine.add_lookup_indexes`), with a writer opened for that alone: the service
    then holds the file read-only. A missing file is left to `open_engine`'s error."""
    if settings.risingwave_url or not settings.duckdb_path.is_file():
        return
    with DuckDBEngine(settings) as writer:
        writer.add_lookup_indexes()


def _prewarm(engine: Engine) -> None:
    """Read PREWARM_COLUMNS once (every value: a hash of them all), on all threads."""
    started = time.monotonic()
    for table, columns in PREWARM_COLUMNS.items():
        quoted = ", ".join(f'"{column}"' for column in columns)
        engine.execute(f"SELECT MAX(HASH({quoted})) FROM {table}")
    log.info("read the look-ups' columns in %.1f s", time.monotonic() - started)


class Views:
    """Thread-safe reads of the views: one engine handle per thread on one held engine."""

    def __init__(self, settings: Settings, run: ServedRun, writable: bool = False) -> None:
        self.settings, self.run = settings, run
        _index_look_ups(settings)
        self.engine = open_engine(settings, read_only=not writable, keep_open=True)
        self.embedded = self.engine.kind == "embedded"
        if self.embedded:
            _prewarm(self.engine)
            self.engine.execute(f"SET threads = {DUCKDB_THREADS}")
        self._local = threading.local()
        self._stop = threading.Event()
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

    def customer(self, customer_id: str) -> CustomerState:
        """The profile and the purchases: two point look-ups, rows as tuples (no
        DataFrame per request)."""
        if self.embedded:
            profile = self._engine().rows(with_literal_id(CUSTOMER_SQL, customer_id))
        else:
            profile = self._engine().rows(CUSTOMER_SQL, [customer_id])
        return CustomerState(
            dict(zip(CUSTOMER_COLUMNS, profile[0], strict=True)) if profile else None,
            self.purchases(customer_id),
        )

    def purchases(self, customer_id: str) -> list[Bought]:
        """The purchases look-up alone: what a history needs."""
        engine = self._engine()
        if self.embedded:
            start = repurchase_window_start(self.shared.newest_day)
            rows = engine.rows(with_literal_id(RECENT_EMBEDDED_SQL, customer_id), [start])
        else:
            rows = engine.rows(RECENT_SQL, [customer_id])
        return [Bought(*row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Customers and articles the views hold (for /health; not per request)."""
        return {
            "customers": self._engine().count("customers_t"),
            "articles": self._engine().count("articles_t"),
        }

    def _read_shared(self, last: Shared | None = None) -> Shared:
        """The newest day, the popular list, and the model's candidates as of the day
        after the newest (the day being recommended for, as in the flow's predict step);
        `last` again unless `read_again`."""
        engine = self._engine()
        [(newest, events)] = engine.rows(NEWEST_EMBEDDED_SQL if self.embedded else NEWEST_SQL)
        if not read_again(last, newest, events, time.monotonic()):
            return last
        started = time.monotonic()
        cutoff = (newest or date.today()) + timedelta(days=1)
        popular = np.asarray(popular_now(engine, cutoff), dtype=object)
        run = self.run
        day = Day.read(engine, cutoff, run.catalogue, run.info.candidate_rule, POPULAR_DEPTH,
                       run.rankers, popular)  # fmt: skip
        return Shared(newest, events, day, started, time.monotonic() - started)

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_S):
            try:
                self.shared = self._read_shared(self.shared)
            except Exception:  # noqa: BLE001 - keep serving the last good read, say why
                log.exception("could not refresh the newest day, popular list and candidates")

    def close(self) -> None:
        self._stop.set()
        self._refresher.join(timeout=10)
        self.engine.close()
