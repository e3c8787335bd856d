"""Synthetic H&M-shaped data: the Kaggle files' exact columns and formats, shopping-like behaviour.

Writes `articles.csv`, `customers.csv`, `transactions_train.csv`, `images.csv` and one
drawn JPEG per article under `images/0XX/`. `python data/generate.py --help` runs it.

The generative story (why each part is there: so that models can learn and the
benchmarks of the rest of the project mean something):

1. Catalogue. Products (7-digit product_code) belong to one department, which fixes
   section, index and index group; the product type fixes the product group, and the
   department or the type the garment group. Each product comes in ~2.2 colour variants
   (article_id = product_code + 3-digit variant). Every name has one number, drawn from
   the real H&M vocabularies (`recsys.datasets.vocab`). Each product has a life cycle:
   a selling life (lognormal, long-tailed: median 60 days, a tenth under 23 days and a
   tenth over 5 months; basics median 180 days), a launch date (new products keep
   arriving over the whole range, seasonal types mostly before their season; as many as
   that steady stream keeps on sale are already on sale on the first day, each at a
   random point of its life) and a withdrawal when the life ends. An article's demand on a day is
       popularity (lognormal: a long tail) x age curve (ramps up over ~5 days after
       launch, then decays as (1 + age/21 days)^-power; basics decay slowly)
       x decline (falls linearly to zero over the last 21 days of the life; zero after)
       x season (summer or winter types swing with the day of year)
       x trend (each department's demand drifts week by week: a log-AR(1)).
   This decay is what makes "most popular last week" a strong, meaningful baseline, and
   the withdrawal what makes an article bought long ago unlikely to sell now (as in the
   real data: `recsys.datasets.still_selling` measures it).
2. Customers. Age (bimodal, as in the real file) sets an age bucket; the bucket draws a
   persona (ladies, young, men, parent, sport) that weights the indexes. From it each
   customer draws 4 favourite departments (Dirichlet weights) and 2 favourite colour
   masters: a stable taste. Activity is lognormal (a few customers buy a lot); each
   customer joins on some day and may churn; each has an online-vs-store preference
   (sales_channel_id 2 vs 1). About 0.7% never buy. Club/news/FN/Active fields follow the
   real file's shares, none of them drives behaviour.
3. Shopping sessions. The daily volume follows weekdays, a summer peak, Black Friday,
   Christmas and the sales. A customer's sessions fall on days of their active window in
   proportion to that volume; a session has 1 + Poisson(2.9) lines in one channel (as
   many articles a buyer-week, 3.8, as in the real data).
4. Each line picks an article by one of four mechanisms:
   - repurchase (6.5%, when the customer bought on an earlier day): the article of one of
     the customer's own earlier lines, recent lines much more likely; if that article is
     no longer on sale, a taste pick instead;
   - another variant (15%, likewise): another colour of the product of one of their
     earlier lines, if one is on sale (about a third of the tries), else a taste pick;
   - taste (48.5%): one of the customer's departments, half the time in a favourite
     colour, then an article by today's demand within it (what a personalised model learns);
   - trend (30%): any article by today's demand.
   A taste or trend pick of a product the customer buys on an earlier day is drawn again
   (from their department, then from everything, avoiding what they own): people rarely
   buy the same garment or another colour of it by chance. So the two first mechanisms
   alone set how often a buyer's week holds an article, or a product, bought before; both
   are set to the real H&M shares (3.2% and 4.4%; `recsys.datasets.behaviour`).
5. Rows. Several units of one article in one session are exact duplicate rows (about
   9.4% of the rows, as in the real file); the rarer collisions of the mechanisms above
   count towards that share. The price is the article's list price (price units / 59000,
   as the real file's scaled prices), lowered in the summer and winter sales for articles
   older than 45 days that are on sale. Row counts are exact; rows are written in t_dat
   order, grouped by customer within a day.

Deterministic for a given seed and scale.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from tqdm import tqdm

from recsys.datasets import vocab
from recsys.datasets.hm_schema import ARTICLES, CUSTOMERS, IMAGES, TRANSACTIONS, image_path
from recsys.datasets.images import ImageJob, write_images


@dataclass(frozen=True)
class Scale:
    articles: int
    customers: int
    transactions: int
    start: date
    end: date  # inclusive


SCALES = {
    # tests: a few seconds; 12 weeks so every customer has a short, dense history
    "tiny": Scale(300, 600, 15_000, date(2020, 7, 1), date(2020, 9, 22)),
    # the default run: one year. Fewer weeks would give more signal per week, but then
    # most articles bought at all are still on sale (issue 13's life-cycle statistic)
    "demo": Scale(4_000, 15_000, 250_000, date(2019, 9, 24), date(2020, 9, 22)),
    # the real files' exact row counts and date range
    "full": Scale(105_542, 1_371_980, 31_788_324, date(2018, 9, 20), date(2020, 9, 22)),
}

# Behaviour (see the story above).
MEAN_VARIANTS = 2.2  # articles per product
RAMP_DAYS, DECAY_DAYS = 5, 21  # article age curve
FASHION_DECAY_POWER, BASIC_DECAY_POWER = 1.2, 0.35
BASIC_GARMENT_GROUPS = (1002, 1017, 1021)  # jersey basics, underwear, socks: steady sellers
# selling life (launch to withdrawal): lognormal, median in days, and its log-sd (long tail)
FASHION_LIFE_DAYS, BASIC_LIFE_DAYS, LIFE_SIGMA = 60, 180, 0.7
DECLINE_DAYS = 21  # demand falls linearly to zero over the last days of the life
VARIANT_LIFE_SIGMA = 0.25  # a product's colour variants live about as long as it does
TREND_PERSISTENCE, TREND_SIGMA = 0.85, 0.15  # weekly log-AR(1) demand trend per department
SEASON_AMPLITUDE = 0.7
POPULARITY_SIGMA = 1.4  # log-sd of a product's popularity: a few hits, a long tail
TASTE_DEPARTMENTS, FAVOURITE_COLOURS = 4, 2
# What a line buys. Real H&M per buyer-week (last 26 weeks, a 0.1 % customer sample;
# recsys.datasets.behaviour.REAL_HM): 3.2 % of a week's articles had been bought before by
# the same buyer (1.9 % within the 4 weeks before), and 4.4 % were another article of a
# product code they had bought. The lines that reproduce them (the rest: never by chance):
P_REPURCHASE = 0.065  # the same article as an earlier line: 3.2 % (1.9 % within 4 weeks)
P_OTHER_VARIANT = 0.15  # another colour of an earlier line's product, when one is on sale
# (about 1 try in 3 finds one, most products having one or two variants): 4.4 %
P_OWN = P_REPURCHASE + P_OTHER_VARIANT
P_TREND, P_FAVOURITE_COLOUR = 0.30, 0.5
TASTE, DEPARTMENT, EVERYTHING = 0, 1, 2  # where a demand draw looks
# Without the rounds below, taste picks repeated an owned article or product by chance in
# 2-3x the real shares (more on demo, whose customers own much of its small catalogue).
REDRAW_SCOPES = (DEPARTMENT, EVERYTHING, EVERYTHING)  # re-drawing picks of owned products
CANDIDATES = 8  # articles a redraw tries, to find one whose product the customer does not own
VARIANT_TRIES = 3  # random other variants tried for an "another variant" line
RECENT_LINES = 0.2  # own lines look back Geometric(0.2) lines: 59 % of repurchases within
# 4 weeks, as the real 1.9 % of 3.2 %
# 1 + Poisson(2.9) lines a session: 3.8 distinct articles per buyer-week, and 45 % of buyers
# bought in the 4 weeks before (fewer, larger sessions than the 1 + Poisson(1.3) before)
EXTRA_LINES_PER_SESSION = 2.9
DUPLICATE_SHARE = 2_974_905 / 31_788_324  # the real file's share of exact duplicate rows
NON_BUYER_SHARE = 0.007
FN_SHARE, ACTIVE_GIVEN_FN = 0.345, 0.975
NO_IMAGE_SHARE = 0.01
PRICE_SCALE = 59_000  # price = price units / PRICE_SCALE (the real file's scaling)
PRODUCT_CODES = (108_775, 959_461)  # the real range of product codes
WRITE_CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class Simulated:
    """A whole data set in memory, before writing: what the files will hold."""

    seed: int  # also draws which articles have an image, when writing
    calendar: Calendar
    catalogue: Catalogue
    customers: Customers
    rows: Rows


def generate(
    scale: str = "demo",
    out_dir: Path | str = "data/demo",
    seed: int = 42,
    images: bool = True,
    progress: bool | None = None,
) -> dict[str, int]:
    """Write the data set of `scale` to `out_dir`; returns the number of rows of each file.

    `images=False` skips drawing: images.csv is then written with its header only, so
    it always lists exactly the image files that exist. `progress=None` shows tqdm bars
    only on a terminal.
    """
    return write(simulate(scale, seed, progress), out_dir, images, progress)


def simulate(scale: str = "demo", seed: int = 42, progress: bool | None = None) -> Simulated:
    """Draw the data set of `scale` in memory (everything but the images)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {sorted(SCALES)}")
    spec = SCALES[scale]
    calendar_seed, catalogue_seed, customer_seed, purchase_seed, _ = _seeds(seed)
    calendar = build_calendar(spec.start, spec.end, np.random.default_rng(calendar_seed))
    catalogue = build_catalogue(np.random.default_rng(catalogue_seed), spec.articles, calendar)
    customers = build_customers(
        np.random.default_rng(customer_seed), spec.customers, catalogue, calendar.days
    )
    rows = simulate_transactions(
        purchase_seed, catalogue, customers, calendar, spec.transactions, progress
    )
    return Simulated(seed, calendar, catalogue, customers, rows)


