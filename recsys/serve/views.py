"""What the streaming views hold now, read per request through the project's engine.

Per request only point look-ups by customer: `customers_t` (the profile the query tower
reads) and `customer_recent_articles_t` (the customer's 12 latest distinct articles:
repurchases, history, and the answer's `as_of`). What every request shares, the newest
day of data and the popular list of `article_popularity_t`, is read by one background
thread every REFRESH_S instead: on DuckDB the popularity view is computed on read
(about 0.2 s on the demo data), far too slow per request.

Embedded engine: DuckDB lets one process write a file, and no other process open it
meanwhile. So the service holds the file for its lifetime and, with `--consume`, runs
the Kafka consumer in its own process (`recsys.serve.__main__`): each thread queries
through its own cursor on the one database, sees the last committed batch, and never
waits for the writer (docs/serving.md has the measurement). RisingWave: one connection
per thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import date

import pandas as pd

from recsys.engine import Engine, open_engine
from recsys.settings import Settings

REFRESH_S = 5.0
POPULAR_DEPTH = 100  # the most a request asks for (k <= 100)
CUSTOMER_SQL = (
    'SELECT customer_id, age, club_member_status, fashion_news_frequency, "FN", "Active", '
    "postal_code FROM customers_t WHERE customer_id = $1"
)
RECENT_SQL = (
    "SELECT article_id, last_t_dat, units FROM customer_recent_articles_t "
    "WHERE customer_id = $1 ORDER BY last_t_dat DESC, units DESC, article_id"
)
# DuckDB: one thread per query. Concurrent requests are the parallelism; a point query
# split over threads waited on them (8 ms on one thread, 12 ms on two, demo data).
DUCKDB_THREADS = 1
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustomerState:
    """One customer as the views hold them at the moment of the request."""

    profile: dict | None  # their customers_t row; None when the views do not know them
    recent: pd.DataFrame  # article_id, last_t_dat, units; newest first

    @property
    def latest_day(self) -> date | None:
        return None if self.recent.empty else pd.Timestamp(self.recent["last_t_dat"].iloc[0]).date()

    @property
    def unknown(self) -> bool:
        """Never seen by the data: no profile and no purchase (a new customer)."""
        return self.profile is None and self.recent.empty


@dataclass(frozen=True)
class Shared:
    """What every request reads, refreshed in the background."""

    newest_day: date | None  # the latest purchase day the views hold
    popular: tuple[str, ...]  # article_popularity_t, best first
    refreshed_at: float  # time.monotonic() of the read


class Views:
    """Thread-safe reads of the views: one engine handle per thread on one held engine."""

    def __init__(self, settings: Settings, writable: bool = False) -> None:
        self.settings = settings
        self.engine = open_engine(settings, read_only=not writable, keep_open=True)
        if self.engine.kind == "embedded":
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
        profile = self.query(CUSTOMER_SQL, [customer_id])
        recent = self.query(RECENT_SQL, [customer_id])
        return CustomerState(None if profile.empty else profile.iloc[0].to_dict(), recent)

    def counts(self) -> dict[str, int]:
        """Customers and articles the views hold (for /health; not per request)."""
        return {
            "customers": self._engine().count("customers_t"),
            "articles": self._engine().count("articles_t"),
        }

    def _read_shared(self) -> Shared:
        newest = self.query("SELECT MAX(t_dat) AS newest FROM transactions_t").iloc[0, 0]
        popular = self.query(
            "SELECT article_id FROM article_popularity_t "
            f"ORDER BY units DESC, article_id LIMIT {POPULAR_DEPTH}"
        )
        return Shared(
            None if pd.isna(newest) else pd.Timestamp(newest).date(),
            tuple(popular["article_id"].astype(str)),
            time.monotonic(),
        )

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_S):
            try:
                self.shared = self._read_shared()
            except Exception:  # noqa: BLE001 - keep serving the last good read, say why
                log.exception("could not refresh the popular list and newest day")

    def close(self) -> None:
        self._stop.set()
        self._refresher.join(timeout=10)
        self.engine.close()
