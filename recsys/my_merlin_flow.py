"""MyMerlinFlow: train Merlin two-tower models on filtered_dataframe_t, evaluate honestly, export.

    python recsys/my_merlin_flow.py show                      # the steps
    python recsys/my_merlin_flow.py run --max-workers 2       # train (see docs/training.md)

start -> get_dataset -> build_workflow -> train (foreach grid point) -> join
      -> evaluate -> backtest (--backtest-weeks) -> predict -> export -> end

Splits (by date, defaults from the data): the last 7 days are the test week, the 7
days before are validation, everything earlier is training. The feature workflow is
fitted on training rows only; validation picks the hyperparameters; the test week is
touched once, in `evaluate`, for the model and both baselines alike.

Scale: nothing the size of the data is held in one frame or passed as an artifact.
The training rows go from the engine to Parquet parts (`recsys.train.dataset`), NVTabular
fits and encodes those parts (`recsys.train.features`), Merlin's Loader trains from the
encoded parts, and customers are embedded, scored and predicted in batches
(`recsys.evaluate.scoring`). Artifacts carry paths under OUTPUT_DIR/<run id>/ and small tables.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# `python recsys/my_merlin_flow.py` puts recsys/ (not the repo root) on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys.train.runtime import prepare_flow_process  # noqa: E402

prepare_flow_process()  # user name, --max-workers default, log levels: before Metaflow reads them

from metaflow import FlowSpec, Parameter, card, current, step  # noqa: E402
from metaflow.exception import MetaflowException  # noqa: E402

from recsys.settings import ConfigError, load_settings  # noqa: E402

SPLIT_DAYS = 7
MIN_TRAINING_ROWS = 100
EVALUATION_BATCH = 20_000  # customers scored at once: 2 M ranked rows per method
PROFILES = Path(__file__).resolve().parent / "train" / "profiles.toml"
ENGINES = ("auto", "embedded", "risingwave")
ARTICLE_COLUMNS = (
    "article_id, prod_name, product_type_no, product_type_name, product_group_name, "
    "graphical_appearance_no, colour_group_code, colour_group_name, perceived_colour_value_id, "
    "department_no, index_code, section_no, garment_group_no, image_path"
)
SPLITS = ("validation", "test", "predict")  # whose query embeddings each branch writes
TEST_SALES_FILE = "recent_sales_test.parquet"  # articles' recent sales as of the test start


class FlowInputError(MetaflowException):
    """Bad input or settings: the message says what is wrong and what to do."""

    headline = "Cannot train with this input"


class MyMerlinFlow(FlowSpec):
    """Two-tower retrieval for H&M: grid search on validation, honest test, predictions for all."""

    engine = Parameter(
        "engine",
        default="auto",
        help="Where filtered_dataframe_t is read: auto (RisingWave "
        "when RISINGWAVE_URL is set, else the embedded DuckDB file), embedded or risingwave.",
    )
    test_start = Parameter(
        "test-start",
        default="",
        help="First day of the test week, YYYY-MM-DD. Default: the "
        "last 7 days of data are the test week.",
    )
    validation_start = Parameter(
        "validation-start",
        default="",
        help="First day of the validation week, YYYY-MM-DD. "
        "Default: 7 days before the test week. Everything earlier is training.",
    )
    min_purchases = Parameter(
        "min-purchases",
        default=2,
        type=int,
        help="Train on customers with at least this "
        "many purchases before the validation week (applied in filtered_dataframe_t).",
    )
    learning_rates = Parameter(
        "learning-rates",
        default="",
        help="Comma-separated learning rates (grid). Default: the data-size profile's "
        "(recsys/train/profiles.toml: 0.01,0.003 for demo-sized data, 0.01 for the full H&M data).",
    )
    batch_sizes = Parameter(
        "batch-sizes",
        default="",
        help="Comma-separated batch sizes (grid). Larger batches give more in-batch negatives "
        "but cost O(batch^2) per step: 4096 trains 3x slower than 1024 on CPU. Default: the "
        "data-size profile's (512,1024 for demo-sized data, 1024 for the full data).",
    )
    epochs = Parameter(
        "epochs",
        default=0,
        type=int,
        help="Training epochs per grid point. Default (0): the data-size profile's "
        "(3 for demo-sized data, 1 for the full data).",
    )
    train_weeks = Parameter(
        "train-weeks",
        default=-1,
        type=int,
        help="Train on the last N weeks before the validation week; 0: every week. Default "
        "(-1): the data-size profile's (all weeks for demo-sized data, 12 for the full data).",
    )
    candidate_days = Parameter(
        "candidate-days",
        default=-1,
        type=int,
        help="The model recommends only articles someone bought in the N days before the "
        "list's date; 0: the whole catalogue. Default (-1): the data-size profile's.",
    )
    candidate_min_purchases = Parameter(
        "candidate-min-purchases",
        default=0,
        type=int,
        help="...and only those bought at least this many times in those days. Default (0): "
        "the data-size profile's.",
    )
    backtest_weeks = Parameter(
        "backtest-weeks",
        default=0,
        type=int,
        help="After the test week: refit the chosen configuration and score every method on "
        "each of the last N weeks (the test week last), with 95% bootstrap intervals "
        "(recsys/evaluate/backtest.py). 0: no backtest. Each week costs about one more "
        "training run.",
    )
    embedding_dim = Parameter(
        "embedding-dim", default=64, type=int, help="Size of the customer/article embeddings."
    )
    top_k = Parameter("top-k", default=12, type=int, help="Recommendations per customer (MAP@k).")
    sample_fraction = Parameter(
        "sample-fraction",
        default=1.0,
        type=float,
        help="Share of training rows to use, "
        "in (0, 1]; below 1 for quick experiments on large data.",
    )
    part_rows = Parameter(
        "part-rows",
        default=500_000,
        type=int,
        help="Training rows per Parquet part: what the feature, encoding and training steps "
        "hold in memory at a time (results do not depend on it).",
    )
    output_dir = Parameter(
        "output-dir",
        default="",
        help="Where OUTPUT_DIR/<run id>/ is written (default: the OUTPUT_DIR setting).",
    )
    gpu = Parameter(
        "gpu",
        default=True,
        type=bool,
        help="Train on a GPU when TensorFlow sees one (--gpu False forces the CPU).",
    )

    @step
    def start(self):
        """Check parameters and data, pick the profile and the split dates, load data if needed."""
        from recsys.evaluate.scoring import CandidateRule

        self.settings_shown = _settings().masked()
        print("settings:", json.dumps(self.settings_shown, indent=1))
        _check_parameters(
            self.top_k,
            self.sample_fraction,
            self.min_purchases,
            self.engine,
            self.part_rows,
            self.train_weeks,
            self.candidate_days,
            self.candidate_min_purchases,
            self.backtest_weeks,
        )
        self.export_dir = str(_output_root(self.output_dir) / current.run_id)
        with _open_engine(self.engine) as eng:
            self.engine_kind = eng.kind
            purchases = _ensure_data(eng)
            first, last = _date_range(eng)
        _check_images()
        self.profile = _profile(purchases)
        self.grid = _grid(
            self.learning_rates or self.profile["learning_rates"],
            self.batch_sizes or self.profile["batch_sizes"],
            self.epochs or self.profile["epochs"],
            self.embedding_dim,
        )
        weeks = self.train_weeks if self.train_weeks >= 0 else self.profile["train_weeks"]
        self.candidate_rule = CandidateRule(
            self.candidate_days if self.candidate_days >= 0 else self.profile["candidate_days"],
            self.candidate_min_purchases or self.profile["candidate_min_purchases"],
        )
        print(
            f"profile: {self.profile['name']} ({purchases:,} purchases, up to "
            f"{self.profile['max_purchases']:,}): learning rates {self.profile['learning_rates']}"
            f", batch sizes {self.profile['batch_sizes']}, {self.profile['epochs']} epoch(s), "
            f"training weeks {self.profile['train_weeks'] or 'all'} unless given on the "
            "command line (recsys/train/profiles.toml says why)"
        )
        print(f"the model recommends {self.candidate_rule.describe()}")
        self.dates = _split_dates(first, last, self.validation_start, self.test_start, weeks)
        self.train_weeks_used = weeks
        _check_backtest(self.backtest_weeks, self.dates)
        print("splits:", json.dumps({k: v.isoformat() for k, v in self.dates.items()}))
        print(f"grid: {len(self.grid)} points: {self.grid}")
        self.next(self.get_dataset)

    @step
    def get_dataset(self):
        """Training rows from filtered_dataframe_t (cutoff and N applied in the view) into
        Parquet parts; the validation and test weeks' purchases; the catalogue."""
        from recsys.evaluate import scoring
        from recsys.train import dataset

        validation_start, test_start = self.dates["validation_start"], self.dates["test_start"]
        work = self._work_dir()
        with _open_engine(self.engine) as eng:
            eng.set_training_settings(min_purchases=self.min_purchases, cutoff=validation_start)
            sales = dataset.recent_sales(eng, validation_start)
            parts = dataset.write_training_parts(
                eng,
                sales,
                work / "prepared",
                self.part_rows,
                self.sample_fraction,
                orders=max(point["epochs"] for point in self.grid),  # a new order each epoch
                since=self.dates["train_start"],
            )
            test_sales = dataset.recent_sales(eng, test_start)
            validation = scoring.week_purchases(eng, validation_start, test_start)
            test = scoring.week_purchases(eng, test_start, self.dates["end"] + timedelta(days=1))
            self.articles = eng.query(f"SELECT {ARTICLE_COLUMNS} FROM articles_metadata_t")
        self.rows = {"train": parts.rows, "validation": len(validation), "test": len(test)}
        print(
            "rows per split:",
            self.rows,
            f"in {len(parts.orders[0])} part(s), {len(parts.orders)} order(s)",
        )
        _check_splits(self.rows, self.min_purchases, self.dates)
        work.mkdir(parents=True, exist_ok=True)
        sales.save(work / sales.FILE)
        test_sales.save(work / TEST_SALES_FILE)
        self.prepared_parts = [[str(p) for p in order] for order in parts.orders]
        if self.articles.empty:
            raise FlowInputError("articles_metadata_t is empty: load articles.csv into the engine.")
        self.validation_actuals, self.test_actuals = validation, test
        self.next(self.build_workflow)

    @step
    def build_workflow(self):
        """Fit NVTabular on the training parts only; encode them part by part, and the catalogue."""
        import merlin.io

        from recsys.train.dataset import TrainingParts
        from recsys.train.features import RecentSales, fit_workflows

        work = self._work_dir()
        orders = [[Path(p) for p in order] for order in self.prepared_parts]
        prepared = TrainingParts(orders, self.rows["train"])
        sales = RecentSales.load(work / RecentSales.FILE)
        features = fit_workflows(prepared.dataset(0), sales, work / "workflows")
        self.encoded_parts = [
            [str(p) for p in features.encode(prepared.dataset(order), work / f"encoded-{order}")]
            for order in range(len(orders))
        ]
        self.item_frequencies = features.item_frequencies(
            merlin.io.Dataset(self.encoded_parts[0], engine="parquet")
        )
        self.encoded_articles = features.articles(self.articles)
        self.known_customers = len(features.known_customers)
        print(
            f"encoded {self.rows['train']:,} training rows into {len(self.encoded_parts[0])} "
            f"part(s) x {len(self.encoded_parts)} order(s); "
            f"{len(self.encoded_articles):,} articles; {self.known_customers:,} known customers"
        )
        self.next(self.train, foreach="grid")

    @step
    def train(self):
        """One grid point: train, embed the catalogue and the customers, score validation."""
        import numpy as np

        from recsys.evaluate import scoring
        from recsys.evaluate.metrics import Scoreboard
        from recsys.train import towers
        from recsys.train.features import RecentSales
        from recsys.train.tracking import start_experiment

        if not self.gpu:
            os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        params = towers.HyperParameters(**self.input)
        experiment = start_experiment(
            _settings(),
            f"{current.run_id}-lr{params.learning_rate}-bs{params.batch_size}",
            [
                f"metaflow_run:{current.run_id}",
                f"step:{current.step_name}",
                f"task:{current.task_id}",
                current.flow_name,
            ],
            self._comet_dir(),
        )
        features = self._features()  # after Comet: it wants to be imported before TensorFlow
        experiment.log_parameters(
            {
                **self.input,
                "min_purchases": self.min_purchases,
                "metaflow_run": current.run_id,
                "top_k": self.top_k,
            }
        )
        result = towers.train(
            [[Path(p) for p in order] for order in self.encoded_parts],
            features.schema,
            self.item_frequencies,
            params,
            on_epoch_end=lambda epoch, logs: experiment.log_metrics(
                logs, prefix="train", epoch=epoch + 1, step=epoch + 1
            ),
        )
        self.device, self.history = result.device, result.history
        self.seconds_per_epoch = result.seconds_per_epoch
        self.examples_per_second = result.examples_per_second
        print(f"trained {params} on {self.device}: {self.examples_per_second:,.0f} examples/s")

        branch = self._work_dir() / f"branch-{current.task_id}"
        branch.mkdir(parents=True, exist_ok=True)
        test_sales = RecentSales.load(self._work_dir() / TEST_SALES_FILE)
        for split, encoded in (
            ("validation", self.encoded_articles),
            ("test", features.as_of(test_sales).articles(self.articles)),
        ):
            vectors = towers.embed(result.model.candidate_encoder, encoded, features.schema)
            np.save(branch / f"articles-{split}.npy", vectors)
        with _open_engine(self.engine, read_only=True) as eng:
            for split, ids in self._split_customers().items():
                scoring.write_query_embeddings(
                    eng,
                    features,
                    result.model.query_encoder,
                    self.dates[f"{split}_start"],
                    branch / f"{split}.parquet",
                    ids,
                )
            articles, article_ids = self._catalogue(eng, "validation", branch)
        sold = set(self.validation_actuals["article_id"])
        board = Scoreboard(len(self.articles), features.known_customers, sold)
        for ids, queries in scoring.read_query_embeddings(branch / "validation.parquet"):
            recs = towers.recommend(queries, articles, ids, article_ids, scoring.RANKING_DEPTH)
            board.add("two_tower", recs, _of(self.validation_actuals, ids))
        self.validation = board.summary("two_tower")
        print("validation:", self.validation)
        experiment.log_other("device", self.device)
        experiment.log_metrics({"examples_per_second": self.examples_per_second})
        experiment.log_metrics(self.validation, prefix="validation")
        experiment.end()
        towers.save_encoder(result.model.query_encoder, branch / "query_tower")
        self.branch_dir, self.params = str(branch), self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        """Keep the branch with the best validation MAP@12 (recall@12 breaks ties)."""
        best = max(inputs, key=lambda b: (b.validation["map@12"], b.validation["recall@12"]))
        self.grid_results = [
            {
                **b.params,
                **{f"validation_{k}": v for k, v in b.validation.items()},
                "device": b.device,
                "examples_per_second": b.examples_per_second,
                "history": b.history,
            }
            for b in inputs
        ]
        for row in self.grid_results:
            print({k: v for k, v in row.items() if k != "history"})
        self.merge_artifacts(
            inputs,
            include=[
                "dates",
                "rows",
                "export_dir",
                "engine_kind",
                "articles",
                "validation_actuals",
                "test_actuals",
                "settings_shown",
                "profile",
                "known_customers",
                "train_weeks_used",
                "candidate_rule",
            ],
        )
        self.best_params, self.device, self.best_dir = best.params, best.device, best.branch_dir
        self.best_validation = best.validation
        print("best:", self.best_params, "validation", self.best_validation)
        self.next(self.evaluate)

    @card(type="blank", id="evaluation")
    @step
    def evaluate(self):
        """Test week, whole catalogue: the model, both baselines and the hybrid, same customers.

        What is served is decided on the validation week only: for warm customers the
        model alone or the hybrid (their recent purchases, then the model), for cold
        customers the better baseline. The test week only measures that choice, with
        every method's lists made as of the test start (the competition's protocol):
        history, popularity, recent sales and customer state include the validation
        week; the model is the one trained before it (docs/training.md says why).
        """
        from recsys.evaluate.scoring import MODEL_METHODS
        from recsys.strategy import baselines

        validation = self._score_split("validation")
        self.fallback = max(
            baselines.BASELINES, key=lambda name: validation.summary(name)["map@12"]
        )
        self.warm_strategy = max(
            MODEL_METHODS, key=lambda name: validation.summary(name, "warm")["map@12"]
        )
        print(f"served: {self.warm_strategy} for warm customers, {self.fallback} for cold ones")
        test = self._score_split("test", served=True)
        self.metrics = test.metrics()
        self.differences = test.differences([*MODEL_METHODS, "served"], baselines.BASELINES)
        print(self.metrics.to_string(index=False))
        print("paired differences (method - baseline), 95% bootstrap intervals over customers:")
        print(self.differences.to_string(index=False))
        self._log_summary_to_comet()
        self._fill_card()
        self.next(self.backtest)

    @card(type="blank", id="backtest")
    @step
    def backtest(self):
        """With --backtest-weeks N: the chosen configuration refitted and scored on each of
        the last N weeks, lists as of each week's start (recsys/evaluate/backtest.py)."""
        self.backtest_metrics = self.backtest_differences = None
        if not self.backtest_weeks:
            print("no backtest (--backtest-weeks 0)")
            self.next(self.predict)
            return
        from metaflow.cards import Markdown, Table

        from recsys.evaluate import backtest, scoring
        from recsys.train import towers

        setup = backtest.Setup(
            towers.HyperParameters(**self.best_params),
            scoring.Served(self.warm_strategy, self.fallback),
            self.min_purchases,
            self.train_weeks_used,
            self.candidate_rule,
            self.part_rows,
            self.sample_fraction,
        )
        starts = backtest.week_starts(self.dates["test_start"], self.backtest_weeks)
        with _open_engine(self.engine) as eng:
            try:
                self.backtest_metrics, self.backtest_differences = backtest.run(
                    eng, setup, starts, self.articles, self._work_dir() / "backtest"
                )
            finally:  # the views show the training rows again, as after get_dataset
                eng.set_training_settings(self.min_purchases, self.dates["validation_start"])
        shown = self.backtest_metrics[self.backtest_metrics["segment"] == "all"]
        print(shown.drop(columns="segment").to_string(index=False))
        print(self.backtest_differences.to_string(index=False))
        current.card["backtest"].append(
            Markdown(
                f"# Backtest: the last {self.backtest_weeks} weeks\n"
                "Each week: the chosen configuration trained on everything before it, lists "
                "as of its start; 95% bootstrap intervals over customers (`pooled`: every "
                "week's customers together)."
            )
        )
        current.card["backtest"].append(Table.from_dataframe(shown.round(4)))
        current.card["backtest"].append(Table.from_dataframe(self.backtest_differences.round(4)))
        self.next(self.predict)

    @step
    def predict(self):
        """Top-k for every customer, in batches: the model's choice where it knows them, else
        the fallback; written with the customer embeddings to the run's folder."""
        import numpy as np
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        from recsys.evaluate import scoring
        from recsys.progress import Progress
        from recsys.strategy import baselines
        from recsys.train import towers

        out = Path(self.export_dir)
        with _open_engine(self.engine, read_only=True) as eng:  # history up to the test week
            cutoff = self.dates["predict_start"]
            popular = baselines.popular_articles(eng, cutoff, self.top_k)
            recent = baselines.recent_purchases(eng, cutoff)
            articles, article_ids = self._catalogue(eng, "predict")
        known = self._features().known_customers
        writers: dict[str, pq.ParquetWriter] = {}
        counts = {"model": 0, "fallback": 0}
        progress = Progress("predict", None, unit="customers")
        for ids, queries in scoring.read_query_embeddings(Path(self.best_dir) / "predict.parquet"):
            warm = pd.Index(ids).isin(known)  # hashed: np.isin compares objects pairwise
            model = towers.recommend(queries[warm], articles, ids[warm], article_ids, self.top_k)
            if self.warm_strategy == "two_tower":
                model = model.assign(source="model")
            else:
                model = _hybrid_with_scores(ids[warm], recent, model, self.top_k)
            fallback = baselines.baseline_recommendations(
                self.fallback, ids[~warm], recent, popular
            ).assign(score=np.nan, source=self.fallback)
            batch = pd.concat([model, fallback], ignore_index=True)[
                ["customer_id", "rank", "article_id", "score", "source"]
            ]
            _append(
                writers,
                out / "predictions.parquet",
                pa.Table.from_pandas(batch, preserve_index=False),
            )
            _append(
                writers,
                out / "customer_embeddings.parquet",
                scoring.embedding_table("customer_id", ids, queries, warm=pa.array(warm)),
            )
            counts["model"] += int(warm.sum())
            counts["fallback"] += int((~warm).sum())
            progress.advance(len(ids))
        progress.finish()
        for writer in writers.values():
            writer.close()
        self.predicted = counts
        print(
            f"predictions for {sum(counts.values()):,} customers: {counts['model']:,} by "
            f"{self.warm_strategy}, {counts['fallback']:,} by the {self.fallback} baseline"
        )
        self.next(self.export)

    @step
    def export(self):
        """Write the rest of OUTPUT_DIR/<run id>/ for the app and users' code (ARCHITECTURE.md)."""
        if not _settings().export_to_app:
            print(
                "EXPORT_TO_APP is off: only predictions and customer embeddings are in "
                f"{self.export_dir}"
            )
            self.next(self.end)
            return
        out = Path(self.export_dir)
        self._write_files(out)
        print(f"exported to {out}")
        self.next(self.end)

    @step
    def end(self):
        """Say where everything is; remove the run's scratch data (Parquet parts, branches)."""
        from recsys.train.tracking import upload_hint

        shutil.rmtree(self._work_dir(), ignore_errors=True)
        print(self.metrics.to_string(index=False))
        print(f"run {current.run_id}: export in {self.export_dir}")
        if not _settings().comet_api_key:
            print(upload_hint(self._comet_dir()))

    # --- helpers used by several steps -------------------------------------------------

    def _work_dir(self) -> Path:
        """Scratch data of this run (Parquet parts, branch outputs), removed by `end`."""
        return Path(self.export_dir) / "work"

    def _features(self):
        """The workflows fitted in build_workflow (they stay in the run's work folder)."""
        from recsys.train.features import FittedFeatures

        return FittedFeatures.load(self._work_dir() / "workflows")

    def _article_ids(self):
        return self.articles["article_id"].to_numpy()

    def _split_customers(self) -> dict:
        """Whose query embedding each split needs: the week's buyers, or everyone (None)."""
        return {
            "validation": self.validation_actuals["customer_id"].unique(),
            "test": self.test_actuals["customer_id"].unique(),
            "predict": None,
        }

    def _catalogue(self, eng, split: str, branch: Path | None = None):
        """(embeddings, ids) of the articles the model recommends from as of a split's start."""
        from recsys.evaluate import scoring

        return scoring.candidates(
            eng,
            self.dates[f"{split}_start"],
            self.candidate_rule,
            self._article_embeddings(split, branch),
            self._article_ids(),
        )

    def _article_embeddings(self, split: str, branch: Path | None = None):
        """The catalogue's embeddings as of a split's start (predict: the test start)."""
        import numpy as np

        as_of = "validation" if split == "validation" else "test"
        return np.load(Path(branch or self.best_dir) / f"articles-{as_of}.npy")

    def _score_split(self, split: str, served: bool = False):
        """Every method's metrics on one week (`scoring.score_week`), with what is served."""
        from recsys.evaluate import scoring

        with _open_engine(self.engine, read_only=True) as eng:
            return scoring.score_week(
                eng,
                self.dates[f"{split}_start"],
                Path(self.best_dir) / f"{split}.parquet",
                self._article_embeddings(split),
                self._article_ids(),
                getattr(self, f"{split}_actuals"),
                self._features().known_customers,
                scoring.Served(self.warm_strategy, self.fallback) if served else None,
                self.candidate_rule,
                EVALUATION_BATCH,
            )

    def _comet_dir(self) -> Path:
        return Path(self.export_dir) / "comet"

    def _log_summary_to_comet(self) -> None:
        from recsys.train.tracking import start_experiment

        experiment = start_experiment(
            _settings(),
            f"{current.run_id}-evaluation",
            [f"metaflow_run:{current.run_id}", f"step:{current.step_name}", current.flow_name],
            self._comet_dir(),
        )
        experiment.log_parameters(
            {
                **self.best_params,
                "fallback": self.fallback,
                "warm_strategy": self.warm_strategy,
                "metaflow_run": current.run_id,
            }
        )
        for row in self.metrics.to_dict("records"):
            values = {k: v for k, v in row.items() if k not in ("model", "segment") and v == v}
            experiment.log_metrics(values, prefix=f"test/{row['model']}/{row['segment']}")
        experiment.log_table("test_metrics.csv", tabular_data=self.metrics)
        experiment.end()

    def _fill_card(self) -> None:
        from metaflow.cards import Markdown, Table, VegaChart

        current.card["evaluation"].append(
            Markdown(
                f"# Test week {self.dates['test_start']} .. {self.dates['end']}\n"
                f"Best grid point: `{self.best_params}` on {self.device}. Served: "
                f"`{self.warm_strategy}` for warm customers, the `{self.fallback}` baseline for "
                "cold ones (both chosen on the validation week)."
            )
        )
        current.card["evaluation"].append(Table.from_dataframe(self.metrics.round(4)))
        current.card["evaluation"].append(
            Markdown(
                "## Paired differences, method minus baseline\n"
                "Same customers, 95% bootstrap intervals over customers: an interval above "
                "zero means the method beats that baseline on this week."
            )
        )
        current.card["evaluation"].append(Table.from_dataframe(self.differences.round(4)))
        shown = self.metrics[self.metrics["segment"] != "all"]
        current.card["evaluation"].append(VegaChart(_bar_chart(shown)))
        current.card["evaluation"].append(VegaChart(_curves_chart(self.grid_results)))

    def _write_files(self, out: Path) -> None:
        import faiss
        import numpy as np
        import pandas as pd
        import pyarrow.parquet as pq

        from recsys.evaluate.scoring import embedding_table

        best = Path(self.best_dir)
        self.metrics.to_parquet(out / "metrics.parquet", index=False)
        self.differences.to_parquet(out / "differences.parquet", index=False)
        if self.backtest_metrics is not None:
            self.backtest_metrics.to_parquet(out / "backtest.parquet", index=False)
            self.backtest_differences.to_parquet(out / "backtest_differences.parquet", index=False)
        self.test_actuals.to_parquet(out / "test_actuals.parquet", index=False)
        self.articles.to_parquet(out / "articles.parquet", index=False)
        articles = self._article_embeddings("predict")
        pq.write_table(
            embedding_table("article_id", self._article_ids(), articles),
            out / "article_embeddings.parquet",
        )
        index = faiss.IndexFlatIP(articles.shape[1])
        index.add(np.ascontiguousarray(articles))
        faiss.write_index(index, str(out / "article_index.faiss"))
        shutil.copytree(best / "query_tower", out / "query_tower", dirs_exist_ok=True)
        shutil.copytree(
            self._work_dir() / "workflows",
            out / "workflows",
            ignore=shutil.ignore_patterns("fit"),
            dirs_exist_ok=True,
        )
        pd.DataFrame(self.grid_results).drop(columns="history").to_parquet(
            out / "grid.parquet", index=False
        )
        info = {
            "run_id": current.run_id,
            "flow": current.flow_name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data_dir": self.settings_shown["data_dir"],
            "engine": self.engine_kind,
            "profile": self.profile["name"],
            "dates": {k: v.isoformat() for k, v in self.dates.items()},
            "rows": self.rows,
            "best_hyperparameters": self.best_params,
            "validation": self.best_validation,
            "fallback": self.fallback,
            "warm_strategy": self.warm_strategy,
            "device": self.device,
            "top_k": self.top_k,
            "candidate_days": self.candidate_rule.days,
            "candidate_min_purchases": self.candidate_rule.min_purchases,
        }
        (out / "run_info.json").write_text(json.dumps(info, indent=2, default=str))


