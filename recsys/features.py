"""Features of the two towers: stateless derivations in pandas, fitted statistics in NVTabular.

Two workflows, one per tower, so the catalogue (articles only) and the customer table
(customers only) can each be encoded without inventing columns for the other tower:

- customers: customer id, age bucket, club status, news frequency, FN, Active, postal
  code (hashed to a bounded number of buckets) and the purchase month (context);
- articles: article id, the article codes, and the mean price over *training* rows.

Both are fitted on the training split only. Ids unseen at fit time are encoded as
Categorify's out-of-vocabulary index (2), never an error.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd

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
)
PRICE_FEATURE = "article_id_price_mean"
OOV_INDEX = 2  # Categorify: 0 padding, 1 null, 2 out-of-vocabulary, 3.. the vocabulary


@dataclass
class FittedFeatures:
    """The two fitted workflows; `customers`/`articles` transform raw frames into model inputs."""

    customer_workflow: object  # nvtabular.Workflow
    article_workflow: object  # nvtabular.Workflow
    directory: Path  # where both are saved, with their category tables

    @property
    def schema(self):
        """The model's input schema: both towers' columns, with their tags."""
        return self.customer_workflow.output_schema + self.article_workflow.output_schema

    def customers(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Encode customer rows (prepared with `prepare_customers`)."""
        return _transform(self.customer_workflow, frame)

    def articles(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Encode article rows (prepared with `prepare_articles`)."""
        return _transform(self.article_workflow, frame)

    def interactions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Encode transaction rows: both towers' columns side by side."""
        customers = self.customers(prepare_customers(frame, frame["t_dat"]))
        articles = self.articles(prepare_articles(frame))
        return pd.concat([customers, articles], axis=1)

    def item_frequencies(self, encoded: pd.DataFrame) -> np.ndarray:
        """Purchases per encoded article id over `encoded` rows, sized to the id vocabulary.

        The logQ correction divides each logit by how often the article shows up as an
        in-batch negative; +1 keeps never-seen ids (padding, OOV) from log(0).
        """
        cardinality = self.article_workflow.output_schema["article_id"].int_domain.max + 1
        return np.bincount(encoded["article_id"].to_numpy(), minlength=cardinality) + 1.0

    def to_bytes(self) -> bytes:
        """The saved workflows as one tar archive, so Metaflow can carry them between steps."""
        buffer = BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(self.directory, arcname="workflows")
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes, into: Path) -> FittedFeatures:
        """Unpack `to_bytes` output under `into` (which must outlive the returned object)."""
        with tarfile.open(fileobj=BytesIO(blob), mode="r:gz") as tar:
            tar.extractall(into, filter="data")
        return cls.load(into / "workflows")

    @classmethod
    def load(cls, directory: Path) -> FittedFeatures:
        import nvtabular as nvt

        return cls(
            customer_workflow=nvt.Workflow.load(str(directory / "customers")),
            article_workflow=nvt.Workflow.load(str(directory / "articles")),
            directory=directory,
        )


def prepare_customers(frame: pd.DataFrame, when: pd.Series | pd.Timestamp) -> pd.DataFrame:
    """Customer columns plus the stateless derivations: age bucket and month of `when`."""
    out = pd.DataFrame({"customer_id": frame["customer_id"].astype(str).to_numpy()})
    ages = pd.to_numeric(frame["age"], errors="coerce").to_numpy()
    buckets = pd.cut(ages, bins=list(AGE_BOUNDARIES), right=False, labels=False)
    out["age_bucket"] = pd.Series(buckets).map(lambda b: "unknown" if pd.isna(b) else str(int(b)))
    for column in ("club_member_status", "fashion_news_frequency"):
        out[column] = frame[column].fillna("unknown").astype(str).to_numpy()
    for column in ("FN", "Active"):
        flags = pd.to_numeric(frame[column], errors="coerce").fillna(0)
        out[column] = flags.astype(int).astype(str).to_numpy()
    out["postal_code"] = frame["postal_code"].fillna("unknown").astype(str).to_numpy()
    if isinstance(when, pd.Series):
        out["month"] = pd.to_datetime(when).dt.month.astype(str).to_numpy()
    else:
        out["month"] = str(pd.Timestamp(when).month)
    return out


def prepare_articles(frame: pd.DataFrame) -> pd.DataFrame:
    """Article id, codes as strings, and the row's price (NaN for catalogue rows)."""
    out = pd.DataFrame({"article_id": frame["article_id"].astype(str).to_numpy()})
    for column in ARTICLE_CODE_COLUMNS:
        out[column] = _as_text(frame[column])
    price = frame["price"] if "price" in frame else pd.Series(np.nan, index=frame.index)
    out["price"] = price.astype("float64").to_numpy()
    return out


def fit_features(train: pd.DataFrame, work_dir: Path) -> FittedFeatures:
    """Fit both workflows on the training rows only (vocabularies and price statistics).

    `work_dir` (fresh per run) holds the fitted category tables and saved workflows.
    """
    import merlin.io
    import nvtabular as nvt

    customer_workflow = nvt.Workflow(_customer_graph(work_dir / "fit"))
    article_workflow = nvt.Workflow(_article_graph(work_dir / "fit"))
    customer_workflow.fit(merlin.io.Dataset(prepare_customers(train, train["t_dat"])))
    article_workflow.fit(merlin.io.Dataset(prepare_articles(train)))
    # Saving copies the category tables next to each workflow and points them there.
    customer_workflow.save(str(work_dir / "customers"))
    article_workflow.save(str(work_dir / "articles"))
    return FittedFeatures.load(work_dir)


def _customer_graph(out_path: Path):
    from merlin.schema import Tags
    from nvtabular import ops

    customer_id = ["customer_id"] >> ops.Categorify(out_path=str(out_path)) >> ops.TagAsUserID()
    profile = (
        list(CUSTOMER_CATEGORICALS[1:])
        >> ops.Categorify(out_path=str(out_path))
        >> ops.TagAsUserFeatures()
    )
    postal = ["postal_code"] >> ops.HashBucket(POSTAL_CODE_BUCKETS) >> ops.TagAsUserFeatures()
    month = (
        ["month"]
        >> ops.Categorify(out_path=str(out_path))
        >> ops.AddTags([Tags.USER, Tags.CONTEXT, Tags.CATEGORICAL])
    )
    return customer_id + profile + postal + month


def _article_graph(out_path: Path):
    from nvtabular import ops

    article_id = ["article_id"] >> ops.Categorify(out_path=str(out_path)) >> ops.TagAsItemID()
    codes = (
        list(ARTICLE_CODE_COLUMNS)
        >> ops.Categorify(out_path=str(out_path))
        >> ops.TagAsItemFeatures()
    )
    price = (
        ["article_id"]
        >> ops.JoinGroupby(cont_cols=["price"], stats=["mean"], out_path=str(out_path))
        >> ops.FillMedian()
        >> ops.Normalize()
        >> ops.TagAsItemFeatures()
    )
    return article_id + codes + price


def _as_text(values: pd.Series) -> np.ndarray:
    """Codes as strings, the same whether they arrive as int64, nullable Int64 or float."""
    if pd.api.types.is_numeric_dtype(values):
        values = values.astype("Int64")
    return values.astype("string").fillna("unknown").to_numpy(dtype=object)


def _transform(workflow, frame: pd.DataFrame) -> pd.DataFrame:
    out = workflow.transform(frame.reset_index(drop=True))
    return out.reset_index(drop=True)