def write(
    data: Simulated, out_dir: Path | str, images: bool = True, progress: bool | None = None
) -> dict[str, int]:
    """Write the files of a simulated data set; see `generate`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_articles(out, data.catalogue)
    write_customers(out, data.customers)
    write_transactions(out, data.rows, data.calendar, data.catalogue, data.customers, progress)
    n_articles = data.catalogue.size
    with_image = (
        np.random.default_rng(_seeds(data.seed)[4]).random(n_articles) >= NO_IMAGE_SHARE
        if images
        else np.zeros(n_articles, dtype=bool)
    )
    return {
        "articles": n_articles,
        "customers": data.customers.size,
        "transactions": len(data.rows.day),
        "images": write_image_files(out, data.catalogue, with_image),
    }


def _seeds(seed: int) -> list[np.random.SeedSequence]:
    """Independent streams: calendar, catalogue, customers, purchases, images."""
    return np.random.SeedSequence(seed).spawn(5)


# --------------------------------------------------------------------------- calendar


@dataclass(frozen=True)
class Calendar:
    dates: np.ndarray  # datetime64[D], one per day of data
    volume: np.ndarray  # relative number of shopping sessions per day
    season: np.ndarray  # (3, days): demand multiplier for ALL_YEAR, SUMMER, WINTER types
    sale: np.ndarray  # bool per day: summer and winter sales
    trend: np.ndarray  # (departments, days): each department's demand trend, weekly steps

    @property
    def days(self) -> int:
        return len(self.dates)


def build_calendar(start: date, end: date, rng: np.random.Generator) -> Calendar:
    """Daily shopping volume and seasonal demand over [start, end]."""
    dates = np.arange(np.datetime64(start), np.datetime64(end) + 1, dtype="datetime64[D]")
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(int)
    month = dates.astype("datetime64[M]").astype(int) % 12 + 1
    day = (dates - dates.astype("datetime64[M]")).astype(int) + 1
    weekday = (dates.astype(int) + 3) % 7  # 0 = Monday
    sale = (
        ((month == 6) & (day >= 20))
        | (month == 7)
        | ((month == 12) & (day >= 26))
        | ((month == 1) & (day <= 20))
    )
    volume = (
        np.array([0.92, 0.88, 0.92, 0.97, 1.08, 1.22, 1.0])[weekday]
        * (1 + 0.2 * np.cos(2 * np.pi * (day_of_year - 190) / 365.25))
        * np.where((month == 11) & (day >= 22) & (day <= 30), 1.5, 1.0)  # Black Friday
        * np.where((month == 12) & (day <= 22), 1.15, 1.0)  # Christmas shopping
        * np.where(sale, 1.2, 1.0)
        * (1 + 0.08 * np.arange(len(dates)) / 365.25)  # slow growth
        * rng.lognormal(0.0, 0.08, len(dates))
    )

    def swing(peak_day: int) -> np.ndarray:
        return 1 + SEASON_AMPLITUDE * np.cos(2 * np.pi * (day_of_year - peak_day) / 365.25)

    season = np.stack([np.ones(len(dates)), swing(195), swing(15)])
    return Calendar(dates, volume, season, sale, _trends(rng, len(vocab.DEPARTMENTS), len(dates)))


def _trends(rng: np.random.Generator, n_departments: int, days: int) -> np.ndarray:
    """Demand multiplier per department and day: a log-AR(1) that steps once a week.

    What is in fashion drifts: a department sells more for some weeks, then less.
    """
    weeks = (days + 6) // 7
    steps = rng.normal(0.0, TREND_SIGMA, (n_departments, weeks))
    steps[:, 0] /= np.sqrt(1 - TREND_PERSISTENCE**2)  # start in the stationary distribution
    log_trend = np.empty_like(steps)
    log_trend[:, 0] = steps[:, 0]
    for week in range(1, weeks):
        log_trend[:, week] = TREND_PERSISTENCE * log_trend[:, week - 1] + steps[:, week]
    return np.exp(np.repeat(log_trend, 7, axis=1)[:, :days]).astype(np.float32)


# -------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Catalogue:
    """Article attributes in article_id order, plus the index used to sample by demand."""

    article_id: np.ndarray  # str, 10 digits
    product: np.ndarray  # product index, non-decreasing: a product's variants are adjacent
    dept: np.ndarray  # index into vocab.DEPARTMENTS
    ptype: np.ndarray  # index into PTYPES
    garment_group: np.ndarray  # garment_group_no
    colour: np.ndarray  # index into vocab.COLOURS
    master: np.ndarray  # index into MASTERS (perceived colour master)
    appearance: np.ndarray  # index into vocab.APPEARANCES
    prod_name: np.ndarray
    detail_desc: np.ndarray
    launch: np.ndarray  # day index of launch (negative: before the data starts)
    life: np.ndarray  # days on sale from the launch; the last DECLINE_DAYS in decline
    popularity: np.ndarray
    decay_power: np.ndarray
    season: np.ndarray  # vocab.ALL_YEAR / SUMMER / WINTER
    list_price: np.ndarray  # price units
    sale_discount: np.ndarray  # price factor in the sales; 1.0 = never discounted
    unit_propensity: np.ndarray  # how likely several units are bought at once
    # demand sampling: articles sorted by (department, colour master)
    order: np.ndarray  # sorted position -> article index
    dept_bounds: np.ndarray  # (departments, 2) [lo, hi) in sorted positions
    cell_bounds: np.ndarray  # (departments * masters, 2)

    @property
    def size(self) -> int:
        return len(self.article_id)


PTYPES = list(vocab.PRODUCT_TYPES.values())
PTYPE_INDEX = {p.name: i for i, p in enumerate(PTYPES)}
MASTERS = sorted(vocab.PERCEIVED_MASTERS)
PERSONAS = list(vocab.PERSONA_INDEX_WEIGHTS)
COLOUR_MASTER = np.array([MASTERS.index(c.master_id) for c in vocab.COLOURS])


def build_catalogue(rng: np.random.Generator, n_articles: int, calendar: Calendar) -> Catalogue:
    """Products with variants, their launch dates, demand and prices.

    Product codes grow with the launch date, as in the real catalogue.
    """
    variants = _variant_counts(rng, n_articles)
    n_products = len(variants)
    dept_p, ptype_p = _product_kinds(rng, n_products)
    garment_p = np.array([_garment_group(d, p) for d, p in zip(dept_p, ptype_p, strict=True)])
    life_p = _lives(rng, garment_p)
    season_p = np.array([p.season for p in PTYPES])[ptype_p]
    launch_p = _launch_days(rng, season_p, life_p, calendar)
    by_launch = np.argsort(launch_p, kind="stable")
    variants, dept_p, ptype_p, garment_p, life_p, launch_p = (
        x[by_launch] for x in (variants, dept_p, ptype_p, garment_p, life_p, launch_p)
    )
    codes = np.sort(rng.choice(np.arange(*PRODUCT_CODES), n_products, replace=False))

    product = np.repeat(np.arange(n_products), variants)
    first = np.concatenate([[0], np.cumsum(variants)[:-1]])
    rank = np.arange(n_articles) - first[product]  # 0 for each product's first variant
    gaps = np.where(rng.random(n_articles) < 0.15, rng.integers(1, 8, n_articles), 0)
    gaps[rank == 0] = 0
    gap_sum = np.cumsum(gaps)
    variant_no = 1 + rank + gap_sum - gap_sum[first[product]]
    article_id = np.char.zfill((codes[product] * 1000 + variant_no).astype(str), 10)

    dept, ptype, garment = dept_p[product], ptype_p[product], garment_p[product]
    colour = rng.choice(
        len(vocab.COLOURS), n_articles, p=_normalised([c.weight for c in vocab.COLOURS])
    )
    appearance = _appearances(rng, garment)
    season = np.array([p.season for p in PTYPES])[ptype]
    later_variant = (rank > 0) & (rng.random(n_articles) < 0.3)
    launch = launch_p[product] + np.where(later_variant, rng.exponential(40, n_articles), 0).astype(
        np.int32
    )
    life = np.maximum(
        np.round(life_p[product] * rng.lognormal(0.0, VARIANT_LIFE_SIGMA, n_articles)),
        DECLINE_DAYS,
    )
    popularity = (
        rng.lognormal(0.0, POPULARITY_SIGMA, n_products)[product]
        * rng.lognormal(0.0, 0.6, n_articles)
        * np.where(rank == 0, 1.5, 1.0)
    )
    decay_power = np.where(
        np.isin(garment, BASIC_GARMENT_GROUPS), BASIC_DECAY_POWER, FASHION_DECAY_POWER
    )
    list_price = _list_prices(rng, dept_p, ptype_p)[product]
    sale_discount = np.where(
        rng.random(n_articles) < 0.6, rng.choice([0.5, 0.6, 0.7], n_articles), 1.0
    )
    cheap = list_price < 1000
    small = np.isin(np.array([p.group for p in PTYPES])[ptype], ["Socks & Tights", "Underwear"])
    unit_propensity = 1.0 + 2.0 * cheap + 1.0 * small
    names, descriptions = _texts(rng, ptype_p)

    master = COLOUR_MASTER[colour]
    order = np.lexsort((master, dept))
    n_depts, n_masters = len(vocab.DEPARTMENTS), len(MASTERS)
    return Catalogue(
        article_id=article_id,
        product=product.astype(np.int32),
        dept=dept,
        ptype=ptype,
        garment_group=garment,
        colour=colour,
        master=master,
        appearance=appearance,
        prod_name=_variant_names(rng, names[product], rank),
        detail_desc=descriptions[product],
        launch=launch.astype(np.int32),
        life=life.astype(np.int32),
        popularity=popularity,
        decay_power=decay_power,
        season=season,
        list_price=list_price,
        sale_discount=sale_discount,
        unit_propensity=unit_propensity,
        order=order,
        dept_bounds=_bounds(dept[order], n_depts),
        cell_bounds=_bounds(dept[order] * n_masters + master[order], n_depts * n_masters),
    )


def _variant_counts(rng: np.random.Generator, n_articles: int) -> np.ndarray:
    """Colour variants per product, summing exactly to `n_articles`."""
    counts = rng.geometric(1 / MEAN_VARIANTS, int(n_articles / MEAN_VARIANTS * 1.3) + 10)
    ends = np.cumsum(counts)
    n_products = int(np.searchsorted(ends, n_articles)) + 1
    counts = counts[:n_products]
    counts[-1] -= ends[n_products - 1] - n_articles
    return counts


def _product_kinds(rng: np.random.Generator, n_products: int) -> tuple[np.ndarray, np.ndarray]:
    """(department, product type) of each product, with the real index proportions."""
    depts_per_index: dict[str, int] = {}
    for d in vocab.DEPARTMENTS:
        depts_per_index[d.index_code] = depts_per_index.get(d.index_code, 0) + 1
    pairs, weights = [], []
    for i, d in enumerate(vocab.DEPARTMENTS):
        dept_weight = vocab.INDEXES[d.index_code].share / depts_per_index[d.index_code]
        type_weights = _normalised([vocab.PRODUCT_TYPES[t].weight for t in d.product_types])
        for t, w in zip(d.product_types, type_weights, strict=True):
            pairs.append((i, PTYPE_INDEX[t]))
            weights.append(dept_weight * w)
    chosen = np.array(pairs)[rng.choice(len(pairs), n_products, p=_normalised(weights))]
    return chosen[:, 0], chosen[:, 1]


def _appearances(rng: np.random.Generator, garment: np.ndarray) -> np.ndarray:
    """Graphical appearance; denim garments are mostly 'Denim'."""
    weights = _normalised([w for _, _, w in vocab.APPEARANCES])
    appearance = rng.choice(len(vocab.APPEARANCES), len(garment), p=weights)
    denim_index = [no for no, _, _ in vocab.APPEARANCES].index(vocab.DENIM_APPEARANCE)
    appearance[(garment == vocab.DENIM_GARMENT_GROUP) & (rng.random(len(garment)) < 0.8)] = (
        denim_index
    )
    return appearance


def _garment_group(dept: int, ptype: int) -> int:
    return vocab.DEPARTMENTS[dept].garment_group or PTYPES[ptype].garment_group


def _lives(rng: np.random.Generator, garment: np.ndarray) -> np.ndarray:
    """Selling life in days per product: weeks to months (lognormal), basics much longer."""
    median = np.where(np.isin(garment, BASIC_GARMENT_GROUPS), BASIC_LIFE_DAYS, FASHION_LIFE_DAYS)
    return median * rng.lognormal(0.0, LIFE_SIGMA, len(garment))


def _launch_days(
    rng: np.random.Generator, season: np.ndarray, life: np.ndarray, calendar: Calendar
) -> np.ndarray:
    """Launch day per product: the rest arrive over the range, some are on sale from the start.

    Arrivals are uniform over the range, except that summer (winter) types mostly launch
    in spring (autumn). The products already on sale on the first day are as many as a
    steady stream of arrivals keeps on sale (arrivals per day x mean life), each at a
    random point of its life.
    """
    n = len(season)
    launch = rng.integers(0, calendar.days, n)
    day_of_year = (calendar.dates - calendar.dates.astype("datetime64[Y]")).astype(int)
    windows = {
        vocab.SUMMER: (day_of_year >= 60) & (day_of_year < 170),
        vocab.WINTER: (day_of_year >= 240) & (day_of_year < 320),
    }
    for code, window in windows.items():
        eligible = np.flatnonzero(window)
        move = (season == code) & (rng.random(n) < 0.7)
        if len(eligible):
            launch[move] = eligible[rng.integers(0, len(eligible), move.sum())]
    mean_life = life.mean()
    before = rng.random(n) < mean_life / (mean_life + calendar.days)
    launch[before] = -np.floor(rng.random(before.sum()) * life[before]).astype(np.int64)
    return launch


def _list_prices(rng: np.random.Generator, dept: np.ndarray, ptype: np.ndarray) -> np.ndarray:
    """List price in price units per product: the type's price, cheaper for kids, ending in 99."""
    base = np.array([PTYPES[p].price for p in ptype], dtype=float)
    index_factor = np.array(
        [vocab.INDEXES[vocab.DEPARTMENTS[d].index_code].price_factor for d in dept]
    )
    jitter = rng.choice([0.6, 0.8, 1.0, 1.25, 1.6], len(ptype), p=[0.1, 0.25, 0.35, 0.2, 0.1])
    return np.maximum(np.round(base * index_factor * jitter / 100) * 100 - 1, 99).astype(np.int32)


