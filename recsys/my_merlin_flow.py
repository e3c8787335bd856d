"""MyMerlinFlow: train Merlin two-tower models on filtered_dataframe_t, evaluate honestly, export.

    python recsys/my_merlin_flow.py show                      # the steps
    python recsys/my_merlin_flow.py run --max-workers 2       # train (see docs/training.md)

start -> get_dataset -> build_workflow -> train (foreach grid point) -> join
      -> evaluate -> predict -> export -> end

Splits (by date, defaults from the data): the last 7 days are the test week, the 7
days before are validation, everything earlier is training. The feature workflow is
fitted on training rows only; validation picks the hyperparameters; the test week is
touched once, in `evaluate`, for the model and both baselines alike.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import tempfile
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from pathlib import Path

# `python recsys/my_merlin_flow.py` puts recsys/ (not the repo root) on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys.runtime import prepare_flow_process  # noqa: E402

prepare_flow_process()  # user name, --max-workers default, log levels: before Metaflow reads them

from metaflow import FlowSpec, Parameter, card, current, step  # noqa: E402
from metaflow.exception import MetaflowException  # noqa: E402

from recsys.settings import ConfigError, load_settings  # noqa: E402

SPLIT_DAYS = 7
MIN_TRAINING_ROWS = 100
RANKING_DEPTH = 100  # recall@100 needs 100 candidates from every ranking
SHUFFLE_SEED = 42  # the training rows' order (and sample): see _shuffled
MODEL_STRATEGIES = ("two_tower", "repurchase+two_tower")  # what warm customers may get
ENGINES = ("auto", "embedded", "risingwave")
CUSTOMER_COLUMNS = (
    'customer_id, age, club_member_status, fashion_news_frequency, "FN", "Active", postal_code'
)
TRAINING_COLUMNS = (
    "t_dat, customer_id, article_id, price, age, club_member_status, fashion_news_frequency, "
    '"FN", "Active", postal_code, product_type_no, product_group_name, graphical_appearance_no, '
    "colour_group_code, perceived_colour_value_id, department_no, index_code, section_no, "
    "garment_group_no"
)
ARTICLE_COLUMNS = (
    "article_id, prod_name, product_type_no, product_type_name, product_group_name, "
    "graphical_appearance_no, colour_group_code, colour_group_name, perceived_colour_value_id, "
    "department_no, index_code, section_no, garment_group_no, image_path"
)


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
        "learning-rates", default="0.01,0.003", help="Comma-separated learning rates (grid)."
    )
    batch_sizes = Parameter(
        "batch-sizes",
        default="512,1024",
        help="Comma-separated batch sizes (grid). Larger batches give more in-batch negatives "
        "but cost O(batch^2) per step: 4096 trains 3x slower than 1024 on CPU.",
    )
    epochs = Parameter("epochs", default=3, type=int, help="Training epochs per grid point.")
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
        """Check parameters and data, pick the split dates, make sure the engine has data."""
        self.settings_shown = _settings().masked()
        print("settings:", json.dumps(self.settings_shown, indent=1))
        self.grid = _grid(self.learning_rates, self.batch_sizes, self.epochs, self.embedding_dim)
        _check_parameters(self.top_k, self.sample_fraction, self.min_purchases, self.engine)
        self.export_dir = str(_output_root(self.output_dir) / current.run_id)
        with _open_engine(self.engine) as eng:
            self.engine_kind = eng.kind
            _ensure_data(eng)
            first, last = _date_range(eng)
        _check_images()
        self.dates = _split_dates(first, last, self.validation_start, self.test_start)
        print("splits:", json.dumps({k: v.isoformat() for k, v in self.dates.items()}))
        print(f"grid: {len(self.grid)} points: {self.grid}")
        self.next(self.get_dataset)

    @step
    def get_dataset(self):
        """Training rows from filtered_dataframe_t (cutoff and N applied in the view), actuals."""
        import pandas as pd

        validation_start, test_start = self.dates["validation_start"], self.dates["test_start"]
        with _open_engine(self.engine) as eng:
            eng.set_training_settings(min_purchases=self.min_purchases, cutoff=validation_start)
            train = eng.query_compact(f"SELECT {TRAINING_COLUMNS} FROM filtered_dataframe_t")
            validation = _actuals(eng, validation_start, test_start)
            test = _actuals(eng, test_start, self.dates["end"] + timedelta(days=1))
            self.customers = eng.query(f"SELECT {CUSTOMER_COLUMNS} FROM customers_t")
            self.articles = eng.query(f"SELECT {ARTICLE_COLUMNS} FROM articles_metadata_t")
        train = _shuffled(train, self.sample_fraction)
        train["t_dat"] = pd.to_datetime(train["t_dat"])
        self.rows = {"train": len(train), "validation": len(validation), "test": len(test)}
        print("rows per split:", self.rows)
        _check_splits(self.rows, self.min_purchases, self.dates)
        if self.articles.empty:
            raise FlowInputError("articles_metadata_t is empty: load articles.csv into the engine.")
        self.train_rows, self.validation_actuals, self.test_actuals = train, validation, test
        self.warm_customers = sorted(train["customer_id"].unique())
        print(f"customers: {len(self.warm_customers)} in training, {len(self.customers)} in total")
        self.next(self.build_workflow)

    @step
    def build_workflow(self):
        """Fit NVTabular on the training split only; encode training rows, customers, catalogue."""
        from recsys.features import fit_features, prepare_customers

        with tempfile.TemporaryDirectory() as tmp:
            features = fit_features(self.train_rows, self.dates["validation_start"], Path(tmp))
            self.workflows = features.to_bytes()
            self.encoded_train = features.interactions(self.train_rows)
            self.item_frequencies = features.item_frequencies(self.encoded_train)
            self.encoded_articles = features.articles(self.articles)
            self.encoded_queries = {
                split: features.customers(
                    prepare_customers(self._customer_rows(ids), self.dates[f"{split}_start"])
                )
                for split, ids in self._query_customers().items()
            }
        print(
            "encoded:",
            {k: len(v) for k, v in self.encoded_queries.items()},
            f"train rows {len(self.encoded_train)}, articles {len(self.encoded_articles)}",
        )
        self.next(self.train, foreach="grid")

    @step
    def train(self):
        """One grid point: train, score validation against the whole catalogue, log to Comet."""
        from recsys import towers
        from recsys.evaluation import ranking_metrics
        from recsys.tracking import start_experiment

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
        schema = self._schema()  # after Comet: it wants to be imported before TensorFlow
        experiment.log_parameters(
            {
                **self.input,
                "min_purchases": self.min_purchases,
                "metaflow_run": current.run_id,
                "top_k": self.top_k,
            }
        )
        result = towers.train(
            self.encoded_train,
            schema,
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

        self.article_embeddings = towers.embed(
            result.model.candidate_encoder, self.encoded_articles, schema
        )
        self.query_embeddings = {
            split: towers.embed(result.model.query_encoder, frame, schema)
            for split, frame in self.encoded_queries.items()
        }
        recs = towers.recommend(
            self.query_embeddings["validation"],
            self.article_embeddings,
            self._query_customers()["validation"],
            self.articles["article_id"].to_numpy(),
            100,
        )
        self.validation = ranking_metrics(recs, self.validation_actuals, len(self.articles))
        print("validation:", self.validation)
        experiment.log_other("device", self.device)
        experiment.log_metrics({"examples_per_second": self.examples_per_second})
        experiment.log_metrics(self.validation, prefix="validation")
        experiment.end()
        self.query_tower = towers.save_encoder(result.model.query_encoder)
        self.params = self.input
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
                "warm_customers",
                "articles",
                "customers",
                "validation_actuals",
                "test_actuals",
                "workflows",
                "settings_shown",
            ],
        )
        self.best_params, self.device, self.query_tower = best.params, best.device, best.query_tower
        self.article_embeddings, self.query_embeddings = (
            best.article_embeddings,
            best.query_embeddings,
        )
        self.best_validation = best.validation
        print("best:", self.best_params, "validation", self.best_validation)
        self.next(self.evaluate)

    @card(type="blank", id="evaluation")
    @step
    def evaluate(self):
        """Test week, whole catalogue: the model, both baselines and the hybrid, same customers.

        What is served is decided on the validation week only: for warm customers the
        model alone or the hybrid (their recent purchases, then the model), for cold
        customers the better baseline. The test week only measures that choice.
        """
        import pandas as pd

        from recsys import baselines
        from recsys.evaluation import ranking_metrics, segment_metrics

        cutoff = self.dates["validation_start"]  # everything here knows only training data
        with _open_engine(self.engine) as eng:
            popular = baselines.popular_articles(eng, cutoff, RANKING_DEPTH)
            recent = baselines.recent_purchases(eng, cutoff)
        warm = pd.Index(self.warm_customers)
        catalogue = len(self.articles)
        rankings = {
            split: self._rankings(split, recent, popular) for split in ("validation", "test")
        }

        def validation_map(name: str, customers) -> float:
            actuals = self.validation_actuals
            actuals = (
                actuals[actuals["customer_id"].isin(customers)]
                if customers is not None
                else actuals
            )
            return ranking_metrics(rankings["validation"][name], actuals, catalogue)["map@12"]

        self.fallback = max(baselines.BASELINES, key=lambda name: validation_map(name, None))
        self.warm_strategy = max(MODEL_STRATEGIES, key=lambda name: validation_map(name, warm))
        print(f"served: {self.warm_strategy} for warm customers, {self.fallback} for cold ones")
        test = rankings["test"]
        test["served"] = pd.concat(
            [
                test[self.warm_strategy][test[self.warm_strategy]["customer_id"].isin(warm)],
                test[self.fallback][~test[self.fallback]["customer_id"].isin(warm)],
            ]
        )
        self.metrics = pd.concat(
            [
                segment_metrics(recs, self.test_actuals, warm, catalogue).assign(model=name)
                for name, recs in test.items()
            ],
            ignore_index=True,
        )
        self.metrics = self.metrics[["model", *self.metrics.columns[:-1]]]
        print(self.metrics.to_string(index=False))
        self._log_summary_to_comet()
        self._fill_card()
        self.next(self.predict)

    @step
    def predict(self):
        """Top-k for every customer: the model's choice where it knows them, else the fallback."""
        import numpy as np
        import pandas as pd

        from recsys import baselines, towers

        everyone = self._query_customers()["predict"]
        with _open_engine(self.engine) as eng:  # history up to the test week, not into it
            cutoff = self.dates["predict_start"]
            popular = baselines.popular_articles(eng, cutoff, self.top_k)
            recent = baselines.recent_purchases(eng, cutoff)
        known = np.isin(everyone, np.asarray(self.warm_customers, dtype=object))
        model = towers.recommend(
            self.query_embeddings["predict"][known],
            self.article_embeddings,
            everyone[known],
            self.articles["article_id"].to_numpy(),
            self.top_k,
        )
        if self.warm_strategy == "two_tower":
            model = model.assign(source="model")
        else:
            hybrid = baselines.repurchase_recommendations(
                everyone[known], recent, model, self.top_k
            )
            scores = model.set_index(["customer_id", "article_id"])["score"]
            model = hybrid.assign(
                source=hybrid["source"].replace({"fill": "model"}),
                score=scores.reindex(
                    pd.MultiIndex.from_frame(hybrid[["customer_id", "article_id"]])
                ).to_numpy(),
            )
        fallback = baselines.baseline_recommendations(
            self.fallback, everyone[~known], recent, popular
        ).assign(score=np.nan, source=self.fallback)
        self.predictions = pd.concat([model, fallback], ignore_index=True)[
            ["customer_id", "rank", "article_id", "score", "source"]
        ]
        print(
            f"predictions for {len(everyone)} customers: {int(known.sum())} by "
            f"{self.warm_strategy}, {int((~known).sum())} by the {self.fallback} baseline"
        )
        self.next(self.export)

    @step
    def export(self):
        """Write OUTPUT_DIR/<run id>/ for the app and for users' own code (ARCHITECTURE.md)."""
        if not _settings().export_to_app:
            print("EXPORT_TO_APP is off: results stay in the run's artifacts only")
            self.next(self.end)
            return
        out = Path(self.export_dir)
        out.mkdir(parents=True, exist_ok=True)
        self._write_files(out)
        print(f"exported to {out}")
        self.next(self.end)

    @step
    def end(self):
        """Say where everything is."""
        from recsys.tracking import upload_hint

        print(self.metrics.to_string(index=False))
        print(f"run {current.run_id}: export in {self.export_dir}")
        if not _settings().comet_api_key:
            print(upload_hint(self._comet_dir()))

    # --- helpers used by several steps -------------------------------------------------

    def _schema(self):
        """The model's input schema, from the workflows fitted in build_workflow."""
        from recsys.features import FittedFeatures

        with tempfile.TemporaryDirectory() as tmp:
            return FittedFeatures.from_bytes(self.workflows, Path(tmp)).schema

    def _rankings(self, split: str, recent, popular: list[str]) -> dict:
        """Every candidate's top-100 for the buyers of `split`, from data before validation."""
        from recsys import baselines, towers

        ids = self._query_customers()[split]
        model = towers.recommend(
            self.query_embeddings[split],
            self.article_embeddings,
            ids,
            self.articles["article_id"].to_numpy(),
            RANKING_DEPTH,
        )
        hybrid = baselines.repurchase_recommendations(ids, recent, model, RANKING_DEPTH)
        return {
            "two_tower": model,
            "repurchase+two_tower": hybrid.drop(columns="source"),
            **{
                name: baselines.baseline_recommendations(name, ids, recent, popular)
                for name in baselines.BASELINES
            },
        }

    def _comet_dir(self) -> Path:
        return Path(self.export_dir) / "comet"

    def _query_customers(self) -> dict:
        """Whose query embedding each split needs: the week's buyers, or everyone (predict)."""
        import numpy as np

        return {
            "validation": np.asarray(
                sorted(self.validation_actuals["customer_id"].unique()), dtype=object
            ),
            "test": np.asarray(sorted(self.test_actuals["customer_id"].unique()), dtype=object),
            "predict": np.asarray(sorted(self.customers["customer_id"].unique()), dtype=object),
        }

    def _customer_rows(self, ids):
        """Attribute rows for `ids`, in that order (buyers missing from customers_t get NULLs)."""
        import pandas as pd

        table = self.customers.drop_duplicates("customer_id").set_index("customer_id")
        return table.reindex(pd.Index(ids, name="customer_id")).reset_index()

    def _log_summary_to_comet(self) -> None:
        from recsys.tracking import start_experiment

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
        shown = self.metrics[self.metrics["segment"] != "all"]
        current.card["evaluation"].append(VegaChart(_bar_chart(shown)))
        current.card["evaluation"].append(VegaChart(_curves_chart(self.grid_results)))

    def _write_files(self, out: Path) -> None:
        import faiss
        import numpy as np
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.predictions.to_parquet(out / "predictions.parquet", index=False)
        self.metrics.to_parquet(out / "metrics.parquet", index=False)
        self.test_actuals.to_parquet(out / "test_actuals.parquet", index=False)
        self.articles.to_parquet(out / "articles.parquet", index=False)
        everyone = self._query_customers()["predict"]
        for name, ids, vectors, extra in (
            (
                "customer",
                everyone,
                self.query_embeddings["predict"],
                {"warm": np.isin(everyone, np.asarray(self.warm_customers, dtype=object))},
            ),
            ("article", self.articles["article_id"].to_numpy(), self.article_embeddings, {}),
        ):
            flat = pa.array(np.ascontiguousarray(vectors).reshape(-1))
            table = pa.table(
                {
                    f"{name}_id": pa.array(ids, pa.string()),
                    **extra,
                    "embedding": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
                }
            )
            pq.write_table(table, out / f"{name}_embeddings.parquet")
        index = faiss.IndexFlatIP(self.article_embeddings.shape[1])
        index.add(np.ascontiguousarray(self.article_embeddings))
        faiss.write_index(index, str(out / "article_index.faiss"))
        for blob in (self.query_tower, self.workflows):
            with tarfile.open(fileobj=BytesIO(blob), mode="r:gz") as tar:
                tar.extractall(out, filter="data")
        pd.DataFrame(self.grid_results).drop(columns="history").to_parquet(
            out / "grid.parquet", index=False
        )
        info = {
            "run_id": current.run_id,
            "flow": current.flow_name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data_dir": self.settings_shown["data_dir"],
            "engine": self.engine_kind,
            "dates": {k: v.isoformat() for k, v in self.dates.items()},
            "rows": self.rows,
            "best_hyperparameters": self.best_params,
            "validation": self.best_validation,
            "fallback": self.fallback,
            "warm_strategy": self.warm_strategy,
            "device": self.device,
            "top_k": self.top_k,
        }
        (out / "run_info.json").write_text(json.dumps(info, indent=2, default=str))


