"""What the candidate sources and the ranker know of the articles as of a day, read from
the engine with everything before the day only: every article's codes, sales and price
(`ArticleStats`), the articles bought together with each (`Together`) and the most bought
articles of each age group (`AgePopular`).

Each is one SQL query over the views, aggregated by the engine (DuckDB or RisingWave: the
queries use only what both run, and tests/strategy/test_articles.py parses them in
RisingWave's dialect), so only per-article rows reach pandas: about 100,000 articles and
20 partners each on the full data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

SALES_WINDOWS = (1, 7, 28)  # days before the day whose units an article's features count
PRICE_DAYS = 28  # an article's price: the mean of its purchase rows' prices over these days
TOGETHER_DAYS = 28  # pairs are counted over the purchases of these days
TOGETHER_GAP_DAYS = 3  # two articles are bought together when at most this many days apart
PARTNERS = 20  # the partners kept per article, most shared customers first
AGE_BOUNDS = (25, 35, 45, 55)  # age groups: unknown (0), <25 (1), 25-34 (2), ..., 55+ (5)
AGE_GROUPS = len(AGE_BOUNDS) + 2
AGE_POPULAR_DAYS = 7


def _day(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def _before(day: date, days: int) -> str:
    return _day(day - timedelta(days=days))


def article_stats_sql(day: date) -> str:
    """Per article sold before `day`: units over each of SALES_WINDOWS and over the week
    before the last (the trend's base), the mean price of PRICE_DAYS, the first sale."""
    windows = ", ".join(
        f"SUM(CASE WHEN t_dat >= {_before(day, days)} THEN units ELSE 0 END) AS sold_{days}"
        for days in SALES_WINDOWS
    )
    return (
        f"SELECT article_id, {windows}, "
        f"SUM(CASE WHEN t_dat >= {_before(day, 14)} AND t_dat < {_before(day, 7)} "
        "THEN units ELSE 0 END) AS sold_week_before, "
        f"AVG(CASE WHEN t_dat >= {_before(day, PRICE_DAYS)} THEN price END) AS price, "
        "MIN(t_dat) AS first_sold "
        f"FROM dedup_transactions_t WHERE t_dat < {_day(day)} GROUP BY article_id"
    )


ARTICLE_CODES_SQL = "SELECT article_id, product_code, department_no FROM articles_metadata_t"


def together_sql(day: date) -> str:
    """(article_id, partner, customers): for each article, the PARTNERS articles that most
    customers bought within TOGETHER_GAP_DAYS of it over the TOGETHER_DAYS before `day`."""
    gap = f"INTERVAL '{TOGETHER_GAP_DAYS} days'"
    return f"""
WITH bought AS (
    SELECT customer_id, article_id, t_dat FROM dedup_transactions_t
    WHERE t_dat >= {_before(day, TOGETHER_DAYS)} AND t_dat < {_day(day)}
),
pairs AS (
    SELECT a.article_id, b.article_id AS partner, COUNT(DISTINCT a.customer_id) AS customers
    FROM bought AS a
    JOIN bought AS b ON a.customer_id = b.customer_id
    WHERE a.article_id <> b.article_id
        AND b.t_dat >= a.t_dat - {gap} AND b.t_dat <= a.t_dat + {gap}
    GROUP BY a.article_id, b.article_id
)
SELECT article_id, partner, customers
FROM (
    SELECT article_id, partner, customers, ROW_NUMBER() OVER (
        PARTITION BY article_id ORDER BY customers DESC NULLS LAST, partner ASC NULLS LAST
    ) AS place
    FROM pairs
) AS ranked
WHERE place <= {PARTNERS}"""


def age_group_sql(column: str = "age") -> str:
    """`age_groups`' rule in SQL."""
    cases = " ".join(
        f"WHEN {column} < {bound} THEN {group}" for group, bound in enumerate(AGE_BOUNDS, start=1)
    )
    return f"CASE WHEN {column} IS NULL THEN 0 {cases} ELSE {AGE_GROUPS - 1} END"


def age_groups(ages: np.ndarray) -> np.ndarray:
    """Each age's group: 0 unknown, then one per interval of AGE_BOUNDS (int8)."""
    ages = np.asarray(ages, dtype="float64")
    groups = 1 + np.searchsorted(np.asarray(AGE_BOUNDS, dtype="float64"), ages, side="right")
    return np.where(np.isnan(ages), 0, groups).astype("int8")


def age_popular_sql(day: date, depth: int) -> str:
    """(age_group, article_id, bought): each age group's `depth` most bought articles
    (units) over the AGE_POPULAR_DAYS before `day`."""
    return f"""
SELECT age_group, article_id, bought
FROM (
    SELECT age_group, article_id, bought, ROW_NUMBER() OVER (
        PARTITION BY age_group ORDER BY bought DESC NULLS LAST, article_id ASC NULLS LAST
    ) AS place
    FROM (
        SELECT age_group, article_id, SUM(units) AS bought
        FROM (
            SELECT {age_group_sql()} AS age_group, article_id, units
            FROM joined_transactions_t
            WHERE t_dat >= {_before(day, AGE_POPULAR_DAYS)} AND t_dat < {_day(day)}
        ) AS grouped
        GROUP BY age_group, article_id
    ) AS counted
) AS ranked
WHERE place <= {int(depth)}"""


@dataclass(frozen=True, eq=False)
class ArticleStats:
    """Every article (the catalogue's and any sold) as of a day, by position: what the
    sources rank by and the ranker's article features. Counts are units; an article
    never sold has 0 units and NaN price and age."""

    ids: np.ndarray  # object, sorted
    product: np.ndarray  # int64: the product code's number (-1 unknown)
    department: np.ndarray  # int64: department_no (-1 unknown)
    sold: dict[int, np.ndarray]  # days of SALES_WINDOWS -> float32 units
    sold_week_before: np.ndarray  # float32: units of the 7 days before the last 7
    price: np.ndarray  # float32: mean price over PRICE_DAYS (NaN: not sold then)
    age_days: np.ndarray  # float32: days since the first sale (NaN: never sold)

    @classmethod
    def of(cls, day: date, codes: pd.DataFrame, sales: pd.DataFrame) -> ArticleStats:
        """From ARTICLE_CODES_SQL's and `article_stats_sql`'s rows."""
        frame = codes.merge(sales, on="article_id", how="outer").sort_values("article_id")
        frame = frame.drop_duplicates("article_id")
        first = pd.to_datetime(frame["first_sold"])
        age = (pd.Timestamp(day) - first).dt.days.to_numpy(dtype="float32", na_value=np.nan)
        return cls(
            ids=frame["article_id"].astype(str).to_numpy(dtype=object),
            product=_codes(frame["product_code"]),
            department=_codes(frame["department_no"]),
            sold={d: _units(frame[f"sold_{d}"]) for d in SALES_WINDOWS},
            sold_week_before=_units(frame["sold_week_before"]),
            price=frame["price"].to_numpy(dtype="float32", na_value=np.nan),
            age_days=age,
        )

    @classmethod
    def read(cls, engine, day: date) -> ArticleStats:
        return cls.of(day, engine.query(ARTICLE_CODES_SQL), engine.query(article_stats_sql(day)))

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, articles: np.ndarray) -> np.ndarray:
        """Each article id's position (-1: not an article of the day, or None)."""
        flat = np.asarray(articles, dtype=object).ravel()
        return self._index.get_indexer(flat).reshape(np.shape(articles))

    @functools.cached_property
    def _index(self) -> pd.Index:
        return pd.Index(self.ids)

    @functools.lru_cache(maxsize=2)  # noqa: B019 - one small cache per day's stats
    def product_members(self, days: int) -> ProductMembers:
        """The articles of each product code that sold in the last `days` (a SALES_WINDOWS
        entry)."""
        return ProductMembers.of(self.product, self.sold[days] > 0)


