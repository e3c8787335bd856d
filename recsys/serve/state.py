"""The online state: per customer what an answer needs, in memory, kept current by the stream.

A feature store answers from an online store the stream keeps current, not from the
analytical engine: per request the service reads arrays here and never queries DuckDB
(docs/serving.md has the numbers that made this the design).

Per customer, encoded with the run's vocabularies:
- the profile's Categorify codes (`tower.PROFILE_COLUMNS`; encoded once, here);
- every purchase row of `dedup_transactions_t` (a day, an article, its units, those of
  them bought online) as columns: int32 article codes, int32 days since 1970-01-01, int16
  units. The whole history, not only the 28-day repurchase window: the recent articles,
  the history endpoint and the repurchase window are all read from it, and so are the
  candidate sources' and the rankers' per-customer features (times bought, days since,
  online share);
- the age (customers_t's; NaN where unknown), which the rankers read.

The rows built at start sit in one sorted block (CSR: `offsets`); purchases applied
since then are kept per customer beside it (`_delta`), replaced, never changed in place,
so readers in other threads see a customer's old rows or the new ones, never half. One
writer (the consumer thread) applies; `customers` builds `strategy.inputs.Customers`, the
one place that turns the state into what the strategy ranks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.serve.tower import OOV_INDEX, PROFILE_COLUMNS, NumpyTower, TowerInputs
from recsys.strategy import inputs as strategy_inputs
from recsys.strategy.inputs import REPURCHASE_WINDOW_DAYS, Customers
from recsys.train.features import CUSTOMER_COLUMNS, prepare_customers
from recsys.train.recent_articles import RECENT_ARTICLES

EPOCH = date(1970, 1, 1)
CUSTOMER_ID_AT = PROFILE_COLUMNS.index("customer_id")
HISTORY = 12  # customer_recent_articles_t keeps a customer's 12 latest articles
PROFILE_SQL = "SELECT {} FROM customers_t".format(", ".join(f'"{c}"' for c in CUSTOMER_COLUMNS))
# Buyers without a customers_t row (their profile never arrived): embedded with empty
# attributes, as the flow's LEFT JOINs give them.
BUYERS_SQL = "SELECT DISTINCT customer_id FROM transactions_t"
# Every article id a purchase names (the catalogue's are added by the run).
ARTICLES_SQL = "SELECT DISTINCT article_id FROM transactions_t"
# dedup_transactions_t's rows as codes: the ids mapped by the registered tables, so no
# id becomes a Python object (31.8 M rows on the full data).
PURCHASES_SQL = """
SELECT c.code AS customer, a.code AS article,
    CAST(d.t_dat - DATE '1970-01-01' AS INTEGER) AS day, CAST(d.units AS SMALLINT) AS units,
    CAST(CASE WHEN d.sales_channel_id = 2 THEN d.units ELSE 0 END AS SMALLINT) AS online
FROM dedup_transactions_t AS d
JOIN state_customers AS c ON c.customer_id = d.customer_id
JOIN state_articles AS a ON a.article_id = d.article_id
"""


def day_number(day: date) -> int:
    return day.toordinal() - EPOCH.toordinal()


def from_day_number(number: int) -> date:
    return EPOCH + timedelta(days=int(number))


@dataclass(frozen=True)
class Purchases:
    """One customer's purchase rows (dedup_transactions_t's), oldest first. A streamed row
    may add events to a day the build or an earlier batch read (`bought` folds them)."""

    articles: np.ndarray  # int32 article codes (`OnlineState.article_ids`)
    days: np.ndarray  # int32 days since EPOCH
    units: np.ndarray  # int16 distinct events folded into the row
    online: np.ndarray  # int16 of those units, bought online (sales channel 2)

    @classmethod
    def empty(cls) -> Purchases:
        return cls(*(np.zeros(0, t) for t in ("int32", "int32", "int16", "int16")))

    def __add__(self, other: Purchases) -> Purchases:
        return Purchases(*(np.concatenate(pair) for pair in zip(self, other, strict=True)))

    def __iter__(self):
        return iter((self.articles, self.days, self.units, self.online))

    def __len__(self) -> int:
        return len(self.articles)


@dataclass(frozen=True)
class Bought:
    """A customer's distinct articles, newest first, same day by article id (the order of
    customer_recent_articles_t), each with its last day, units over all time, units
    since a window's start and units online."""

    articles: np.ndarray  # codes
    last_days: np.ndarray  # days since EPOCH
    units: np.ndarray
    window_units: np.ndarray
    online: np.ndarray


