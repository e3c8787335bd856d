"""Features of the two towers: stateless derivations in pandas, fitted statistics in NVTabular.

Two workflows, one per tower, so the catalogue (articles only) and the customer table
(customers only) can each be encoded without inventing columns for the other tower:

- customers: customer id, age bucket, club status, news frequency, FN, Active, postal
  code (hashed to a bounded number of buckets), the purchase month (context) and the
  customer's latest distinct articles bought before the row's day (`recsys.train.recent_articles`:
  recent_1..recent_N, one vocabulary for all slots, so they share one embedding table);
- articles: article id, the article codes, the mean log2 price over *training* rows, and how
  much the article sold in the week before (`RecentSales`, a log2 bucket).

Both are fitted on the training split only. Ids unseen at fit time are encoded as
Categorify's out-of-vocabulary index (2), never an error.

On the full data the training rows never sit in one frame: `recsys.train.dataset` streams
them from the engine into Parquet parts of prepared rows (`prepare_interactions`), the
workflows are fitted on a `merlin.io.Dataset` over those parts (`fit_workflows`), and
`FittedFeatures.encode` transforms them part by part into encoded Parquet (dask
underneath: the same calls run on cuDF when a GPU is there).

Why the recent-sales feature: an article's demand rises after launch and then decays, so
what sold last week is a strong signal of what sells next week (the popularity baseline
lives on it). Without it the item tower can only learn an article's *average* popularity
over the whole training period, which is stale by the test week.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.progress import dask_progress
from recsys.train import recent_articles
from recsys.train.recent_articles import RECENT_COLUMNS, RECENT_TEXT, with_recent_articles

AGE_BOUNDARIES = (0, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 200)
POSTAL_CODE_BUCKETS = 1_000
ARTICLE_CODE_COLUMNS = (
    "product_type_no",
    "product_group_name",
    "graphical_appearance_no",
    "colour_group_code",
    "perceived_colour_value_id",
    "department_no",
    "index_code",
    "section_no",
    "garment_group_no",
)
CUSTOMER_COLUMNS = (
    "customer_id",
    "age",
    "club_member_status",
    "fashion_news_frequency",
    "FN",
    "Active",
    "postal_code",
)
CUSTOMER_CATEGORICALS = (
    "customer_id",
    "age_bucket",
    "club_member_status",
    "fashion_news_frequency",
    "FN",
    "Active",
    "postal_code",  # already hashed to a bucket by `postal_buckets`
)
PRICE_FEATURE = "article_id_price_mean"
# The price feature is the article's mean log2 price over training rows. Why log2 and
# no fitted scaling: H&M prices (about 0.001-0.6) become numbers of about -10..-1 that
# need no Normalize, whose mean/std sums round differently when rows are cut into other
# parts. Each log price is rounded to a multiple of 2**-16, so the per-article sums are
# exact in float64 in any order: the feature is the same however the work is cut.
# An article without training rows gets 0 (price 1.0, above every real price).
LOG_PRICE_QUANTUM = 2.0**16
UNKNOWN_LOG_PRICE = 0.0
RECENT_SALES_FEATURE = "recent_sales"
RECENT_SALES_DAYS = 7  # one window = the popularity baseline's window
_BUCKET_TEXT = np.array([str(i) for i in range(POSTAL_CODE_BUCKETS)], dtype=object)
OOV_INDEX = 2  # Categorify: 0 padding, 1 null, 2 out-of-vocabulary, 3.. the vocabulary


@dataclass
class FittedFeatures:
    """The two fitted workflows; `customers`/`articles` transform raw frames into model inputs."""

    customer_workflow: object  # nvtabular.Workflow
    article_workflow: object  # nvtabular.Workflow
    recent_sales: RecentSales
    directory: Path  # where both are saved, with their category tables and the sales

    @property
    def schema(self):
        """The model's input schema: both towers' columns, with their tags."""
        return self.customer_workflow.output_schema + self.article_workflow.output_schema

    def as_of(self, sales: RecentSales) -> FittedFeatures:
        """The same fitted workflows, encoding articles with the sales known at a later
        cutoff (the test week's lists are made as of its start)."""
        return dataclasses.replace(self, recent_sales=sales)

    def customers(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Encode customer rows (prepared with `prepare_customers`)."""
        return _transform(self.customer_workflow, frame)

    def articles(self, frame: pd.DataFrame, days: pd.Series | None = None) -> pd.DataFrame:
        """Encode article rows, with their recent sales as of each row's day.

        Without `days` (the catalogue) the sales are those as of the cutoff: the last
        7 days of training data, the only sales every later prediction may know.
        """
        return _transform(self.article_workflow, _article_inputs(frame, self.recent_sales, days))

    def interactions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Encode transaction rows held in memory: both towers' columns side by side (the
        recent articles computed from the rows themselves: `with_recent_articles`)."""
        prepared = prepare_interactions(with_recent_articles(frame), self.recent_sales).to_pandas()
        return _transform(self.interaction_workflow(), prepared)

    def interaction_workflow(self):
        """Both fitted workflows as one, for rows that carry both towers' inputs."""
        import nvtabular as nvt

        both = nvt.Workflow(self.customer_workflow.output_node + self.article_workflow.output_node)
        both.fit_schema(self.customer_workflow.input_schema + self.article_workflow.input_schema)
        return both

    def encode(self, prepared, out_dir: Path) -> list[Path]:
        """Transform a `merlin.io.Dataset` of prepared rows into encoded Parquet, part by part.

        One output file per input partition, in partition order, so the rows keep the
        order `recsys.train.dataset` gave them (training reads them in that order).
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        encoded = self.interaction_workflow().transform(prepared).to_ddf()
        with dask_progress(f"encode training rows into {out_dir.name}"):
            encoded.to_parquet(str(out_dir), write_index=False, name_function=_part_name)
        return sorted(out_dir.glob("part-*.parquet"))

    @property
    def known_customers(self) -> pd.Index:
        """The customer ids the model has an embedding row for (the fitted vocabulary)."""
        path = self.directory / "customers" / "categories" / "unique.customer_id.parquet"
        ids = pd.read_parquet(path, columns=["customer_id"])["customer_id"]
        return pd.Index(ids.dropna().astype(str))

    def item_frequencies(self, encoded) -> np.ndarray:
        """Purchases per encoded article id over `encoded` rows, sized to the id vocabulary.

        `encoded` is a frame or a `merlin.io.Dataset` (counted part by part by dask).
        The logQ correction divides each logit by how often the article shows up as an
        in-batch negative; +1 keeps never-seen ids (padding, OOV) from log(0).
        """
        cardinality = self.article_workflow.output_schema["article_id"].int_domain.max + 1
        if isinstance(encoded, pd.DataFrame):
            ids = encoded["article_id"]
        else:
            ids = encoded.to_ddf()["article_id"]
        counts = ids.value_counts()
        counts = counts if isinstance(counts, pd.Series) else counts.compute()
        frequencies = np.ones(cardinality)
        frequencies[counts.index.to_numpy()] += counts.to_numpy()
        return frequencies

    @classmethod
    def load(cls, directory: Path) -> FittedFeatures:
        import nvtabular as nvt

        return cls(
            customer_workflow=nvt.Workflow.load(str(directory / "customers")),
            article_workflow=nvt.Workflow.load(str(directory / "articles")),
            recent_sales=RecentSales.load(directory / RecentSales.FILE),
            directory=directory,
        )


@dataclass(frozen=True)
class RecentSales:
    """Purchases per article in each 7-day window before the cutoff (all purchases before it).

    Windows are counted back from the cutoff: window 0 is the 7 days before it. A row on
    day d sees the window before its own, so a training row never sees its own week and
    the catalogue, scored as of the cutoff, sees window 0: the popularity baseline's week.
    """

    FILE = "recent_sales.parquet"

    cutoff: pd.Timestamp
    counts: pd.Series  # (article_id, window) -> purchases

    @classmethod
    def from_rows(cls, rows: pd.DataFrame, cutoff: pd.Timestamp) -> RecentSales:
        cutoff = pd.Timestamp(cutoff)
        keys = pd.DataFrame(
            {
                "article_id": rows["article_id"].astype(str).to_numpy(),
                "window": _window(rows["t_dat"], cutoff),
            }
        )
        return cls(cutoff, keys.value_counts().rename("purchases"))

    @classmethod
    def from_counts(cls, counts: pd.DataFrame, cutoff: pd.Timestamp) -> RecentSales:
        """From purchases already counted per (article_id, window) by the engine."""
        index = pd.MultiIndex.from_arrays(
            [counts["article_id"].astype(str).to_numpy(), counts["window"].astype("int64")],
            names=["article_id", "window"],
        )
        return cls(
            pd.Timestamp(cutoff), pd.Series(counts["purchases"].to_numpy(), index, name="purchases")
        )

    def buckets(self, article_ids: pd.Series, days: pd.Series | None = None) -> np.ndarray:
        """floor(log2(1 + purchases in the window before each day)) as text, per row."""
        seen = np.zeros(len(article_ids), dtype="int64")
        if days is not None:
            seen = _window(days, self.cutoff) + 1
        wanted = pd.MultiIndex.from_arrays(
            [np.asarray(article_ids, dtype=object), seen], names=["article_id", "window"]
        )
        purchases = self.counts.reindex(wanted, fill_value=0).to_numpy()
        return np.floor(np.log2(1 + purchases)).astype("int64").astype(str).astype(object)

    def save(self, path: Path) -> None:
        self.counts.reset_index().to_parquet(path, index=False)
        path.with_suffix(".cutoff").write_text(self.cutoff.date().isoformat())

    @classmethod
    def load(cls, path: Path) -> RecentSales:
        table = pd.read_parquet(path)
        cutoff = pd.Timestamp(path.with_suffix(".cutoff").read_text())
        return cls(cutoff, table.set_index(["article_id", "window"])["purchases"])


def _window(days: pd.Series, cutoff: pd.Timestamp) -> np.ndarray:
    """Index of the 7-day window before `cutoff` each day falls in (0: the last 7 days)."""
    before = (cutoff - pd.to_datetime(pd.Series(days).to_numpy())).days.to_numpy()
    return (before - 1) // RECENT_SALES_DAYS


def prepare_customers(frame: pd.DataFrame, when: pd.Series | pd.Timestamp) -> pd.DataFrame:
    """Customer columns plus the stateless derivations: age bucket, month of `when`, and
    the recent-article slots from the frame's RECENT_TEXT (all "none" without it)."""
    return pd.DataFrame(_customer_columns(frame, when))


def _customer_columns(frame: pd.DataFrame, when: pd.Series | pd.Timestamp) -> dict:
    ages = pd.to_numeric(frame["age"], errors="coerce").to_numpy()
    buckets = pd.cut(ages, bins=list(AGE_BOUNDARIES), right=False, labels=False)
    out = {
        "customer_id": _as_ids(frame["customer_id"]),
        "age_bucket": _as_text(pd.Series(buckets, dtype="Int64")),
    }
    for column in ("club_member_status", "fashion_news_frequency"):
        out[column] = _as_text(frame[column])
    for column in ("FN", "Active"):
        out[column] = _as_text(pd.to_numeric(frame[column], errors="coerce").fillna(0))
    out["postal_code"] = postal_buckets(frame["postal_code"])
    texts = frame[RECENT_TEXT].to_numpy() if RECENT_TEXT in frame else [None] * len(frame)
    out.update(recent_articles.slots(texts))
    if isinstance(when, pd.Series):
        out["month"] = _as_text(pd.to_datetime(when).dt.month)
    else:
        out["month"] = np.full(len(frame), str(pd.Timestamp(when).month), dtype=object)
    return out


def postal_buckets(codes: pd.Series) -> np.ndarray:
    """Each postal code hashed to one of POSTAL_CODE_BUCKETS buckets, as text.

    Hashed here rather than with NVTabular's HashBucket: on the CPU that op hashes with
    `pandas.util.hash_pandas_object`, which mixes in the row *index*, so one postal code
    lands in a different bucket on every row (pure noise to the model).
    """
    text = _as_text(codes)
    return _BUCKET_TEXT[pd.util.hash_array(text) % POSTAL_CODE_BUCKETS]


def prepare_articles(frame: pd.DataFrame) -> pd.DataFrame:
    """Article id, codes as strings, and the row's log2 price (NaN for catalogue rows)."""
    return pd.DataFrame(_article_columns(frame))


def _article_columns(frame: pd.DataFrame) -> dict:
    out = {"article_id": _as_ids(frame["article_id"])}
    for column in ARTICLE_CODE_COLUMNS:
        out[column] = _as_text(frame[column])
    price = frame["price"] if "price" in frame else pd.Series(np.nan, index=frame.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_price = np.log2(price.astype("float64").where(price > 0).to_numpy())
    out["price"] = np.round(log_price * LOG_PRICE_QUANTUM) / LOG_PRICE_QUANTUM
    return out


def _article_inputs(
    frame: pd.DataFrame, recent_sales: RecentSales, days: pd.Series | None
) -> pd.DataFrame:
    """What the article workflow reads: `prepare_articles` plus the recent-sales bucket."""
    columns = _article_columns(frame)
    columns[RECENT_SALES_FEATURE] = recent_sales.buckets(columns["article_id"], days)
    return pd.DataFrame(columns)


def prepare_interactions(frame: pd.DataFrame, recent_sales: RecentSales) -> pa.Table:
    """Transaction rows as both workflows read them: customer and article inputs side by
    side, as an Arrow table (what the Parquet parts are written from; `.to_pandas()` for
    a frame)."""
    columns = {**_customer_columns(frame, frame["t_dat"]), **_article_columns(frame)}
    columns[RECENT_SALES_FEATURE] = recent_sales.buckets(columns["article_id"], frame["t_dat"])
    return pa.table(columns)


def fit_workflows(prepared, recent_sales: RecentSales, work_dir: Path) -> FittedFeatures:
    """Fit both workflows on a `merlin.io.Dataset` of prepared training rows (vocabularies,
    price and sales statistics), part by part; save them with the sales under `work_dir`."""
    import nvtabular as nvt

    customer_workflow = nvt.Workflow(_customer_graph(work_dir / "fit"))
    article_workflow = nvt.Workflow(_article_graph(work_dir / "fit"))
    with dask_progress("fit customer features"):
        customer_workflow.fit(prepared)
    with dask_progress("fit article features"):
        article_workflow.fit(prepared)
    recent_sales.save(work_dir / RecentSales.FILE)
    # Saving copies the category tables next to each workflow and points them there.
    customer_workflow.save(str(work_dir / "customers"))
    article_workflow.save(str(work_dir / "articles"))
    return FittedFeatures.load(work_dir)


def fit_features(train: pd.DataFrame, cutoff: pd.Timestamp, work_dir: Path) -> FittedFeatures:
    """`fit_workflows` for training rows held in memory (tests, `bench/train.py`), their
    recent articles computed from the rows themselves (`with_recent_articles`).

    `cutoff` is the first day after training (rows must be before it); `work_dir` (fresh
    per run) holds the fitted category tables, the sales counts and the saved workflows.
    """
    import merlin.io

    if (pd.to_datetime(train["t_dat"]) >= pd.Timestamp(cutoff)).any():
        raise ValueError(f"training rows must all be before the cutoff {cutoff}")
    recent_sales = RecentSales.from_rows(train, cutoff)
    train = with_recent_articles(train)
    prepared = merlin.io.Dataset(prepare_interactions(train, recent_sales).to_pandas())
    return fit_workflows(prepared, recent_sales, work_dir)


def _customer_graph(out_path: Path):
    from merlin.schema import Tags
    from nvtabular import ops

    customer_id = ["customer_id"] >> ops.Categorify(out_path=str(out_path)) >> ops.TagAsUserID()
    profile = (
        list(CUSTOMER_CATEGORICALS[1:])
        >> ops.Categorify(out_path=str(out_path))
        >> ops.TagAsUserFeatures()
    )
    # Joint: recent_1 and recent_4 holding the same article get the same code, and the
    # model one embedding table for the slots (one table per Categorify domain).
    recent = (
        [list(RECENT_COLUMNS)]
        >> ops.Categorify(encode_type="joint", out_path=str(out_path))
        >> ops.TagAsUserFeatures()
    )
    month = (
        ["month"]
        >> ops.Categorify(out_path=str(out_path))
        >> ops.AddTags([Tags.USER, Tags.CONTEXT, Tags.CATEGORICAL])
    )
    return customer_id + profile + recent + month


def _article_graph(out_path: Path):
    from nvtabular import ops

    article_id = ["article_id"] >> ops.Categorify(out_path=str(out_path)) >> ops.TagAsItemID()
    codes = (
        [*ARTICLE_CODE_COLUMNS, RECENT_SALES_FEATURE]
        >> ops.Categorify(out_path=str(out_path))
        >> ops.TagAsItemFeatures()
    )
    price = (
        ["article_id"]
        >> ops.JoinGroupby(cont_cols=["price"], stats=["mean"], out_path=str(out_path))
        >> ops.FillMissing(fill_val=UNKNOWN_LOG_PRICE)
        >> ops.TagAsItemFeatures()
    )
    return article_id + codes + price


def _as_text(values: pd.Series) -> np.ndarray:
    """Values as strings ("unknown" for missing), the same whether codes arrive as int64,
    nullable Int64 or float, and text as str objects or a categorical.

    Each distinct value is turned into text once (factorize, then take): the columns
    have a few to a few hundred thousand distinct values over millions of rows, and the
    service prepares one row at a time (where pandas' string conversion cost 5x this).
    """
    if pd.api.types.is_numeric_dtype(values):
        values = values.astype("Int64")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = np.array([*map(str, uniques), "unknown"], dtype=object)
    return text[codes]  # code -1 (missing) takes the last entry


def _as_ids(values: pd.Series) -> np.ndarray:
    """Ids as an array of str (already str when they come from the engine)."""
    if values.dtype == object:
        return values.to_numpy()
    return values.astype(str).to_numpy(dtype=object)


def _part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def _transform(workflow, frame: pd.DataFrame) -> pd.DataFrame:
    out = workflow.transform(frame.reset_index(drop=True))
    return out.reset_index(drop=True)