# --- module-level helpers (no flow state) --------------------------------------------------


def _settings():
    try:
        return load_settings()
    except ConfigError as error:
        raise FlowInputError(str(error)) from None


def _open_engine(kind: str, read_only: bool = False):
    """The engine; read-only for steps that only read (grid branches run side by side,
    and DuckDB lets one process write a file at a time)."""
    from recsys.store.engine import EngineError, open_engine

    try:
        return open_engine(_settings(), read_only=read_only, kind=None if kind == "auto" else kind)
    except EngineError as error:
        raise FlowInputError(f"cannot open the {kind} engine: {error}") from None


def _output_root(parameter: str) -> Path:
    return Path(parameter).expanduser().resolve() if parameter else _settings().output_dir


def _grid(learning_rates: str, batch_sizes: str, epochs: int, embedding_dim: int) -> list[dict]:
    """Every (learning rate, batch size) pair, each checked before anything trains."""
    from recsys.train.towers import HyperParameters

    try:
        rates = [float(v) for v in str(learning_rates).split(",") if v.strip()]
        sizes = [int(v) for v in str(batch_sizes).split(",") if v.strip()]
    except ValueError:
        raise FlowInputError(
            f"--learning-rates {learning_rates!r} / --batch-sizes {batch_sizes!r}: expected "
            "comma-separated numbers, e.g. --learning-rates 0.01,0.003 --batch-sizes 1024,4096"
        ) from None
    if not rates or not sizes:
        raise FlowInputError("the grid is empty: give at least one learning rate and batch size")
    grid = [
        {
            "learning_rate": lr,
            "batch_size": bs,
            "epochs": int(epochs),
            "embedding_dim": int(embedding_dim),
        }
        for lr in rates
        for bs in sizes
    ]
    for point in grid:
        try:
            HyperParameters(**point).validate()
        except ValueError as error:
            raise FlowInputError(f"{error}; fix --learning-rates/--batch-sizes/--epochs") from None
    return grid