# --- module-level helpers (no flow state) --------------------------------------------------


def _settings():
    try:
        return load_settings()
    except ConfigError as error:
        raise FlowInputError(str(error)) from None


def _open_engine(kind: str):
    from recsys.engine import EngineError, open_engine

    try:
        return open_engine(_settings(), kind=None if kind == "auto" else kind)
    except EngineError as error:
        raise FlowInputError(f"cannot open the {kind} engine: {error}") from None


def _output_root(parameter: str) -> Path:
    return Path(parameter).expanduser().resolve() if parameter else _settings().output_dir


def _grid(learning_rates: str, batch_sizes: str, epochs: int, embedding_dim: int) -> list[dict]:
    """Every (learning rate, batch size) pair, each checked before anything trains."""
    from recsys.towers import HyperParameters

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


def _check_parameters(top_k: int, sample_fraction: float, min_purchases: int, engine: str) -> None:
    if not 1 <= top_k <= 100:
        raise FlowInputError(f"--top-k {top_k}: expected 1..100")
    if not 0 < sample_fraction <= 1:
        raise FlowInputError(f"--sample-fraction {sample_fraction}: expected 0 < f <= 1")
    if min_purchases < 1:
        raise FlowInputError(f"--min-purchases {min_purchases}: expected >= 1")
    if engine not in ENGINES:
        raise FlowInputError(f"--engine {engine!r}: expected one of {ENGINES}")