class OnlineState:
    """Customers, their purchases and the article codes, as arrays (module docstring)."""

    def __init__(self, inputs: TowerInputs, tower: NumpyTower, article_ids: Iterable[str]) -> None:
        self.inputs, self.tower = inputs, tower
        self._write = threading.Lock()
        self.article_ids = np.array(sorted(set(article_ids)), dtype=object)
        self._article_codes = {a: i for i, a in enumerate(self.article_ids)}
        self._article_rank = np.arange(len(self.article_ids), dtype="int32")  # id order
        self._tower_codes = inputs.codes("recent_1", self.article_ids).astype("int32")
        self._rows: dict[str, int] = {}
        self._profiles = np.zeros((0, len(PROFILE_COLUMNS)), dtype="int32")
        self._ages = np.zeros(0, dtype="float64")
        self._offsets = np.zeros(1, dtype="int64")
        self._base = Purchases.empty()
        self._delta: dict[int, Purchases] = {}
        self.newest_day: date | None = None
        self.applied = 0  # purchase rows applied since the build
        self.followers: list = []  # stops of what follows the views (RisingWave)

    # --- building ---------------------------------------------------------------------

    @classmethod
    def build(
        cls, engine, inputs: TowerInputs, tower: NumpyTower, catalogue: Iterable[str]
    ) -> OnlineState:
        """From the embedded engine's views: customers_t, every buyer, every customer the
        model knows, and dedup_transactions_t's rows."""
        articles = engine.query(ARTICLES_SQL)["article_id"].dropna()
        state = cls(inputs, tower, [*catalogue, *articles])
        state.set_profiles(engine.query(PROFILE_SQL))
        state.add_without_profile(engine.query(BUYERS_SQL)["customer_id"])
        customers = pa.table({"customer_id": list(state._rows), "code": list(state._rows.values())})
        codes = pa.table({"article_id": state.article_ids.tolist(),
                          "code": np.arange(len(state.article_ids), dtype="int32")})  # fmt: skip
        rows = engine.query_arrow(
            PURCHASES_SQL, {"state_customers": customers, "state_articles": codes}
        )
        columns = ("customer", "article", "day", "units", "online")
        state._set_base(*(rows.column(c).to_numpy() for c in columns))
        return state

    def add_without_profile(self, customer_ids: Iterable[str] = ()) -> None:
        """Customers who have no customers_t row: `customer_ids` (buyers) and every
        customer the model knows; embedded with empty attributes, as the flow's LEFT
        JOINs give them."""
        others = [*customer_ids, *self.inputs.known_customers()]
        self.set_profiles(
            _without_profile([c for c in dict.fromkeys(others) if c not in self._rows])
        )

    def close(self) -> None:
        """Stop what keeps the state current from outside the service (RisingWave's
        subscriptions: `recsys.serve.subscription`)."""
        for stop in self.followers:
            stop()

    def _set_base(self, customers, articles, days, units, online) -> None:
        order = np.lexsort((days, customers))
        counts = np.bincount(customers, minlength=len(self._rows))
        self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype("int64")
        types = ((articles, "int32"), (days, "int32"), (units, "int16"), (online, "int16"))
        self._base = Purchases(*(column[order].astype(t) for column, t in types))
        if len(days):
            self.newest_day = from_day_number(days.max())

    # --- the stream's writes (one writer) ---------------------------------------------

    def set_profiles(self, frame: pd.DataFrame) -> None:
        """customers_t rows (CUSTOMER_COLUMNS): encoded, set, new customers added."""
        if frame.empty:
            return
        when = pd.Timestamp(EPOCH)  # the month is the request's; only the profile is kept
        codes = self.inputs.profiles(prepare_customers(frame.reset_index(drop=True), when))
        ages = pd.to_numeric(frame["age"], errors="coerce").to_numpy(dtype="float64")
        with self._write:
            pending: dict[str, int] = {}
            rows = []
            for customer in frame["customer_id"]:
                row = self._rows.get(customer, pending.get(customer))
                if row is None:
                    row = pending[customer] = len(self._rows) + len(pending)
                rows.append(row)
            self._profiles = _set_rows(self._profiles, rows, codes, 0)
            self._ages = _set_rows(self._ages, rows, ages, np.nan)
            self._rows.update(pending)  # readers find a new customer once their row is set

    def apply(self, purchases: pa.Table) -> None:
        """New purchase rows (t_dat, customer_id, article_id, units and online: distinct
        events new to the engine, `DuckDBEngine.write_batch`), added to their customers."""
        if not purchases.num_rows:
            return
        customers = purchases.column("customer_id").to_pylist()
        self.set_profiles(
            _without_profile([c for c in dict.fromkeys(customers) if c not in self._rows])
        )
        with self._write:
            article_ids = purchases.column("article_id").to_pylist()
            self._add_articles(dict.fromkeys(article_ids))
            rows = np.array([self._rows[c] for c in customers], dtype="int64")
            added = Purchases(
                np.array([self._article_codes[a] for a in article_ids], dtype="int32"),
                np.array([day_number(d) for d in purchases.column("t_dat").to_pylist()], "int32"),
                purchases.column("units").to_numpy().astype("int16"),
                purchases.column("online").to_numpy().astype("int16"),
            )
            order = np.argsort(rows, kind="stable")
            starts = np.flatnonzero(np.r_[True, rows[order][1:] != rows[order][:-1]])
            for part in np.split(order, starts[1:]):
                row = int(rows[part[0]])
                mine = Purchases(*(column[part] for column in added))
                self._delta[row] = self._delta.get(row, Purchases.empty()) + mine
            newest = from_day_number(added.days.max())
            self.newest_day = max(self.newest_day or newest, newest)
            self.applied += len(rows)

    def _add_articles(self, article_ids: Iterable[str]) -> None:
        new = [a for a in article_ids if a not in self._article_codes]
        if not new:
            return
        ids = np.concatenate([self.article_ids, np.array(new, dtype=object)])
        for article in new:
            self._article_codes[article] = len(self._article_codes)
        tower = np.concatenate([self._tower_codes, self.inputs.codes("recent_1", new)])
        self._tower_codes = tower.astype("int32")
        self._article_rank = np.argsort(np.argsort(ids, kind="stable")).astype("int32")
        self.article_ids = ids

    # --- reads (any thread) -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def row(self, customer_id: str) -> int | None:
        return self._rows.get(customer_id)

    def known(self, row: int | None) -> bool:
        """Whether the model was trained on the customer (an id of its vocabulary)."""
        return row is not None and self._profiles[row, CUSTOMER_ID_AT] > OOV_INDEX

    def purchases(self, row: int | None) -> Purchases:
        """Every purchase row of the customer (the whole history), built and streamed."""
        if row is None:
            return Purchases.empty()
        if row < len(self._offsets) - 1:
            start, stop = self._offsets[row], self._offsets[row + 1]
            base = Purchases(*(column[start:stop] for column in self._base))
        else:
            base = Purchases.empty()
        delta = self._delta.get(row)
        return base if delta is None else base + delta

    def latest_day(self, row: int | None) -> date | None:
        """The customer's latest purchase day (None: no purchase)."""
        days = self.purchases(row).days
        return from_day_number(days.max()) if len(days) else None

    def bought(self, row: int | None, window_start: date | None = None) -> Bought:
        """The customer's distinct articles, newest first, then by id; with the units
        bought since `window_start` (the repurchase window)."""
        articles, days, units, online = self.purchases(row)
        online = _day_channel(articles, days, units, online)
        distinct, where = np.unique(articles, return_inverse=True)
        last = np.zeros(len(distinct), dtype="int32")
        np.maximum.at(last, where, days)
        total = np.bincount(where, weights=units, minlength=len(distinct)).astype("int64")
        start = day_number(window_start) if window_start else np.iinfo("int32").min
        recent = np.where(days >= start, units, 0)
        window = np.bincount(where, weights=recent, minlength=len(distinct)).astype("int64")
        on = np.bincount(where, weights=online, minlength=len(distinct)).astype("int64")
        order = np.lexsort((self._article_rank[distinct], -last))
        return Bought(distinct[order], last[order], total[order], window[order], on[order])

    def history(self, customer_id: str) -> list[tuple[str, date, int]]:
        """customer_recent_articles_t's rows of the customer: the 12 latest distinct
        articles (article id, last day, units), newest first, then most bought."""
        bought = self.bought(self.row(customer_id))
        latest = zip(bought.articles[:HISTORY], bought.last_days, bought.units, strict=False)
        rows = [(self.article_ids[a], int(d), int(u)) for a, d, u in latest]
        rows.sort(key=lambda r: (-r[1], -r[2], r[0]))
        return [(a, from_day_number(d), u) for a, d, u in rows]

    def customers(self, ids: Sequence[str], today: date, queries: bool) -> Customers:
        """A batch of customers as of `today` (the day recommended for), as the strategy
        ranks them (`Customers.of`, as the flow makes it): who the model knows, their
        purchases, their age and (with `queries`) their query embeddings from their
        profile and latest articles. The one place the state becomes `Customers`: a new
        input is added here."""
        rows = [self.row(c) for c in ids]
        start = today - timedelta(days=REPURCHASE_WINDOW_DAYS)
        bought = [self.bought(row, start) for row in rows]
        known = np.array([self.known(row) for row in rows], dtype=bool)
        ages = np.array([np.nan if row is None else self._ages[row] for row in rows])
        embeddings = self._queries(rows, bought, today) if queries else None
        purchases = self._batch_purchases(ids, bought)
        return Customers.of(np.array(ids, dtype=object), known, purchases, ages, embeddings)

    def _batch_purchases(
        self, ids: Sequence[str], bought: list[Bought]
    ) -> strategy_inputs.Purchases:
        """The customers' distinct articles as the strategy's `Purchases` (ordinal days)."""
        owners = np.repeat(np.array(ids, dtype=object), [len(b.articles) for b in bought])

        def joined(name: str) -> np.ndarray:
            return np.concatenate([getattr(b, name) for b in bought] or [np.zeros(0, "int64")])

        articles = self.article_ids[joined("articles").astype("int64")]
        last_day = joined("last_days").astype("int64") + EPOCH.toordinal()
        return strategy_inputs.Purchases.of(ids, owners, articles, last_day, joined("units"),
                                   joined("window_units"), joined("online"))  # fmt: skip

    def _queries(self, rows: list[int | None], bought: list[Bought], today: date) -> np.ndarray:
        """The tower's embeddings: profile codes, the month of `today`, the latest articles."""
        profiles = np.stack([self.profile(row) for row in rows])
        recent = np.full((len(rows), RECENT_ARTICLES), self.inputs.no_article, dtype="int64")
        for i, b in enumerate(bought):
            latest = self._tower_codes[b.articles[:RECENT_ARTICLES]]
            recent[i, : len(latest)] = latest
        return self.tower(self.inputs.assemble(profiles, today.month, recent))

    def profile(self, row: int | None) -> np.ndarray:
        """The customer's profile codes (PROFILE_COLUMNS)."""
        if row is None:
            raise ValueError("a customer the state does not hold has no query embedding")
        return self._profiles[row]