def _check_parameters(
    top_k: int,
    sample_fraction: float,
    min_purchases: int,
    engine: str,
    part_rows: int,
    train_weeks: int,
    candidate_days: int,
    candidate_min_purchases: int,
    backtest_weeks: int,
) -> None:
    if not 0 <= backtest_weeks <= 52:
        raise FlowInputError(f"--backtest-weeks {backtest_weeks}: expected 0..52")
    if train_weeks < -1 or candidate_days < -1:
        raise FlowInputError(
            f"--train-weeks {train_weeks} / --candidate-days {candidate_days}: expected N >= 0 "
            "(0: no limit)"
        )
    if candidate_min_purchases < 0:
        raise FlowInputError(
            f"--candidate-min-purchases {candidate_min_purchases}: expected N >= 1 (0: the "
            "profile's)"
        )
    if part_rows < 1_000:
        raise FlowInputError(f"--part-rows {part_rows}: expected at least 1000")
    if not 1 <= top_k <= 100:
        raise FlowInputError(f"--top-k {top_k}: expected 1..100")
    if not 0 < sample_fraction <= 1:
        raise FlowInputError(f"--sample-fraction {sample_fraction}: expected 0 < f <= 1")
    if min_purchases < 1:
        raise FlowInputError(f"--min-purchases {min_purchases}: expected >= 1")
    if engine not in ENGINES:
        raise FlowInputError(f"--engine {engine!r}: expected one of {ENGINES}")


