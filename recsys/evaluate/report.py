"""The run's report: its Metaflow cards (tables and charts) and its Comet summary.

The flow's `evaluate` and `backtest` steps hand their tables here; nothing here computes
a figure, it only lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from recsys.settings import Settings
from recsys.strategy.served import Served
from recsys.train.tracking import start_experiment

VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"


@dataclass(frozen=True)
class TestWeek:
    """The test week's results and what produced them."""

    dates: dict[str, date]
    best: dict  # the chosen grid point
    device: str
    served: Served
    metrics: pd.DataFrame
    differences: pd.DataFrame
    grid_results: list[dict]

    def fill_card(self, card) -> None:
        """Every method's metrics, the paired differences, two charts."""
        from metaflow.cards import Markdown, Table, VegaChart

        card.append(
            Markdown(
                f"# Test week {self.dates['test_start']} .. {self.dates['end']}\n"
                f"Best grid point: `{self.best}` on {self.device}. Served: "
                f"{self.served.describe()} (both chosen on the validation week)."
            )
        )
        card.append(Table.from_dataframe(self.metrics.round(4)))
        card.append(
            Markdown(
                "## Paired differences, method minus baseline\n"
                "Same customers, 95% bootstrap intervals over customers: an interval above "
                "zero means the method beats that baseline on this week."
            )
        )
        card.append(Table.from_dataframe(self.differences.round(4)))
        card.append(VegaChart(_bar_chart(self.metrics[self.metrics["segment"] != "all"])))
        card.append(VegaChart(_curves_chart(self.grid_results)))

    def log_to_comet(self, settings: Settings, run_id: str, tags: list[str], where: Path) -> None:
        """The metrics per method and segment, as one Comet experiment."""
        experiment = start_experiment(settings, f"{run_id}-evaluation", tags, where)
        served = {"warm_strategy": self.served.warm, "fallback": self.served.cold}
        experiment.log_parameters({**self.best, **served, "metaflow_run": run_id})
        for row in self.metrics.to_dict("records"):
            values = {k: v for k, v in row.items() if k not in ("model", "segment") and v == v}
            experiment.log_metrics(values, prefix=f"test/{row['model']}/{row['segment']}")
        experiment.log_table("test_metrics.csv", tabular_data=self.metrics)
        experiment.end()


def backtest_card(card, weeks: int, metrics: pd.DataFrame, differences: pd.DataFrame) -> None:
    """The backtest's weeks and their pooled figures, all customers."""
    from metaflow.cards import Markdown, Table

    card.append(
        Markdown(
            f"# Backtest: the last {weeks} weeks\n"
            "Each week: the chosen configuration trained on everything before it, lists "
            "as of its start; 95% bootstrap intervals over customers (`pooled`: every "
            "week's customers together)."
        )
    )
    card.append(Table.from_dataframe(metrics.round(4)))
    card.append(Table.from_dataframe(differences.round(4)))


def _bar_chart(metrics: pd.DataFrame) -> dict:
    return {
        "$schema": VEGA_LITE,
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
        "$schema": VEGA_LITE,
        "title": "Training loss per epoch",
        "data": {"values": values},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "epoch", "type": "quantitative"},
            "y": {"field": "loss", "type": "quantitative"},
            "color": {"field": "grid point", "type": "nominal"},
        },
    }
