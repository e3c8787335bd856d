"""The run plan: the flow's parameters checked, then the data-size profile, the date splits
and the grid, all decided in the start step before anything is trained.

Everything that can be checked without the data (parameter ranges, the grid's syntax,
the engine's name, the photos' location) is checked by `Parameters.check`, before the
start step loads a single row.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from metaflow import Parameter
from metaflow.exception import MetaflowException

from recsys.settings import Settings
from recsys.strategy.inputs import CandidateRule
from recsys.train.towers import HyperParameters

SPLIT_DAYS = 7
MIN_TRAINING_ROWS = 100
PROFILES = Path(__file__).resolve().parent / "profiles.toml"
ENGINES = ("auto", "embedded", "risingwave")


class FlowInputError(MetaflowException):
    """Bad input or settings: the message says what is wrong and what to do."""

    headline = "Cannot train with this input"


class FlowParameters:
    """The flow's command line, as Metaflow declares it (MyMerlinFlow inherits these)."""

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
    candidate_prior = Parameter(
        "candidate-prior",
        default=-1.0,
        type=float,
        help="The model's score of a candidate gets this times the log of its units sold in "
        "those days (0: none; the logQ correction took the training weeks' popularity out). "
        "Default (-1): the data-size profile's.",
    )
    ranker_weeks = Parameter(
        "ranker-weeks",
        default=0,
        type=int,
        help="The learned ranker trains on the N weeks before the validation week (label: "
        "bought in the week) and stops on the validation week (recsys/train/ranker.py). "
        "Default (0): the data-size profile's.",
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


@dataclass(frozen=True)
class Parameters:
    """The flow's command line (`python recsys/my_merlin_flow.py run --help` explains each);
    0, -1 and "" mean "the data-size profile's"."""

    engine: str
    test_start: str
    validation_start: str
    min_purchases: int
    learning_rates: str
    batch_sizes: str
    epochs: int
    train_weeks: int
    candidate_days: int
    candidate_min_purchases: int
    candidate_prior: float
    ranker_weeks: int
    backtest_weeks: int
    embedding_dim: int
    top_k: int
    sample_fraction: float
    part_rows: int

    @classmethod
    def of(cls, flow) -> Parameters:
        """The values of the flow's Parameters of these names."""
        return cls(**{f.name: getattr(flow, f.name) for f in dataclasses.fields(cls)})

    def check(self) -> None:
        """Every range and syntax, before any data is read."""
        if not 0 <= self.backtest_weeks <= 52:
            raise FlowInputError(f"--backtest-weeks {self.backtest_weeks}: expected 0..52")
        if self.train_weeks < -1 or self.candidate_days < -1:
            raise FlowInputError(
                f"--train-weeks {self.train_weeks} / --candidate-days {self.candidate_days}: "
                "expected N >= 0 (0: no limit)"
            )
        if not 0 <= self.ranker_weeks <= 26:
            raise FlowInputError(
                f"--ranker-weeks {self.ranker_weeks}: expected 1..26 (0: the profile's)"
            )
        if self.candidate_prior != -1 and not 0 <= self.candidate_prior <= 4:
            raise FlowInputError(
                f"--candidate-prior {self.candidate_prior}: expected 0..4 (-1: the profile's)"
            )
        if self.candidate_min_purchases < 0:
            raise FlowInputError(
                f"--candidate-min-purchases {self.candidate_min_purchases}: expected N >= 1 "
                "(0: the profile's)"
            )
        if self.part_rows < 1_000:
            raise FlowInputError(f"--part-rows {self.part_rows}: expected at least 1000")
        if not 1 <= self.top_k <= 100:
            raise FlowInputError(f"--top-k {self.top_k}: expected 1..100")
        if not 0 < self.sample_fraction <= 1:
            raise FlowInputError(f"--sample-fraction {self.sample_fraction}: expected 0 < f <= 1")
        if self.min_purchases < 1:
            raise FlowInputError(f"--min-purchases {self.min_purchases}: expected >= 1")
        if self.engine not in ENGINES:
            raise FlowInputError(f"--engine {self.engine!r}: expected one of {ENGINES}")
        _day(self.test_start, "test-start")
        _day(self.validation_start, "validation-start")
        grid(self.learning_rates or "0.01", self.batch_sizes or "1024", 1, self.embedding_dim)


@dataclass(frozen=True)
class Plan:
    """What the run trains and how: decided once, in the start step."""

    profile: dict
    grid: list[dict]
    rule: CandidateRule
    dates: dict[str, date]
    train_weeks: int  # 0: every week before validation
    ranker_weeks: int  # the ranker's training weeks before validation

    def describe(self, purchases: int) -> list[str]:
        profile = self.profile
        return [
            f"profile: {profile['name']} ({purchases:,} purchases, up to "
            f"{profile['max_purchases']:,}): learning rates {profile['learning_rates']}, batch "
            f"sizes {profile['batch_sizes']}, {profile['epochs']} epoch(s), training weeks "
            f"{profile['train_weeks'] or 'all'} unless given on the command line "
            "(recsys/train/profiles.toml says why)",
            f"the model recommends {self.rule.describe()}",
            f"the ranker trains on the {self.ranker_weeks} weeks before validation",
            f"splits: { {k: v.isoformat() for k, v in self.dates.items()} }",
            f"grid: {len(self.grid)} points: {self.grid}",
        ]


def make_plan(parameters: Parameters, purchases: int, first: date, last: date) -> Plan:
    """The plan for data of `purchases` rows from `first` to `last`: the profile's defaults
    wherever the command line left a value out."""
    profile = data_profile(purchases)
    p = parameters
    weeks = p.train_weeks if p.train_weeks >= 0 else profile["train_weeks"]
    dates = split_dates(first, last, p.validation_start, p.test_start, weeks)
    ranker_weeks = p.ranker_weeks or profile["ranker_weeks"]
    check_backtest(p.backtest_weeks, ranker_weeks, dates)
    return Plan(
        profile=profile,
        grid=grid(
            p.learning_rates or profile["learning_rates"],
            p.batch_sizes or profile["batch_sizes"],
            p.epochs or profile["epochs"],
            p.embedding_dim,
        ),
        rule=CandidateRule(
            p.candidate_days if p.candidate_days >= 0 else profile["candidate_days"],
            p.candidate_min_purchases or profile["candidate_min_purchases"],
            p.candidate_prior if p.candidate_prior >= 0 else profile["candidate_prior"],
        ),
        dates=dates,
        train_weeks=weeks,
        ranker_weeks=ranker_weeks,
    )


def data_profile(purchases: int) -> dict:
    """The first profile of recsys/train/profiles.toml whose `max_purchases` holds the data."""
    profiles = tomllib.loads(PROFILES.read_text(encoding="utf-8"))["profile"]
    return next(p for p in profiles if purchases <= p["max_purchases"])


def grid(learning_rates: str, batch_sizes: str, epochs: int, dim: int) -> list[dict]:
    """Every (learning rate, batch size) pair, each checked before anything trains."""
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
    points = [
        {"learning_rate": lr, "batch_size": bs, "epochs": int(epochs), "embedding_dim": dim}
        for lr in rates
        for bs in sizes
    ]
    for point in points:
        try:
            HyperParameters(**point).validate()
        except ValueError as error:
            raise FlowInputError(f"{error}; fix --learning-rates/--batch-sizes/--epochs") from None
    return points


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FlowInputError(f"--{name} {value!r}: expected YYYY-MM-DD") from None


def split_dates(
    first: date, last: date, validation_start: str, test_start: str, train_weeks: int = 0
) -> dict[str, date]:
    """Test = last 7 days, validation = the 7 before, unless given; checked for order.
    Training starts `train_weeks` weeks before validation (0: on the first day of data)."""
    test = _day(test_start, "test-start") or last - timedelta(days=SPLIT_DAYS - 1)
    validation = _day(validation_start, "validation-start") or test - timedelta(days=SPLIT_DAYS)
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


def check_backtest(weeks: int, ranker_weeks: int, dates: dict[str, date]) -> None:
    """Every backtest week (the test week, without a backtest) needs the ranker's weeks
    and a week of training days for the model before them."""
    first_week = dates["test_start"] - timedelta(weeks=max(weeks - 1, 0))
    first_ranker_week = first_week - timedelta(weeks=ranker_weeks + 1)
    if first_ranker_week <= dates["first_day"] + timedelta(days=SPLIT_DAYS):
        raise FlowInputError(
            f"--backtest-weeks {weeks} / --ranker-weeks {ranker_weeks}: the first week the "
            f"ranker learns from would start on {first_ranker_week}, leaving less than a week "
            f"of training data after {dates['first_day']}; use fewer weeks."
        )


def check_splits(rows: dict[str, int], min_purchases: int, dates: dict[str, date]) -> None:
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


def photos(settings: Settings) -> bool:
    """Whether the run's articles have photos (a folder or a URL template). A folder that
    IMAGE_DIR names but that does not exist is a mistake, said before any data is read;
    the default folder missing means data without photos (`data/generate.py --no-images`):
    the run goes on, and the page and the service show placeholders."""
    if settings.image_url_template is not None:
        return True
    if settings.image_dir.is_dir():
        return True
    if "IMAGE_DIR" in settings.given:
        raise FlowInputError(
            f"IMAGE_DIR={settings.image_dir} does not exist: point it at the photos' folder "
            "(images/0XX/0XXXXXXXXX.jpg), or unset it for a run without photos."
        )
    return False