def _ensure_data(eng) -> int:
    """Create the views if needed; load DATA_DIR's CSVs when the embedded file is empty.
    Returns the number of purchases the engine holds."""
    eng.apply()
    count = eng.count("dedup_transactions_t")  # joined_transactions_t's rows, no joins
    if count:
        print(f"engine ({eng.kind}) already holds {count:,} purchases; using them")
        return count
    if eng.kind != "embedded":
        raise FlowInputError(
            "RisingWave has no purchases yet: stream the CSVs with `python kafka/producer.py` "
            "(see docs) and wait for the views to fill, then run the flow again."
        )
    data_dir = _settings().data_dir
    if not (data_dir / "transactions_train.csv").is_file():
        raise FlowInputError(
            f"the DuckDB file has no data and {data_dir}/transactions_train.csv does not exist: "
            "set DATA_DIR to a folder with the H&M CSVs, or generate demo data with "
            "`python data/generate.py`."
        )
    print(f"the DuckDB file has no data yet: loading the CSVs of {data_dir} (fast path)")
    report = eng.load_csv(data_dir)
    print(f"loaded {report.rows} rows; {report.rejected} malformed rows went to `rejects`")
    if report.skipped:  # DATA_UNTIL: the rest is left to be replayed through Kafka
        print(f"{report.skipped:,} transactions outside {report.days} not loaded (DATA_UNTIL)")
    return eng.count("dedup_transactions_t")