def _texts(rng: np.random.Generator, ptype: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """prod_name and detail_desc per product (free text with commas and quotes)."""
    n = len(ptype)
    who = rng.choice(vocab.NAME_WORDS, n)
    style = rng.choice(vocab.STYLE_WORDS, n)
    fabric = rng.choice(vocab.FABRICS, n)
    features = rng.choice(vocab.FEATURES, (n, 3))
    short = rng.random(n) < 0.4
    names, descriptions = [], []
    for i, p in enumerate(ptype):
        noun = PTYPES[p].name.lower()
        names.append(f"{who[i]} {style[i]} {noun}")
        f1, f2, f3 = features[i]
        if short[i]:
            descriptions.append(f"{fabric[i]} {noun} with {f1} and {f2}.")
        else:
            descriptions.append(f"{fabric[i]} {noun} with {f1}, {f2} and {f3}. Regular fit.")
    descriptions = np.array(descriptions, dtype=object)
    descriptions[rng.random(n) < 0.005] = ""  # the real file has a few empty descriptions
    descriptions[rng.integers(n)] = ""
    return np.array(names, dtype=object), descriptions


def _variant_names(rng: np.random.Generator, names: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Some later variants carry a ' (1)' suffix, as in the real catalogue."""
    suffix = (rank > 0) & (rng.random(len(names)) < 0.1)
    names = names.copy()
    names[suffix] = names[suffix] + " (1)"
    return names


def _bounds(sorted_keys: np.ndarray, n_keys: int) -> np.ndarray:
    keys = np.arange(n_keys)
    return np.stack(
        [np.searchsorted(sorted_keys, keys, "left"), np.searchsorted(sorted_keys, keys, "right")],
        axis=1,
    )


def _normalised(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


# -------------------------------------------------------------------------- customers


@dataclass(frozen=True)
class Customers:
    """Customer attributes in customer_id order."""

    customer_id: np.ndarray  # S64 hex, sorted
    postal_code: np.ndarray  # S64 hex
    age: np.ndarray  # float, NaN when unknown
    fn: np.ndarray  # float 1.0 or NaN
    active: np.ndarray
    club_member_status: np.ndarray  # object, "" when unknown
    fashion_news_frequency: np.ndarray
    depts: np.ndarray  # (customers, TASTE_DEPARTMENTS) favourite departments
    dept_cumweights: np.ndarray  # (customers, TASTE_DEPARTMENTS) cumulative taste weights
    colours: np.ndarray  # (customers, FAVOURITE_COLOURS) favourite colour masters
    p_online: np.ndarray
    activity: np.ndarray
    join: np.ndarray  # first day the customer may shop
    last: np.ndarray  # last day (churn), inclusive
    buyer: np.ndarray  # bool: False for the ~0.7% who never buy

    @property
    def size(self) -> int:
        return len(self.customer_id)


def build_customers(rng: np.random.Generator, n: int, catalogue: Catalogue, days: int) -> Customers:
    """Customers with a stable, segment-dependent taste, an activity level and an active window."""
    age = _ages(rng, n)
    fn = np.where(rng.random(n) < FN_SHARE, 1.0, np.nan)
    active = np.where((fn == 1.0) & (rng.random(n) < ACTIVE_GIVEN_FN), 1.0, np.nan)
    persona = _personas(rng, age)
    depts, cumweights = _favourite_departments(rng, persona, catalogue)
    master_share = np.bincount(catalogue.master, minlength=len(MASTERS)) + 0.5
    colours = _top_k(
        rng, np.log(np.broadcast_to(master_share, (n, len(MASTERS)))), FAVOURITE_COLOURS
    )
    online_heavy = rng.random(n) < 0.75
    join = np.where(rng.random(n) < 0.6, 0, rng.integers(0, days, n))
    churn = rng.random(n) < 0.25
    last = np.where(
        churn, join + np.floor(rng.random(n) * (days - join)).astype(np.int64), days - 1
    )
    p_online = np.where(online_heavy, rng.beta(8, 1.5, n), rng.beta(1.5, 4, n))
    return Customers(
        customer_id=np.sort(_hex_ids(rng, n)),
        postal_code=_postal_codes(rng, n),
        age=age,
        fn=fn,
        active=active,
        club_member_status=_club_status(rng, n),
        fashion_news_frequency=_news_frequency(rng, fn),
        depts=depts,
        dept_cumweights=cumweights,
        colours=colours,
        p_online=p_online,
        activity=rng.lognormal(0.0, 1.1, n),
        join=join,
        last=last,
        buyer=rng.random(n) >= NON_BUYER_SHARE,
    )


def _ages(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bimodal like the real file (peaks in the early 20s and around 50); ~1.2% unknown."""
    component = rng.choice(3, n, p=[0.45, 0.25, 0.30])
    mean, sd = np.array([23.0, 33.0, 52.0]), np.array([3.5, 5.0, 9.0])
    age = np.clip(np.round(rng.normal(mean[component], sd[component])), 16, 96)
    age[rng.random(n) < 0.012] = np.nan
    return age


def _personas(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    """Persona index (into PERSONAS) drawn from the mix of the customer's age bucket."""
    bucket = np.searchsorted(vocab.AGE_BUCKET_EDGES, np.nan_to_num(age, nan=0), side="right")
    unknown = np.isnan(age)
    bucket[unknown] = rng.integers(0, len(vocab.AGE_BUCKET_EDGES) + 1, unknown.sum())
    mix = np.array([vocab.PERSONA_MIX[p] for p in PERSONAS]).T  # (buckets, personas)
    cumulative = np.cumsum(mix / mix.sum(axis=1, keepdims=True), axis=1)
    return np.minimum(
        (rng.random(len(age))[:, None] > cumulative[bucket]).sum(axis=1), len(PERSONAS) - 1
    )


def _favourite_departments(
    rng: np.random.Generator, persona: np.ndarray, catalogue: Catalogue
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's favourite departments (persona's index weights x department size)."""
    dept_size = np.diff(catalogue.dept_bounds, axis=1)[:, 0].astype(float)
    dept_index = [d.index_code for d in vocab.DEPARTMENTS]
    prior = np.zeros((len(PERSONAS), len(dept_index)))
    for p, name in enumerate(PERSONAS):
        weights = vocab.PERSONA_INDEX_WEIGHTS[name]
        index_size = {
            code: sum(s for s, c in zip(dept_size, dept_index, strict=True) if c == code)
            for code in weights
        }
        for d, code in enumerate(dept_index):
            if code in weights and index_size[code] > 0:
                prior[p, d] = weights[code] * dept_size[d] / index_size[code]
    with np.errstate(divide="ignore"):
        log_prior = np.log(prior)
    depts = np.empty((len(persona), TASTE_DEPARTMENTS), dtype=np.int32)
    for lo in range(0, len(persona), 100_000):  # bounded memory at full scale
        chunk = persona[lo : lo + 100_000]
        depts[lo : lo + len(chunk)] = _top_k(rng, log_prior[chunk], TASTE_DEPARTMENTS)
    weights = rng.dirichlet(np.full(TASTE_DEPARTMENTS, 0.7), len(persona))
    weights[~np.isfinite(log_prior[persona[:, None], depts])] = 0.0  # persona with few departments
    cumweights = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    return depts, cumweights.astype(np.float32)


def _top_k(rng: np.random.Generator, log_weights: np.ndarray, k: int) -> np.ndarray:
    """k distinct categories per row, drawn without replacement (Gumbel top-k)."""
    scores = log_weights + rng.gumbel(size=log_weights.shape)
    return np.argsort(-scores, axis=1)[:, :k].astype(np.int32)


def _hex_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random 64-character lowercase hex strings (as bytes, dtype S64)."""
    digits = np.frombuffer(b"0123456789abcdef", dtype="S1")
    raw = np.frombuffer(rng.bytes(32 * n), dtype=np.uint8).reshape(n, 32)
    chars = np.empty((n, 64), dtype="S1")
    chars[:, 0::2] = digits[raw >> 4]
    chars[:, 1::2] = digits[raw & 15]
    return chars.view("S64").ravel()


def _postal_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """A pool of ~n/4 codes, one of them shared by ~9% of customers (as in the real file)."""
    pool = _hex_ids(rng, max(2, n // 4))
    pick = 1 + np.floor((len(pool) - 1) * rng.random(n) ** 1.5).astype(np.int64)
    pick[rng.random(n) < 0.088] = 0
    return pool[pick]


def _club_status(rng: np.random.Generator, n: int) -> np.ndarray:
    status = rng.choice(
        np.array(["ACTIVE", "PRE-CREATE", ""], dtype=object), n, p=[0.928, 0.0676, 0.0044]
    )
    status[rng.choice(n, max(1, round(n * 0.00034)), replace=False)] = "LEFT CLUB"
    return status


def _news_frequency(rng: np.random.Generator, fn: np.ndarray) -> np.ndarray:
    """'Regularly' mostly for FN subscribers, 'NONE' for the rest; rarely 'Monthly', '', 'None'."""
    n = len(fn)
    subscribed = rng.choice(
        np.array(["Regularly", "Monthly", "NONE"], dtype=object), n, p=[0.985, 0.003, 0.012]
    )
    other = rng.choice(np.array(["NONE", ""], dtype=object), n, p=[0.983, 0.017])
    frequency = np.where(fn == 1.0, subscribed, other)
    frequency[rng.choice(n, max(1, round(n * 2e-6)), replace=False)] = "None"
    return frequency


# ----------------------------------------------------------------------- transactions


@dataclass(frozen=True)
class Rows:
    """Transaction rows in file order (t_dat, then customer)."""

    day: np.ndarray
    customer: np.ndarray
    article: np.ndarray
    price_units: np.ndarray
    channel: np.ndarray


@dataclass(frozen=True)
class Lines:
    """Distinct purchases (customer, day, article, channel), sorted by customer then day."""

    customer: np.ndarray
    day: np.ndarray
    channel: np.ndarray
    article: np.ndarray


def simulate_transactions(
    seed: np.random.SeedSequence,
    catalogue: Catalogue,
    customers: Customers,
    calendar: Calendar,
    n_rows: int,
    progress: bool | None = None,
) -> Rows:
    """Exactly `n_rows` rows, of which DUPLICATE_SHARE are extra units of a purchase."""
    n_duplicates = round(DUPLICATE_SHARE * n_rows)
    n_distinct = n_rows - n_duplicates
    margin = 1.06
    for attempt_seed in seed.spawn(6):  # more lines than needed, then trim; rarely needs a retry
        rng = np.random.default_rng(attempt_seed)
        lines = _simulate_lines(
            rng, catalogue, customers, calendar, int(n_distinct * margin), progress
        )
        is_copy, has_copy = _same_row_groups(lines, catalogue.size)
        if (~is_copy).sum() >= n_distinct:
            break
        margin *= 1.15
    else:
        raise RuntimeError(f"could not simulate {n_distinct} distinct purchases")
    units = _units_per_line(rng, lines, catalogue, is_copy, has_copy, n_distinct, n_duplicates)
    price_units = _prices(catalogue, calendar, lines)
    line = np.repeat(np.arange(len(units), dtype=np.int64), units)
    line = line[np.argsort(lines.day[line], kind="stable")]  # t_dat order, customers grouped
    return Rows(
        day=lines.day[line],
        customer=lines.customer[line],
        article=lines.article[line],
        price_units=price_units[line],
        channel=lines.channel[line],
    )


def _simulate_lines(
    rng: np.random.Generator,
    catalogue: Catalogue,
    customers: Customers,
    calendar: Calendar,
    n_lines: int,
    progress: bool | None,
) -> Lines:
    """Sessions -> lines -> an article for each line (taste, trend, then the customer's own)."""
    customer, day, channel = _session_lines(rng, customers, calendar, n_lines)
    n = len(customer)
    new_customer = np.r_[True, customer[1:] != customer[:-1]]
    new_day = new_customer | np.r_[True, day[1:] != day[:-1]]
    positions = np.arange(n, dtype=np.int64)
    customer_start = np.maximum.accumulate(np.where(new_customer, positions, 0))
    day_start = np.maximum.accumulate(np.where(new_day, positions, 0))
    history = day_start - customer_start  # lines bought on earlier days

    draw = rng.random(n)
    own = history > 0  # only a customer who bought on an earlier day can buy from it again
    repurchase = own & (draw < P_REPURCHASE)
    own &= draw < P_OWN  # a repurchase or another variant of an earlier line's product
    trend = ~own & (draw >= P_OWN) & (draw < P_OWN + P_TREND)
    picker = Picker(rng, catalogue, customers, calendar, customer, day, trend)
    # every line gets a taste or trend pick; an own line keeps it as a backup, in case it
    # cannot be filled (its product is its source's, so owned already: same redraws)
    picker.draw(positions, TASTE, progress=progress)
    picker.redraw_owned(REDRAW_SCOPES)
    own_lines = np.flatnonzero(own)
    backup = picker.article[own_lines]
    picker.article[own_lines] = -1
    # own lines come from a line of an earlier day, recent ones much more likely
    back = np.minimum(rng.geometric(RECENT_LINES, n), np.maximum(history, 1))
    source = np.where(own, day_start - back, positions)
    picker.from_own_lines(own_lines, source, repurchase)
    # ...unless the customer cannot buy it (withdrawn, no other variant on sale)
    failed = picker.article[own_lines] < 0
    picker.article[own_lines[failed]] = backup[failed]
    return Lines(customer, day, channel, picker.article)


def _on_sale(catalogue: Catalogue, article: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Whether each article is on sale on the paired day (launched, not yet withdrawn)."""
    age = day - catalogue.launch[article]
    return (age >= 0) & (age < catalogue.life[article])


@dataclass(frozen=True)
class Owned:
    """The products each customer buys (on any day): what a redrawn pick avoids."""

    key: np.ndarray  # customer * n_products + product, sorted, distinct
    n_products: int
    added: np.ndarray  # keys of picks made since, sorted (a small set, cheap to extend)

    def owns(self, customer: np.ndarray, product: np.ndarray) -> np.ndarray:
        """Whether each customer buys the paired product (element-wise, broadcast)."""
        key = customer.astype(np.int64) * self.n_products + product
        return _in_sorted(self.key, key) | _in_sorted(self.added, key)

    def plus(self, customer: np.ndarray, product: np.ndarray) -> Owned:
        """The same, with these (customer, product) pairs bought too."""
        key = customer.astype(np.int64) * self.n_products + product
        return Owned(self.key, self.n_products, np.union1d(self.added, key))


def _in_sorted(sorted_keys: np.ndarray, key: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(key.shape, dtype=bool)
    found = np.minimum(np.searchsorted(sorted_keys, key), len(sorted_keys) - 1)
    return sorted_keys[found] == key


def _repeats(
    customer: np.ndarray, day: np.ndarray, product: np.ndarray, n_products: int
) -> tuple[np.ndarray, np.ndarray]:
    """(again, keys): whether each line's product was bought by its customer on an earlier
    day, and the distinct (customer, product) keys, sorted. Lines in customer, day order."""
    key = customer.astype(np.int64) * n_products + product
    order = np.argsort(key, kind="stable")  # stable: within a key, earliest day first
    key, days = key[order], day[order]
    first = np.r_[True, key[1:] != key[:-1]]
    first_day = days[np.maximum.accumulate(np.where(first, np.arange(len(key)), 0))]
    again = np.empty(len(key), dtype=bool)
    again[order] = days > first_day
    return again, key[first]


@dataclass
class Picker:
    """Draws the article of each line (`article`, -1 until drawn) by the day's demand."""

    rng: np.random.Generator
    catalogue: Catalogue
    customers: Customers
    calendar: Calendar
    customer: np.ndarray  # per line, sorted by customer then day
    day: np.ndarray
    trend: np.ndarray  # bool: a trend line draws from everything
    article: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.article = np.full(len(self.customer), -1, dtype=np.int32)

    def redraw_owned(self, scopes: tuple[int, ...]) -> None:
        """Draw again the picks whose product the customer bought on an earlier day.

        People rarely buy the same garment, or another colour of it, by chance: those
        come from their own lines (P_REPURCHASE, P_OTHER_VARIANT). Each round looks in a
        wider scope and avoids every product the customer buys; the next round takes the
        lines that found none, and those that picked the same product as another line of
        the round. Every line must have an article.
        """
        product = self.catalogue.product
        n_products = int(product[-1]) + 1
        again, keys = _repeats(self.customer, self.day, product[self.article], n_products)
        owned = Owned(keys, n_products, np.empty(0, dtype=np.int64))
        todo = np.flatnonzero(again)
        for scope in scopes:
            stuck = self.draw(todo, scope, owned)
            picked = product[self.article[todo]]
            owned = owned.plus(self.customer[todo], picked)
            clash = _repeats(self.customer[todo], self.day[todo], picked, n_products)[0]
            todo = np.union1d(stuck, todo[clash])

    def from_own_lines(self, lines: np.ndarray, source: np.ndarray, repurchase: np.ndarray) -> None:
        """Fill `lines` from their source line: the same article, or another variant of it.

        Sources come first in time, so rounds resolve chains (a repurchase of a repurchase).
        A line that cannot be filled (withdrawn article, no other variant on sale) gets -2,
        and so do the lines that come from it.
        """
        article, day = self.article, self.day
        while len(lines):
            known = article[source[lines]]
            ready = known != -1
            done, known = lines[ready], known[ready]
            chosen = np.full(len(done), -2, dtype=article.dtype)
            same = repurchase[done] & (known >= 0)
            on_sale = _on_sale(self.catalogue, known[same], day[done[same]])
            chosen[same] = np.where(on_sale, known[same], -2)
            other = ~repurchase[done] & (known >= 0)
            chosen[other] = self.other_variant(known[other], day[done[other]])
            article[done] = chosen
            lines = lines[~ready]

    def other_variant(self, article: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Another colour variant of each article's product on sale that day (-2: none found)."""
        product = self.catalogue.product
        first = np.searchsorted(product, product[article], side="left")
        size = np.searchsorted(product, product[article], side="right") - first
        chosen = np.full(len(article), -2, dtype=np.int64)
        for _ in range(VARIANT_TRIES):
            step = 1 + np.floor(self.rng.random(len(article)) * (size - 1)).astype(np.int64)
            pick = first + (article - first + step) % size
            found = (chosen < 0) & (size > 1) & _on_sale(self.catalogue, pick, day)
            chosen[found] = pick[found]
        return chosen

    def draw(
        self,
        todo: np.ndarray,
        scope: int,
        owned: Owned | None = None,
        progress: bool | None = False,
    ) -> np.ndarray:
        """Fill `article` of the `todo` lines, one day at a time, by that day's demand.

        `scope`: TASTE (a favourite department, half the time in a favourite colour),
        DEPARTMENT (a favourite department, any colour) or EVERYTHING; trend lines always
        draw from everything. With `owned`, each line draws CANDIDATES articles and keeps
        the first whose product the customer does not own yet; returns the lines that
        found none (they keep the first).
        """
        rng, catalogue, customers, calendar = (
            self.rng,
            self.catalogue,
            self.customers,
            self.calendar,
        )
        todo = todo[np.argsort(self.day[todo], kind="stable")]
        bounds = np.searchsorted(self.day[todo], np.arange(calendar.days + 1))
        sorted_launch = catalogue.launch[catalogue.order]
        sorted_life = catalogue.life[catalogue.order].astype(np.float32)
        sorted_base = catalogue.popularity[catalogue.order]
        sorted_season = catalogue.season[catalogue.order]
        sorted_dept = catalogue.dept[catalogue.order]
        age_curves = _age_curves(
            catalogue.decay_power[catalogue.order], calendar.days - sorted_launch.min()
        )
        n_masters = len(MASTERS)
        everything = np.array([0, catalogue.size])
        candidates = 1 if owned is None else CANDIDATES
        stuck = [np.empty(0, dtype=np.int64)]
        for d in _bar(range(calendar.days), "purchases by day", progress):
            lines = todo[bounds[d] : bounds[d + 1]]
            if len(lines) == 0:
                continue
            age = d - sorted_launch
            weight = np.where(age >= 0, sorted_base * age_curves(np.maximum(age, 0)), 0.0)
            weight *= np.clip((sorted_life - age) / DECLINE_DAYS, 0.0, 1.0)  # decline, withdrawal
            weight *= calendar.season[sorted_season, d] * calendar.trend[sorted_dept, d]
            cumulative = np.concatenate([[0.0], np.cumsum(weight)])
            c = self.customer[lines]
            slot = (rng.random(len(lines))[:, None] > customers.dept_cumweights[c]).sum(axis=1)
            dept = customers.depts[c, np.minimum(slot, TASTE_DEPARTMENTS - 1)]
            colour = customers.colours[c, rng.integers(0, FAVOURITE_COLOURS, len(lines))]
            ranges = np.where(
                (rng.random(len(lines)) < P_FAVOURITE_COLOUR)[:, None] & (scope == TASTE),
                catalogue.cell_bounds[dept * n_masters + colour],
                catalogue.dept_bounds[dept],
            )
            ranges[self.trend[lines] | (scope == EVERYTHING)] = everything
            for fallback in (
                catalogue.dept_bounds[dept],
                np.broadcast_to(everything, ranges.shape),
            ):
                empty = cumulative[ranges[:, 1]] <= cumulative[ranges[:, 0]]
                ranges[empty] = fallback[empty]
            lo, hi = ranges[:, :1], ranges[:, 1:]
            width = cumulative[hi] - cumulative[lo]
            target = cumulative[lo] + rng.random((len(lines), candidates)) * width
            position = np.clip(np.searchsorted(cumulative, target, side="right") - 1, lo, hi - 1)
            picks = catalogue.order[position]
            keep = np.zeros(len(lines), dtype=np.int64)
            if owned is not None:
                keep, none_free = _first_free(owned, c, catalogue.product[picks])
                stuck.append(lines[none_free])
            self.article[lines] = picks[np.arange(len(lines)), keep]
        return np.concatenate(stuck)


def _first_free(
    owned: Owned, customer: np.ndarray, products: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(column, none_free): per row of candidate `products`, the first the customer does not
    own (0 when none is), and the rows where none is free. Most rows keep their first."""
    keep = np.zeros(len(customer), dtype=np.int64)
    open_rows = np.arange(len(customer))
    for column in range(products.shape[1]):
        free = ~owned.owns(customer[open_rows], products[open_rows, column])
        keep[open_rows[free]] = column
        open_rows = open_rows[~free]
    return keep, open_rows


def _session_lines(
    rng: np.random.Generator, customers: Customers, calendar: Calendar, n_lines: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer, day, channel) per line, sorted by customer then day."""
    n, days, join, last = customers.size, calendar.days, customers.join, customers.last
    cumulative = np.concatenate([[0.0], np.cumsum(calendar.volume)])
    mass = cumulative[last + 1] - cumulative[join]  # shopping volume in the active window

    n_sessions = n_lines / (1 + EXTRA_LINES_PER_SESSION)
    buyer = customers.buyer
    rate = customers.activity * mass
    scale = max(n_sessions - buyer.sum(), 0) / rate[buyer].sum()
    sessions = np.where(buyer, 1 + rng.poisson(scale * rate), 0)

    s_customer = np.repeat(np.arange(n, dtype=np.int32), sessions)
    u = cumulative[join[s_customer]] + rng.random(len(s_customer)) * mass[s_customer]
    s_day = np.clip(
        np.searchsorted(cumulative, u, side="right") - 1, join[s_customer], last[s_customer]
    )
    order = np.argsort(s_customer.astype(np.int64) * days + s_day, kind="stable")
    s_customer, s_day = s_customer[order], s_day[order].astype(np.int16)
    s_channel = np.where(rng.random(len(s_customer)) < customers.p_online[s_customer], 2, 1).astype(
        np.int8
    )
    size = 1 + rng.poisson(EXTRA_LINES_PER_SESSION, len(s_customer))
    return np.repeat(s_customer, size), np.repeat(s_day, size), np.repeat(s_channel, size)


def _age_curves(decay_power: np.ndarray, max_age: int) -> Callable[[np.ndarray], np.ndarray]:
    """age -> demand multiplier per article: ramp up after launch, then a power-law decay."""
    ages = np.arange(max_age + 1)
    ramp = np.minimum(1.0, (ages + 1) / RAMP_DAYS)
    powers, kind = np.unique(decay_power, return_inverse=True)
    table = ramp * (1 + ages / DECAY_DAYS) ** -powers[:, None]
    return lambda age: table[kind, np.minimum(age, max_age)]


def _same_row_groups(lines: Lines, n_articles: int) -> tuple[np.ndarray, np.ndarray]:
    """(is_copy, has_copy): lines repeating an earlier line's customer, day, article and channel.

    Such a repeat is an exact duplicate row (its price is the same: price depends on the
    article and the day only), i.e. one more unit of the same purchase.
    """
    new_group = np.r_[
        True, (lines.customer[1:] != lines.customer[:-1]) | (lines.day[1:] != lines.day[:-1])
    ]
    group = np.cumsum(new_group, dtype=np.int64) - 1
    key = (group * n_articles + lines.article) * 2 + (lines.channel - 1)
    order = np.argsort(key, kind="stable")
    same = key[order][1:] == key[order][:-1]
    is_copy = np.zeros(len(key), dtype=bool)
    has_copy = np.zeros(len(key), dtype=bool)
    is_copy[order[1:][same]] = True
    has_copy[order[:-1][same]] = True
    return is_copy, has_copy


def _units_per_line(
    rng: np.random.Generator,
    lines: Lines,
    catalogue: Catalogue,
    is_copy: np.ndarray,
    has_copy: np.ndarray,
    n_distinct: int,
    n_duplicates: int,
) -> np.ndarray:
    """Rows per line (0 = dropped) so that there are exactly n_distinct + n_duplicates rows.

    Surplus single lines are dropped; the missing duplicates are extra units, more often
    of cheap and small items (socks, underwear).
    """
    units = np.ones(len(is_copy), dtype=np.int64)
    distinct = ~is_copy
    surplus = int(distinct.sum()) - n_distinct
    units[rng.permutation(np.flatnonzero(distinct & ~has_copy))[:surplus]] = 0
    copies = np.flatnonzero(is_copy)
    extra = n_duplicates - len(copies)
    if extra < 0:
        units[rng.permutation(copies)[:-extra]] = 0
    elif extra > 0:
        kept = np.flatnonzero((units > 0) & distinct)
        cumulative = np.cumsum(catalogue.unit_propensity[lines.article[kept]])
        picks = np.searchsorted(cumulative, rng.random(extra) * cumulative[-1], side="right")
        units += np.bincount(kept[picks], minlength=len(units))
    return units


def _prices(catalogue: Catalogue, calendar: Calendar, lines: Lines) -> np.ndarray:
    """Price units per line: the list price, discounted in the sales for older articles."""
    article = lines.article
    on_sale = calendar.sale[lines.day] & (lines.day - catalogue.launch[article] > 45)
    factor = np.where(on_sale, catalogue.sale_discount[article], 1.0)
    units = catalogue.list_price[article] * factor
    return np.maximum(np.round(units / 50) * 50 - 1, 49).astype(np.int32)


def price_text(units: int) -> str:
    """The real file's price format: units / 59000 cut (not rounded) to 16 decimals."""
    value = (Decimal(units) / PRICE_SCALE).quantize(Decimal("1e-16"), rounding=ROUND_DOWN)
    return f"{value:f}".rstrip("0")


# ---------------------------------------------------------------------------- writers


def write_articles(out: Path, catalogue: Catalogue) -> None:
    depts, colours = vocab.DEPARTMENTS, vocab.COLOURS
    dept, ptype, colour = catalogue.dept, catalogue.ptype, catalogue.colour
    garment = catalogue.garment_group
    index = [vocab.INDEXES[d.index_code] for d in depts]
    columns = {
        "article_id": catalogue.article_id,
        "product_code": np.array([a[:7] for a in catalogue.article_id]),
        "prod_name": catalogue.prod_name,
        "product_type_no": _pick([p.no for p in PTYPES], ptype),
        "product_type_name": _pick([p.name for p in PTYPES], ptype),
        "product_group_name": _pick([p.group for p in PTYPES], ptype),
        "graphical_appearance_no": _pick([a[0] for a in vocab.APPEARANCES], catalogue.appearance),
        "graphical_appearance_name": _pick([a[1] for a in vocab.APPEARANCES], catalogue.appearance),
        "colour_group_code": _pick([c.code for c in colours], colour),
        "colour_group_name": _pick([c.name for c in colours], colour),
        "perceived_colour_value_id": _pick([c.value_id for c in colours], colour),
        "perceived_colour_value_name": _pick(
            [vocab.PERCEIVED_VALUES[c.value_id] for c in colours], colour
        ),
        "perceived_colour_master_id": _pick([c.master_id for c in colours], colour),
        "perceived_colour_master_name": _pick(
            [vocab.PERCEIVED_MASTERS[c.master_id] for c in colours], colour
        ),
        "department_no": _pick([d.no for d in depts], dept),
        "department_name": _pick([d.name for d in depts], dept),
        "index_code": _pick([i.code for i in index], dept),
        "index_name": _pick([i.name for i in index], dept),
        "index_group_no": _pick([i.group_no for i in index], dept),
        "index_group_name": _pick([i.group_name for i in index], dept),
        "section_no": _pick([d.section_no for d in depts], dept),
        "section_name": _pick([d.section_name for d in depts], dept),
        "garment_group_no": garment,
        "garment_group_name": np.array([vocab.GARMENT_GROUPS[g] for g in garment], dtype=object),
        "detail_desc": catalogue.detail_desc,
    }
    frame = pd.DataFrame(columns)[ARTICLES.column_names]
    frame.to_csv(out / ARTICLES.file, index=False, lineterminator="\n")


def write_customers(out: Path, customers: Customers) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": customers.customer_id.astype(str),
            "FN": customers.fn,
            "Active": customers.active,
            "club_member_status": customers.club_member_status,
            "fashion_news_frequency": customers.fashion_news_frequency,
            "age": customers.age,
            "postal_code": customers.postal_code.astype(str),
        }
    )[CUSTOMERS.column_names]
    frame.to_csv(out / CUSTOMERS.file, index=False, lineterminator="\n")


def write_transactions(
    out: Path,
    rows: Rows,
    calendar: Calendar,
    catalogue: Catalogue,
    customers: Customers,
    progress: bool | None = None,
) -> None:
    """Chunked Arrow CSV writing: each column is a lookup into a small table of its texts."""
    dates = pa.array(np.datetime_as_string(calendar.dates, unit="D"))
    customer_ids = pa.array(customers.customer_id).cast(pa.string())
    article_ids = pa.array(catalogue.article_id)
    used = np.unique(rows.price_units)
    texts = np.full(int(used.max()) + 1, "", dtype=object)
    texts[used] = [price_text(int(u)) for u in used]
    prices = pa.array(texts)
    schema = pa.schema([(name, pa.string()) for name in TRANSACTIONS.column_names[:-1]]).append(
        pa.field("sales_channel_id", pa.int8())
    )
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    with (out / TRANSACTIONS.file).open("wb") as handle:
        handle.write((",".join(TRANSACTIONS.column_names) + "\n").encode())
        with pa_csv.CSVWriter(handle, schema, write_options=options) as writer:
            starts = range(0, len(rows.day), WRITE_CHUNK_ROWS)
            for lo in _bar(starts, "writing transactions", progress):
                part = slice(lo, lo + WRITE_CHUNK_ROWS)
                writer.write_table(
                    pa.table(
                        [
                            dates.take(pa.array(rows.day[part])),
                            customer_ids.take(pa.array(rows.customer[part])),
                            article_ids.take(pa.array(rows.article[part])),
                            prices.take(pa.array(rows.price_units[part])),
                            pa.array(rows.channel[part]),
                        ],
                        schema=schema,
                    )
                )


def write_image_files(out: Path, catalogue: Catalogue, with_image: np.ndarray) -> int:
    """images.csv plus one drawn JPEG per listed article; returns the number of images.

    An existing images/ folder is replaced, so that it never holds images of another run.
    """
    shutil.rmtree(out / "images", ignore_errors=True)
    chosen = np.flatnonzero(with_image)
    paths = [image_path(catalogue.article_id[i]) for i in chosen]
    pd.DataFrame({"article_id": catalogue.article_id[chosen], "image_path": paths})[
        IMAGES.column_names
    ].to_csv(out / IMAGES.file, index=False, lineterminator="\n")
    jobs = [
        ImageJob(
            path=str(out / path),
            article_id=catalogue.article_id[i],
            product_type=PTYPES[catalogue.ptype[i]].name,
            product_group=PTYPES[catalogue.ptype[i]].group,
            appearance=vocab.APPEARANCES[catalogue.appearance[i]][1],
            rgb=vocab.COLOURS[catalogue.colour[i]].rgb,
        )
        for i, path in zip(chosen, paths, strict=True)
    ]
    return write_images(jobs)


def _pick(values: list, index: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=object)[index]


def _bar(items: Iterable, desc: str, progress: bool | None) -> Iterable:
    """A tqdm bar; `progress=None` shows it only on a terminal."""
    return tqdm(items, desc=desc, disable=None if progress is None else not progress)