def _ensure_data(eng) -> None:
    """Create the views if needed; load DATA_DIR's CSVs when the embedded file is empty."""
    eng.apply()
    count = int(eng.query("SELECT COUNT(*) AS n FROM joined_transactions_t").iloc[0, 0])
    if count:
        print(f"engine ({eng.kind}) already holds {count:,} purchases; using them")
        return
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


def _date_range(eng) -> tuple[date, date]:
    import pandas as pd

    row = eng.query("SELECT MIN(t_dat) AS first, MAX(t_dat) AS last FROM joined_transactions_t")
    if row.empty or pd.isna(row.iloc[0, 0]):
        raise FlowInputError("joined_transactions_t is empty: load transactions first.")
    return pd.Timestamp(row.iloc[0, 0]).date(), pd.Timestamp(row.iloc[0, 1]).date()


def _split_dates(first: date, last: date, validation_start: str, test_start: str) -> dict:
    """Test = last 7 days, validation = the 7 before, unless given; checked for order."""

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
    return {
        "train_start": first,
        "validation_start": validation,
        "test_start": test,
        "end": last,
        # Predictions are made as of the test week's start, so the app's hit marks and the
        # test metrics describe the same, honest situation (nothing from the test week).
        "predict_start": test,
    }


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


def _shuffled(train, fraction: float):
    """The training rows in a seeded pseudo-random order (and sample), whatever order the
    engine returned them in: each row's key (t_dat, customer_id, article_id: unique in
    the view) is hashed with SHUFFLE_SEED, rows are kept when the hash falls in the
    first `fraction` of its range and sorted by it.

    Why: a run is reproducible, and training sees a well-mixed frame (measured on the
    demo data: the engine's roughly date-ordered rows gave 0.022-0.035 test MAP@12,
    shuffled rows 0.033-0.041, although Merlin's Loader shuffles too; docs/training.md).
    Hashing needs no sort in the engine (an ORDER BY over 28 M wide rows is costly).
    """
    import numpy as np
    import pandas as pd

    keys = pd.util.hash_pandas_object(
        train[["t_dat", "customer_id", "article_id"]],
        index=False,
        hash_key=f"{SHUFFLE_SEED:016d}",
    ).to_numpy()
    if fraction < 1:
        kept = np.flatnonzero(keys < np.uint64(int(fraction * 2**64)))
        train, keys = train.iloc[kept], keys[kept]
    return train.iloc[np.argsort(keys, kind="stable")].reset_index(drop=True)


def _actuals(eng, start: date, end: date):
    """Every purchase in [start, end) by any customer (warm or cold): what we evaluate against."""
    return eng.query(
        "SELECT DISTINCT customer_id, article_id, t_dat FROM joined_transactions_t "
        "WHERE t_dat >= $1 AND t_dat < $2",
        [start, end],
    )


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