def _profile(purchases: int) -> dict:
    """The first profile of recsys/train/profiles.toml whose `max_purchases` holds the data."""
    profiles = tomllib.loads(PROFILES.read_text(encoding="utf-8"))["profile"]
    return next(p for p in profiles if purchases <= p["max_purchases"])


def _date_range(eng) -> tuple[date, date]:
    import pandas as pd

    row = eng.query("SELECT MIN(t_dat) AS first, MAX(t_dat) AS last FROM dedup_transactions_t")
    if row.empty or pd.isna(row.iloc[0, 0]):
        raise FlowInputError("dedup_transactions_t is empty: load transactions first.")
    return pd.Timestamp(row.iloc[0, 0]).date(), pd.Timestamp(row.iloc[0, 1]).date()


def _split_dates(
    first: date, last: date, validation_start: str, test_start: str, train_weeks: int = 0
) -> dict:
    """Test = last 7 days, validation = the 7 before, unless given; checked for order.
    Training starts `train_weeks` weeks before validation (0: on the first day of data)."""

    def parse(value: str, name: str) -> date | None:
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise FlowInputError(f"--{name} {value!r}: expected YYYY-MM-DD") from None

    test = parse(test_start, "test-start") or last - timedelta(days=SPLIT_DAYS - 1)
    validation = parse(validation_start, "validation-start") or test - timedelta(days=SPLIT_DAYS)
    if not first < validation < test <= last:
        raise FlowInputError(
            f"the data runs {first} .. {last}, which leaves no training days before validation "
            f"({validation}) and test ({test}): needs first < validation-start < test-start <= "
            "last day; use more data or set --validation-start/--test-start."
        )
    window = validation - timedelta(weeks=train_weeks) if train_weeks else first
    return {
        "first_day": first,
        "train_start": max(first, window),
        "validation_start": validation,
        "test_start": test,
        "end": last,
        # Predictions are made as of the test week's start, so the app's hit marks and the
        # test metrics describe the same, honest situation (nothing from the test week).
        "predict_start": test,
    }