def _day_channel(articles, days, units, online) -> np.ndarray:
    """Each row's online units as dedup_transactions_t counts them: all of a day's units
    of an article are online when any of them was (the day's highest channel), also
    when they arrived in several rows (the build's and streamed batches')."""
    if not len(articles):
        return online
    key = (articles.astype("int64") << 32) | days.astype("int64")
    _, group = np.unique(key, return_inverse=True)
    any_online = np.zeros(group.max() + 1, dtype=bool)
    np.logical_or.at(any_online, group, online > 0)
    return np.where(any_online[group], units, 0)


def _set_rows(array: np.ndarray, rows: list[int], values: np.ndarray, fill) -> np.ndarray:
    """`array` with `values` at `rows`, grown (doubled, `fill` in new rows) when a row is
    past its end; a new array when grown, so readers keep a whole one."""
    if rows and max(rows) >= len(array):
        grown = np.full((max(max(rows) + 1, 2 * len(array)), *array.shape[1:]), fill, array.dtype)
        grown[: len(array)] = array
        array = grown
    array[rows] = values
    return array


def _without_profile(customer_ids: Sequence[str]) -> pd.DataFrame:
    """customers_t's columns for customers without a row there: every attribute missing."""
    frame = pd.DataFrame({c: [None] * len(customer_ids) for c in CUSTOMER_COLUMNS})
    frame["customer_id"] = list(customer_ids)
    return frame
