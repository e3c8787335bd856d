"""The training pipeline as of a day, in the flow's stages: rows, features, model, catalogue.

The flow runs the stages as separate steps (`get_dataset`, `build_workflow`, `train`);
the backtest runs the same stages in one go for each of its weeks (`train_as_of`). Both
cut the rows the same way: filtered_dataframe_t with the engine's training settings
moved to the day (everything before it), from `since` on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.strategy.inputs import CandidateRule, Candidates, week_purchases
from recsys.train import dataset, ranker, towers
from recsys.train.dataset import TrainingParts
from recsys.train.features import FittedFeatures, RecentSales, fit_workflows

WORKFLOWS = "workflows"
RANKER_WEEKS = "ranker-weeks"  # a branch's (or a backtest week's) weeks for the ranker


@dataclass(frozen=True)
class RowSettings:
    """How the training rows are cut from the views (the same for every week)."""

    min_purchases: int
    part_rows: int
    sample_fraction: float


@dataclass(frozen=True)
class Encoded:
    """The encoded training parts (per order) and what training needs besides them."""

    parts: list[list[Path]]
    item_frequencies: np.ndarray


def training_rows(
    engine, day: date, since: date | None, rows: RowSettings, orders: int, work: Path
) -> tuple[TrainingParts, RecentSales]:
    """filtered_dataframe_t before `day` (from `since` on) into prepared Parquet parts in
    `orders` orders (one per epoch), with the articles' sales as of `day`."""
    engine.set_training_settings(min_purchases=rows.min_purchases, cutoff=day)
    sales = dataset.recent_sales(engine, day)
    parts = dataset.write_training_parts(
        engine,
        sales,
        work / "prepared",
        rows.part_rows,
        rows.sample_fraction,
        orders=orders,
        since=since,
    )
    return parts, sales


def encode(parts: TrainingParts, sales: RecentSales, work: Path) -> Encoded:
    """Fit NVTabular on the first order's parts only; encode every order part by part."""
    import merlin.io

    features = fit_workflows(parts.dataset(0), sales, work / WORKFLOWS)
    encoded = [
        features.encode(parts.dataset(order), work / f"encoded-{order}")
        for order in range(len(parts.orders))
    ]
    first = merlin.io.Dataset([str(p) for p in encoded[0]], engine="parquet")
    return Encoded(encoded, features.item_frequencies(first))


def fitted_features(work: Path) -> FittedFeatures:
    """The workflows `encode` fitted, read back from disk. Encoding ran both workflows as
    one graph, which rewires the customer workflow's inputs in memory: every later use
    reads them back."""
    return FittedFeatures.load(work / WORKFLOWS)


def catalogue(
    model, features: FittedFeatures, articles: pd.DataFrame, sales: RecentSales | None = None
) -> Candidates:
    """Every article's embedding, with its sales as of `sales`' day (default: the
    training cutoff's), ready to rank."""
    fitted = features if sales is None else features.as_of(sales)
    vectors = towers.embed(model.candidate_encoder, fitted.articles(articles), features.schema)
    return Candidates(vectors, articles["article_id"].to_numpy())


def embed_ranker_weeks(
    engine, model, features: FittedFeatures, articles: pd.DataFrame, day: date, weeks: int,
    folder: Path,
) -> None:  # fmt: skip
    """The ranker's weeks as of `day` (`ranker.week_starts`) into `folder`, each as of its
    first day: its buyers' query embeddings, the catalogue's embeddings and its purchases."""
    from recsys.train.embed import write_query_embeddings

    folder.mkdir(parents=True, exist_ok=True)
    for start in ranker.week_starts(day, weeks):
        week = ranker.Week(start, folder)
        purchases = week_purchases(engine, start, start + ranker.WEEK)
        purchases.to_parquet(week.purchases, index=False)
        buyers = ranker.sampled_buyers(purchases)
        write_query_embeddings(engine, features, model.query_encoder, start, week.queries, buyers)
        sales = dataset.recent_sales(engine, start)
        np.save(week.vectors, catalogue(model, features, articles, sales).vectors)


def train_ranker(
    engine, day: date, weeks: int, folder: Path, article_ids: np.ndarray, known: pd.Index,
    rule: CandidateRule,
) -> dict[str, ranker.Fitted]:  # fmt: skip
    """The rankers as of `day`: trained on the `weeks` weeks before the week before `day`,
    stopped on that week (the weeks `embed_ranker_weeks` wrote into `folder`)."""
    weeks_as_of = [ranker.Week(start, folder) for start in ranker.week_starts(day, weeks)]
    return ranker.train(engine, weeks_as_of, article_ids, known, rule)


@dataclass(frozen=True)
class Trained:
    """A model trained on everything before a day, the catalogue as of that day, and the
    rankers trained on the weeks before it."""

    model: object
    features: FittedFeatures
    catalogue: Candidates
    rankers: dict[str, ranker.Fitted]

    @property
    def ranker_models(self) -> dict:
        return {name: fitted.model for name, fitted in self.rankers.items()}


def train_as_of(
    engine,
    day: date,
    since: date | None,
    rows: RowSettings,
    params: towers.HyperParameters,
    articles: pd.DataFrame,
    ranker_weeks: int,
    rule: CandidateRule,
    work: Path,
) -> Trained:
    """Every stage for one day in a row: what the flow's training steps do (the backtest)."""
    parts, sales = training_rows(engine, day, since, rows, params.epochs, work)
    encoded = encode(parts, sales, work)
    features = fitted_features(work)
    model = towers.train(encoded.parts, features.schema, encoded.item_frequencies, params).model
    folder, ids = work / RANKER_WEEKS, articles["article_id"].to_numpy()
    embed_ranker_weeks(engine, model, features, articles, day, ranker_weeks, folder)
    fitted = train_ranker(engine, day, ranker_weeks, folder, ids, features.known_customers, rule)
    return Trained(model, features, catalogue(model, features, articles), fitted)


class Branch:
    """What one trained grid point leaves on disk for evaluation and prediction: the
    catalogue's embeddings as of the validation and test starts, the customers' query
    embeddings per split, and the query tower."""

    AS_OF = {"validation": "validation", "test": "test", "predict": "test"}  # catalogue's day

    def __init__(self, path: Path, article_ids: np.ndarray) -> None:
        self.path, self.article_ids = Path(path), article_ids

    def queries(self, split: str) -> Path:
        return self.path / f"{split}.parquet"

    def catalogue(self, split: str) -> Candidates:
        """The articles as of the split's start (predictions: the test start)."""
        vectors = np.load(self.path / f"articles-{self.AS_OF[split]}.npy")
        return Candidates(vectors, self.article_ids)

    @property
    def query_tower(self) -> Path:
        return self.path / "query_tower"

    def write(
        self,
        engine,
        model,
        features: FittedFeatures,
        articles: pd.DataFrame,
        test_sales: RecentSales,
        days: dict[str, date],
        customers: dict[str, np.ndarray | None],
    ) -> None:
        """Embed the catalogue as of validation (the training cutoff) and test, and each
        split's `customers` (None: everyone) as of its day; save the query tower."""
        from recsys.train.embed import write_query_embeddings

        self.path.mkdir(parents=True, exist_ok=True)
        for split, sales in (("validation", None), ("test", test_sales)):
            vectors = catalogue(model, features, articles, sales).vectors
            np.save(self.path / f"articles-{split}.npy", vectors)
        for split, ids in customers.items():
            write_query_embeddings(
                engine,
                features,
                model.query_encoder,
                days[f"{split}_start"],
                self.queries(split),
                ids,
            )
        towers.save_encoder(model.query_encoder, self.query_tower)