def _check_backtest(weeks: int, dates: dict) -> None:
    """Every backtest week needs training days before it."""
    first_week = dates["test_start"] - timedelta(weeks=max(weeks - 1, 0))
    if weeks and first_week <= dates["first_day"] + timedelta(days=SPLIT_DAYS):
        raise FlowInputError(
            f"--backtest-weeks {weeks}: the first backtest week would start on {first_week}, "
            f"leaving less than a week of training data after {dates['first_day']}; "
            "use fewer weeks."
        )


def _check_images() -> None:
    settings = _settings()
    if settings.image_url_template is None and not settings.image_dir.is_dir():
        raise FlowInputError(
            f"IMAGE_DIR {settings.image_dir} does not exist and IMAGE_URL_TEMPLATE is unset: "
            "the exported article index needs an image location; set one of them."
        )


def _check_splits(rows: dict, min_purchases: int, dates: dict) -> None:
    if rows["train"] < MIN_TRAINING_ROWS:
        raise FlowInputError(
            f"filtered_dataframe_t has {rows['train']} training rows before "
            f"{dates['validation_start']} (need >= {MIN_TRAINING_ROWS}): lower --min-purchases "
            f"(now {min_purchases}), move --validation-start later, or load more data."
        )
    for split in ("validation", "test"):
        if rows[split] == 0:
            raise FlowInputError(
                f"the {split} week has no purchases: check --validation-start/--test-start "
                f"({dates['validation_start']}, {dates['test_start']}) against the data."
            )


