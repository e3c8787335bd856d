"""The customer's recent articles: the query tower's view of what they just bought.

The definition is `customer_recent_articles_t`'s: a customer's distinct articles, the
most recently bought first (same day: by article_id). The tower reads the first
RECENT_ARTICLES of them as the columns recent_1 .. recent_N ("none" where the customer
bought fewer). A new purchase therefore changes the customer's embedding without
retraining, and a customer the model never saw is no longer blank once they bought.

Three readers, one definition, no leakage:

- a training row on day d reads the articles bought *before* d (`by_day_sql`), never its
  own day's: the model learns to predict a day's purchases from the days before it;
- scoring as of a day reads the purchases before that day (`as_of_sql`): the lists
  evaluated on a week are made as of its start;
- the service reads `customer_recent_articles_t` itself, whose first rows are the same
  articles (tests/train/test_recent_articles.py checks the three against each other).

The engine hands over, per row, the articles of the customer's last LOOKBACK_DAYS purchase
days as one text (`RECENT_TEXT`: newest day first, days separated by commas, a day's
articles by spaces), and `slots` orders each day's by id and keeps the first N distinct.
Why text and a bounded look-back: per purchase day the engine then aggregates one short
string, where a row per earlier article ran DuckDB out of its 3 GB on the full data, and
"all earlier days" would pair every purchase day of a customer with every other. The slots
are then the same as over all days unless those days hold fewer than N distinct articles;
even then the slots they hold are right, and only older ones are missing. The SQL is plain
enough for DuckDB and RisingWave (Postgres dialect) alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

RECENT_ARTICLES = 4
RECENT_COLUMNS = tuple(f"recent_{slot}" for slot in range(1, RECENT_ARTICLES + 1))
RECENT_TEXT = "recent_articles"  # the engine's column: days newest first (DAY_SEPARATOR)
NO_ARTICLE = "none"  # an empty slot: a category of its own, never a null (NVTabular's
# Categorify fails on a batch whose column is all null)
LOOKBACK_DAYS = 2 * RECENT_ARTICLES  # each purchase day adds at least one article
# The engine computes the texts for a sixteenth of the customers at a time: over all of
# them at once DuckDB's window ran out of its 3 GB on the full data; a sixteenth took
# 2.8 s (bench/results/flow-full.md has the whole flow's figures).
CUSTOMER_SLICES = 16
DAY_SEPARATOR = ","  # between days in RECENT_TEXT; a day's articles are separated by spaces
# One row per customer and purchase day: that day's articles. Not ordered by id in SQL:
# an ordered STRING_AGG buffers every group's rows and ran DuckDB out of memory on the
# full data, so `slots` sorts each day's few articles instead.
_DAYS = """
    SELECT customer_id, t_dat, STRING_AGG(article_id, ' ') AS bought
    FROM dedup_transactions_t
    {where}
    GROUP BY customer_id, t_dat"""


@dataclass(frozen=True)
class CustomerSlice:
    """The customers whose id is in [low, high) (None: unbounded)."""

    low: str | None
    high: str | None

    def where(self, column: str = "customer_id") -> str:
        """The slice as an SQL condition on `column`."""
        bounds = [f"{column} >= '{self.low}'"] * (self.low is not None)
        bounds += [f"{column} < '{self.high}'"] * (self.high is not None)
        return " AND ".join(bounds) or "TRUE"


ALL_CUSTOMERS = CustomerSlice(None, None)


def customer_slices() -> list[CustomerSlice]:
    """CUSTOMER_SLICES slices by the first hex digit of the id; any text falls in one."""
    bounds = [None, *(f"{digit:x}" for digit in range(1, CUSTOMER_SLICES)), None]
    return [CustomerSlice(low, high) for low, high in zip(bounds, bounds[1:], strict=False)]


def by_day_sql(since: date | None = None, customers: CustomerSlice = ALL_CUSTOMERS) -> str:
    """customer_id, t_dat, RECENT_TEXT for each day a customer of the slice bought
    something (from `since` on): the articles of their LOOKBACK_DAYS purchase days before
    it."""
    later = f"WHERE t_dat >= {_day(since)}" if since else ""
    return f"""
SELECT customer_id, t_dat, {RECENT_TEXT}
FROM ({_looking_back(_DAYS.format(where=f"WHERE {customers.where()}"), first=1)}
) AS by_day
{later}"""


def as_of_sql(when: date, customers: CustomerSlice = ALL_CUSTOMERS) -> str:
    """customer_id, RECENT_TEXT for every customer of the slice who bought before `when`:
    their last LOOKBACK_DAYS purchase days (those up to their last one before `when`)."""
    days = _DAYS.format(where=f"WHERE t_dat < {_day(when)} AND {customers.where()}")
    return f"""
SELECT customer_id, {RECENT_TEXT}
FROM ({_looking_back(days, first=0)}
) AS by_day
WHERE newest"""


def _looking_back(days: str, first: int) -> str:
    """Per row of `days`: RECENT_TEXT of the LOOKBACK_DAYS purchase days from `first` days
    back (0: the row's own day), newest first; `newest` marks each customer's last row."""
    window = "OVER (PARTITION BY customer_id ORDER BY t_dat)"  # inline: RisingWave has no WINDOW
    back = ", ".join(
        f"LAG(bought, {n}) {window}" if n else "bought" for n in range(first, first + LOOKBACK_DAYS)
    )
    return f"""
    SELECT
        customer_id,
        t_dat,
        CONCAT_WS('{DAY_SEPARATOR}', {back}) AS {RECENT_TEXT},
        LEAD(t_dat) {window} IS NULL AS newest
    FROM ({days}
    ) AS days"""


def slots(texts: Sequence[str | None]) -> dict[str, np.ndarray]:
    """RECENT_COLUMNS from RECENT_TEXT values: each text's first N distinct ids, in order."""
    out = np.full((len(texts), RECENT_ARTICLES), NO_ARTICLE, dtype=object)
    for row, text in enumerate(texts):
        if isinstance(text, str):
            days = (sorted(day.split()) for day in text.split(DAY_SEPARATOR))
            first = list(dict.fromkeys(a for day in days for a in day))[:RECENT_ARTICLES]
            out[row, : len(first)] = first
    return {column: out[:, slot] for slot, column in enumerate(RECENT_COLUMNS)}


def as_text(article_ids: Iterable[str]) -> str:
    """A customer's articles, newest first (customer_recent_articles_t's order), as
    RECENT_TEXT: what the service reads from the view, in the engine's form."""
    return DAY_SEPARATOR.join(article_ids)


def with_recent_articles(rows: pd.DataFrame) -> pd.DataFrame:
    """Purchase rows held in memory (tests, benchmarks) with their RECENT_TEXT, computed
    by `by_day_sql` over the rows themselves in an in-memory DuckDB."""
    import duckdb

    purchases = rows[["customer_id", "t_dat", "article_id"]].astype(
        {"customer_id": str, "article_id": str, "t_dat": "datetime64[ns]"}
    )
    with duckdb.connect() as con:
        con.register("dedup_transactions_t", purchases)
        found = con.execute(f"SELECT * FROM ({by_day_sql()}) AS by_day").df()
    found["t_dat"] = found["t_dat"].astype("datetime64[ns]")
    texts = purchases[["customer_id", "t_dat"]].merge(found, how="left")[RECENT_TEXT]
    return rows.assign(**{RECENT_TEXT: texts.to_numpy()})


def _day(day: date) -> str:
    return f"DATE '{day.isoformat()}'"