def _codes(column: pd.Series) -> np.ndarray:
    """A code column as int64 numbers, -1 where missing (product codes are digit text)."""
    return pd.to_numeric(column, errors="coerce").fillna(-1).to_numpy(dtype="int64")


def _units(column: pd.Series) -> np.ndarray:
    return column.fillna(0).to_numpy(dtype="float32")


@dataclass(frozen=True, eq=False)
class Together:
    """Each article's partners (positions in the day's ArticleStats), most shared
    customers first: article i's are `partners[offsets[i]:offsets[i + 1]]`."""

    offsets: np.ndarray  # (articles + 1,) int64
    partners: np.ndarray  # int64 positions
    customers: np.ndarray  # float32: customers who bought both

    @classmethod
    def of(cls, pairs: pd.DataFrame, articles: ArticleStats) -> Together:
        """From `together_sql`'s rows; pairs of articles the day does not know are left out."""
        first = articles.positions(pairs["article_id"].to_numpy(dtype=object))
        second = articles.positions(pairs["partner"].to_numpy(dtype=object))
        customers = pairs["customers"].to_numpy(dtype="float32")
        keep = (first >= 0) & (second >= 0)
        first, second, customers = first[keep], second[keep], customers[keep]
        order = np.lexsort((second, -customers, first))
        counts = np.bincount(first, minlength=len(articles))
        offsets = np.zeros(len(articles) + 1, dtype="int64")
        np.cumsum(counts, out=offsets[1:])
        return cls(offsets, second[order].astype("int64"), customers[order])

    @classmethod
    def read(cls, engine, day: date, articles: ArticleStats) -> Together:
        return cls.of(engine.query(together_sql(day)), articles)

    def expand(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(which of `positions`, partner, customers) for every partner of each position
        (a position of -1 has none)."""
        which, taken = spans(self.offsets, positions)
        return which, self.partners[taken], self.customers[taken]


@dataclass(frozen=True, eq=False)
class ProductMembers:
    """The articles of each product code (positions, by id): `members` of the code
    `codes[i]` are `members[offsets[i]:offsets[i + 1]]`."""

    codes: np.ndarray  # sorted product numbers
    offsets: np.ndarray
    members: np.ndarray

    @classmethod
    def of(cls, product: np.ndarray, keep: np.ndarray) -> ProductMembers:
        """The articles where `keep` holds, grouped by their `product` number (-1: none)."""
        positions = np.flatnonzero(keep & (product >= 0))
        order = positions[np.argsort(product[positions], kind="stable")]
        codes, counts = np.unique(product[order], return_counts=True)
        offsets = np.zeros(len(codes) + 1, dtype="int64")
        np.cumsum(counts, out=offsets[1:])
        return cls(codes, offsets, order.astype("int64"))

    def expand(self, products: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which of `products`, member position) for every member of each product."""
        slot = np.searchsorted(self.codes, products)
        found = np.minimum(slot, max(len(self.codes) - 1, 0))
        hit = (self.codes[found] == products) if len(self.codes) else np.zeros(len(slot), bool)
        which, taken = spans(self.offsets, np.where(hit, found, -1))
        return which, self.members[taken]


def spans(offsets: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For compressed rows (`offsets`): (which of `slots`, entry index) for every entry of
    each slot's row; a slot of -1 has none."""
    slots = np.asarray(slots, dtype="int64")
    valid = slots >= 0
    if not valid.any():
        return np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")
    starts = np.where(valid, offsets[np.maximum(slots, 0)], 0)
    counts = np.where(valid, offsets[np.maximum(slots, 0) + 1] - starts, 0)
    which = np.repeat(np.arange(len(slots)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return which, np.repeat(starts, counts) + within


@dataclass(frozen=True, eq=False)
class AgePopular:
    """Each age group's most bought articles of the last AGE_POPULAR_DAYS, best first:
    row g of `articles` (None past the list's end) and their units."""

    articles: np.ndarray  # (AGE_GROUPS, depth) object
    units: np.ndarray  # (AGE_GROUPS, depth) float64, NaN past the end

    @classmethod
    def of(cls, rows: pd.DataFrame, depth: int) -> AgePopular:
        articles = np.full((AGE_GROUPS, depth), None, dtype=object)
        units = np.full((AGE_GROUPS, depth), np.nan)
        ordered = rows.sort_values(["age_group", "bought", "article_id"],
                                   ascending=[True, False, True])  # fmt: skip
        for group, part in ordered.groupby("age_group", sort=False):
            part = part.head(depth)
            articles[int(group), : len(part)] = part["article_id"].astype(str).to_numpy()
            units[int(group), : len(part)] = part["bought"].to_numpy(dtype="float64")
        return cls(articles, units)

    @classmethod
    def read(cls, engine, day: date, depth: int) -> AgePopular:
        return cls.of(engine.query(age_popular_sql(day, depth)), depth)