def _of(actuals, ids):
    """The rows of `actuals` that belong to the customers `ids` (one batch's purchases)."""
    return actuals[actuals["customer_id"].isin(ids)]


def _hybrid_with_scores(ids, recent, model, depth: int):
    """Recent purchases, then the model's list; model rows keep their score, repurchase
    rows have none (they are not ranked by the model)."""
    import numpy as np
    import pandas as pd

    from recsys.strategy import baselines

    hybrid = baselines.repurchase_recommendations(ids, recent, model, depth)
    scores = model.set_index(["customer_id", "article_id"])["score"]
    from_model = hybrid["source"] == "fill"
    keys = hybrid.loc[from_model, ["customer_id", "article_id"]]
    score = np.full(len(hybrid), np.nan)
    score[from_model.to_numpy()] = scores.reindex(pd.MultiIndex.from_frame(keys)).to_numpy()
    return hybrid.assign(source=hybrid["source"].replace({"fill": "model"}), score=score)


def _append(writers: dict, path: Path, table) -> None:
    """Append `table` to the Parquet file at `path`, opening its writer on first use."""
    import pyarrow.parquet as pq

    if str(path) not in writers:
        writers[str(path)] = pq.ParquetWriter(path, table.schema)
    writers[str(path)].write_table(table)


def _bar_chart(metrics) -> dict:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Test MAP@12 by segment",
        "data": {"values": metrics[["model", "segment", "map@12"]].to_dict("records")},
        "mark": "bar",
        "encoding": {
            "x": {"field": "model", "type": "nominal"},
            "xOffset": {"field": "segment"},
            "y": {"field": "map@12", "type": "quantitative"},
            "color": {"field": "segment", "type": "nominal"},
        },
    }


def _curves_chart(grid_results: list[dict]) -> dict:
    values = [
        {
            "epoch": epoch + 1,
            "loss": loss,
            "grid point": f"lr={row['learning_rate']} bs={row['batch_size']}",
        }
        for row in grid_results
        for epoch, loss in enumerate(row["history"].get("loss", []))
    ]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Training loss per epoch",
        "data": {"values": values},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "epoch", "type": "quantitative"},
            "y": {"field": "loss", "type": "quantitative"},
            "color": {"field": "grid point", "type": "nominal"},
        },
    }


if __name__ == "__main__":
    MyMerlinFlow()
