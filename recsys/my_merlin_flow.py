"""MyMerlinFlow: train Merlin two-tower models on filtered_dataframe_t, evaluate honestly, export.

    python recsys/my_merlin_flow.py show                      # the steps
    python recsys/my_merlin_flow.py run --max-workers 2       # train (see docs/training.md)

start -> get_dataset -> build_workflow -> train (foreach grid point) -> join
      -> train_ranker -> evaluate -> backtest (--backtest-weeks) -> predict -> export -> end

Splits (by date, defaults from the data): the last 7 days are the test week, the 7
days before are validation, everything earlier is training. The feature workflow is
fitted on training rows only; validation picks the hyperparameters and what is served;
the test week is touched once, in `evaluate`, for every method alike.

Each step is a short story over the stage packages (ARCHITECTURE.md): the run plan
(`recsys.train.plan`), the training pipeline (`recsys.train.pipeline`), what is served
(`recsys.strategy`), scoring and the report (`recsys.evaluate`), and the run's folder
(`recsys.train.export`, `recsys.run_folder`). Nothing the size of the data is held in one
frame or passed as an artifact: artifacts carry paths under OUTPUT_DIR/<run id>/ and
small tables.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

# `python recsys/my_merlin_flow.py` puts recsys/ (not the repo root) on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys.train.runtime import prepare_flow_process  # noqa: E402

prepare_flow_process()  # user name, --max-workers default, log levels: before Metaflow reads them

from metaflow import FlowSpec, card, current, step  # noqa: E402

from recsys import run_folder as rf  # noqa: E402
from recsys.train import plan, source  # noqa: E402

TEST_SALES_FILE = "recent_sales_test.parquet"  # articles' recent sales as of the test start


class MyMerlinFlow(FlowSpec, plan.FlowParameters):
    """Two-tower retrieval for H&M: grid search on validation, honest test, predictions for all."""

    @step
    def start(self):
        """Check parameters, settings and photos; load data if needed; plan the run."""
        settings = source.settings()
        self.settings_shown = settings.masked()
        print("settings:", json.dumps(self.settings_shown, indent=1))
        parameters = plan.Parameters.of(self)
        parameters.check()
        self.photos = plan.photos(settings)
        if not self.photos:
            print(f"no photos in {settings.image_dir}: the page and the service show placeholders")
        self.export_dir = str(source.output_root(self.output_dir) / current.run_id)
        with source.engine(self.engine) as eng:
            self.engine_kind = eng.kind
            purchases = source.ensure_data(eng, settings.data_dir)
            first, last = source.date_range(eng)
        self.plan = plan.make_plan(parameters, purchases, first, last)
        print(*self.plan.describe(purchases), sep="\n")
        self.next(self.get_dataset)

    @step
    def get_dataset(self):
        """Training rows from filtered_dataframe_t (cutoff and N applied in the view) into
        Parquet parts; the validation and test weeks' purchases; the catalogue."""
        from recsys.strategy.inputs import week_purchases
        from recsys.train import dataset, pipeline

        dates, work = self.plan.dates, self._work()
        with source.engine(self.engine) as eng:
            epochs = max(point["epochs"] for point in self.plan.grid)  # an order per epoch
            parts, sales = pipeline.training_rows(
                eng, dates["validation_start"], dates["train_start"], self._rows(), epochs, work
            )
            test_sales = dataset.recent_sales(eng, dates["test_start"])
            validation = week_purchases(eng, dates["validation_start"], dates["test_start"])
            test = week_purchases(eng, dates["test_start"], dates["end"] + timedelta(days=1))
            self.articles = source.articles(eng)
        self.rows = {"train": parts.rows, "validation": len(validation), "test": len(test)}
        print(f"rows per split: {self.rows} in {len(parts.orders[0])} part(s) x {epochs} order(s)")
        plan.check_splits(self.rows, self.min_purchases, dates)
        sales.save(work / sales.FILE)
        test_sales.save(work / TEST_SALES_FILE)
        self.prepared_parts = [[str(p) for p in order] for order in parts.orders]
        self.validation_actuals, self.test_actuals = validation, test
        self.next(self.build_workflow)

    @step
    def build_workflow(self):
        """Fit NVTabular on the training parts only; encode them part by part."""
        from recsys.train import pipeline
        from recsys.train.dataset import TrainingParts
        from recsys.train.features import RecentSales

        work = self._work()
        orders = [[Path(p) for p in order] for order in self.prepared_parts]
        sales = RecentSales.load(work / RecentSales.FILE)
        encoded = pipeline.encode(TrainingParts(orders, self.rows["train"]), sales, work)
        self.encoded_parts = [[str(p) for p in order] for order in encoded.parts]
        self.item_frequencies = encoded.item_frequencies
        self.known_customers = len(self._features().known_customers)
        print(
            f"encoded {self.rows['train']:,} training rows into {len(self.encoded_parts[0])} "
            f"part(s) x {len(self.encoded_parts)} order(s); {len(self.articles):,} articles; "
            f"{self.known_customers:,} known customers"
        )
        self.grid = self.plan.grid
        self.next(self.train, foreach="grid")

    @step
    def train(self):
        """One grid point: train, embed the catalogue and the customers (also the weeks the
        ranker learns from), score validation."""
        from recsys.train import pipeline, towers
        from recsys.train.features import RecentSales
        from recsys.train.tracking import epoch_logger

        if not self.gpu:
            os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        params = towers.HyperParameters(**self.input)
        facts = {**self.input, "min_purchases": self.min_purchases, "top_k": self.top_k}
        experiment = self._experiment(f"lr{params.learning_rate}-bs{params.batch_size}", facts)
        features = self._features()  # after Comet: it wants to be imported before TensorFlow
        encoded = [[Path(p) for p in order] for order in self.encoded_parts]
        log = epoch_logger(experiment)
        result = towers.train(encoded, features.schema, self.item_frequencies, params, log)
        self.device, self.history = result.device, result.history
        self.examples_per_second = result.examples_per_second
        print(f"trained {params} on {self.device}: {self.examples_per_second:,.0f} examples/s")
        branch = self._branch(self._work() / f"branch-{current.task_id}")
        test_sales = RecentSales.load(self._work() / TEST_SALES_FILE)
        dates, buyers = self.plan.dates, self._split_customers()
        with source.engine(self.engine, read_only=True) as eng:
            branch.write(eng, result.model, features, self.articles, test_sales, dates, buyers)
            pipeline.embed_ranker_weeks(
                eng, result.model, features, self.articles, dates["test_start"],
                self.plan.ranker_weeks, branch.path / pipeline.RANKER_WEEKS,
            )  # fmt: skip
        board = self._score("validation", branch=branch, methods=("two_tower",))
        self.validation = board.summary("two_tower")
        print("validation:", self.validation)
        experiment.log_other("device", self.device)
        experiment.log_metrics({"examples_per_second": self.examples_per_second})
        experiment.log_metrics(self.validation, prefix="validation")
        experiment.end()
        self.branch_dir, self.params = str(branch.path), self.input
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
        shared = [
            "plan",
            "rows",
            "export_dir",
            "engine_kind",
            "articles",
            "validation_actuals",
            "test_actuals",
            "settings_shown",
            "known_customers",
            "photos",
        ]
        self.merge_artifacts(inputs, include=shared)
        self.best_params, self.device, self.best_dir = best.params, best.device, best.branch_dir
        self.best_validation = best.validation
        print("best:", self.best_params, "validation", self.best_validation)
        self.next(self.train_ranker)

    @step
    def train_ranker(self):
        """The learned ranker over the candidate sources, on the chosen branch's weeks
        before validation, stopped on validation (recsys/train/ranker.py)."""
        from recsys.strategy import ranker
        from recsys.train import pipeline
        from recsys.train.ranker import described
        from recsys.train.tracking import log_rankers

        experiment = self._experiment("rankers", {"ranker_weeks": self.plan.ranker_weeks})
        known = self._features().known_customers
        folder = Path(self.best_dir) / pipeline.RANKER_WEEKS
        with source.engine(self.engine, read_only=True) as eng:
            fitted = pipeline.train_ranker(
                eng, self.plan.dates["test_start"], self.plan.ranker_weeks, folder,
                self.articles["article_id"].to_numpy(), known, self.plan.rule,
            )  # fmt: skip
        ranker.save({name: one.model for name, one in fitted.items()}, self._work() / rf.RANKERS)
        self.ranker_facts = log_rankers(experiment, fitted, self._work() / rf.RANKERS)
        for name, facts in self.ranker_facts.items():
            print(f"{name}: {described(facts)}")
        self.next(self.evaluate)

    @card(type="blank", id="evaluation")
    @step
    def evaluate(self):
        """Validation week: every method, and the choice of what is served; test week: every
        method and that choice, on the same customers, lists as of the test start.

        The model is the one trained before validation (docs/training.md says why); every
        other input of the test week's lists (history, popularity, recent sales, customer
        state) includes the validation week, as the competition's protocol has it.
        """
        from recsys.evaluate import report
        from recsys.evaluate.scoring import compared_with_baselines
        from recsys.strategy.served import Served

        validation = self._score("validation")
        self.served = Served.choose(validation.map_at_12)
        print(f"served: {self.served.describe()}")
        test = self._score("test", self.served)
        self.metrics, self.differences = test.metrics(), compared_with_baselines(test)
        print(self.metrics.to_string(index=False))
        print("paired differences (method - baseline), 95% bootstrap intervals over customers:")
        print(self.differences.to_string(index=False))
        week = report.TestWeek(
            self.plan.dates,
            self.best_params,
            self.device,
            self.served,
            self.metrics,
            self.differences,
            self.grid_results,
        )
        week.log_to_comet(source.settings(), current.run_id, self._tags(), self._comet_dir())
        week.fill_card(current.card["evaluation"])
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
        from recsys.evaluate import backtest, report
        from recsys.train import towers

        dates = self.plan.dates
        setup = backtest.Setup(
            towers.HyperParameters(**self.best_params),
            self.served,
            self._rows(),
            self.plan.train_weeks,
            self.plan.rule,
            self.plan.ranker_weeks,
        )
        starts = backtest.week_starts(dates["test_start"], self.backtest_weeks)
        with source.engine(self.engine) as eng:
            try:
                self.backtest_metrics, self.backtest_differences = backtest.run(
                    eng, setup, starts, self.articles, self._work() / "backtest"
                )
            finally:  # the views show the training rows again, as after get_dataset
                eng.set_training_settings(self.min_purchases, dates["validation_start"])
        shown = self.backtest_metrics[self.backtest_metrics["segment"] == "all"]
        print(shown.drop(columns="segment").to_string(index=False))
        print(self.backtest_differences.to_string(index=False))
        report.backtest_card(
            current.card["backtest"], self.backtest_weeks, shown, self.backtest_differences
        )
        self.next(self.predict)

    @step
    def predict(self):
        """Top-k for every customer, as served, in batches: written with the customer
        embeddings to the run's folder."""
        from recsys.strategy.inputs import Day, History
        from recsys.train import export

        branch, day = self._branch(self.best_dir), self.plan.dates["predict_start"]
        folder, known = rf.RunFolder(self.export_dir), self._features().known_customers
        with source.engine(self.engine, read_only=True) as eng:  # history up to the test week
            lists_day = Day.read(eng, day, branch.catalogue("predict"), self.plan.rule,
                                 rankers=self._rankers())  # fmt: skip
            self.predicted = export.write_predictions(
                folder, branch.queries("predict"), lists_day, History.read(eng, day), known,
                self.served, self.top_k,
            )  # fmt: skip
        print(f"predictions for {sum(self.predicted.values()):,} customers: {self.predicted}")
        self.next(self.export)

    @step
    def export(self):
        """Write the rest of OUTPUT_DIR/<run id>/ for the app and users' code (ARCHITECTURE.md)."""
        from recsys.train import export

        if not source.settings().export_to_app:
            print(f"EXPORT_TO_APP is off: only predictions and embeddings are in {self.export_dir}")
            self.next(self.end)
            return
        tables = export.Evaluation(
            self.metrics, self.differences, self.backtest_metrics, self.backtest_differences
        )
        branch = self._branch(self.best_dir)
        export.write_run_folder(
            rf.RunFolder(self.export_dir),
            self._run_info(),
            tables,
            self.test_actuals,
            self.articles,
            branch.catalogue("predict"),
            branch.path,
            self.grid_results,
        )
        print(f"exported to {self.export_dir}")
        self.next(self.end)

    @step
    def end(self):
        """Say where everything is; remove the run's scratch data (Parquet parts, branches)."""
        from recsys.train.tracking import upload_hint

        shutil.rmtree(self._work(), ignore_errors=True)
        print(self.metrics.to_string(index=False))
        print(f"run {current.run_id}: export in {self.export_dir}")
        if not source.settings().comet_api_key:
            print(upload_hint(self._comet_dir()))

    # --- helpers used by several steps -------------------------------------------------

    def _work(self) -> Path:
        """Scratch data of this run (Parquet parts, branch outputs), removed by `end`."""
        return rf.RunFolder(self.export_dir).file(rf.WORK)

    def _rows(self):
        from recsys.train.pipeline import RowSettings

        return RowSettings(self.min_purchases, self.part_rows, self.sample_fraction)

    def _features(self):
        """The workflows fitted in build_workflow (they stay in the run's work folder)."""
        from recsys.train.pipeline import fitted_features

        return fitted_features(self._work())

    def _rankers(self) -> dict:
        """The rankers train_ranker fitted (in the run's work folder)."""
        from recsys.strategy import ranker

        return ranker.load(self._work() / rf.RANKERS)

    def _branch(self, path):
        from recsys.train.pipeline import Branch

        return Branch(path, self.articles["article_id"].to_numpy())

    def _split_customers(self) -> dict:
        """Whose query embedding each split needs: the week's buyers, or everyone (None)."""
        return {
            "validation": self.validation_actuals["customer_id"].unique(),
            "test": self.test_actuals["customer_id"].unique(),
            "predict": None,
        }

    def _score(self, split: str, served=None, branch=None, methods=None):
        """Every method's metrics on one week (`scoring.score_week`), with `served`'s; the
        chosen branch unless another is given."""
        from recsys.evaluate.scoring import score_week
        from recsys.strategy.methods import METHODS

        branch = branch or self._branch(self.best_dir)
        with source.engine(self.engine, read_only=True) as eng:
            return score_week(
                eng,
                self.plan.dates[f"{split}_start"],
                branch.queries(split),
                branch.catalogue(split),
                getattr(self, f"{split}_actuals"),
                self._features().known_customers,
                self.plan.rule,
                served,
                methods or tuple(METHODS),
                rankers=self._rankers() if methods is None else None,
            )

    def _run_info(self) -> rf.RunInfo:
        settings = source.settings()
        return rf.RunInfo(
            run_id=current.run_id,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            data_dir=str(settings.data_dir),
            engine=self.engine_kind,
            duckdb_path=str(settings.duckdb_path) if self.engine_kind == "embedded" else None,
            image_dir=str(settings.image_dir),
            image_url_template=settings.image_url_template,
            photos=self.photos,
            dates=self.plan.dates,
            rows=self.rows,
            served=self.served,
            candidate_rule=self.plan.rule,
            top_k=self.top_k,
            profile=self.plan.profile["name"],
            device=self.device,
            best_hyperparameters=self.best_params,
            validation=self.best_validation,
            rankers=self.ranker_facts,
        )

    def _comet_dir(self) -> Path:
        return Path(self.export_dir) / "comet"

    def _tags(self) -> list[str]:
        return [f"metaflow_run:{current.run_id}", f"step:{current.step_name}", current.flow_name]

    def _experiment(self, name: str, parameters: dict):
        """A Comet experiment of this task, its parameters logged."""
        from recsys.train.tracking import start_experiment

        tags = [*self._tags(), f"task:{current.task_id}"]
        experiment = start_experiment(
            source.settings(), f"{current.run_id}-{name}", tags, self._comet_dir()
        )
        experiment.log_parameters({**parameters, "metaflow_run": current.run_id})
        return experiment


if __name__ == "__main__":
    MyMerlinFlow()
