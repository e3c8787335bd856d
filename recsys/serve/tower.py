"""The query tower without TensorFlow: its weights as arrays and a numpy forward pass.

Why: a Keras call costs over a millisecond per request even traced as a `tf.function`
(docs/serving.md), and TensorFlow's import adds tens of seconds and hundreds of MB to
the service's start. The tower is embedding look-ups, a concatenation and two dense
layers, which numpy does in tens of microseconds. The weights come from the run's
`query_tower.npz` (`recsys.train.towers.write_tower_weights`; written by the flow's
export, or once from the SavedModel for a run made before it). A test checks the numpy
pass against Keras to 1e-5.

The customer workflow is only Categorify, so its category tables become array look-ups
(`TowerInputs`): the profile is encoded once per customer when the online state is built
(`recsys.serve.state`), the month and the recent articles per request.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.run_folder import RunMissing
from recsys.train.features import CUSTOMER_CATEGORICALS
from recsys.train.recent_articles import NO_ARTICLE, RECENT_COLUMNS

NULL_INDEX, OOV_INDEX = 1, 2  # Categorify: 0 padding, 1 null, 2 out-of-vocabulary
PROFILE_COLUMNS = CUSTOMER_CATEGORICALS  # encoded once per customer (the state's columns)


class NumpyTower:
    """The query tower's forward pass over encoded inputs (n, columns) -> (n, d) float32."""

    def __init__(self, path: Path) -> None:
        with np.load(path) as arrays:
            self.columns = tuple(str(c) for c in arrays["columns"])
            domains = [str(d) for d in arrays["domains"]]
            self.domains = dict(zip(self.columns, domains, strict=True))
            self._tables = [arrays[f"table:{domain}"] for domain in domains]
            self._layers = []
            while f"dense:{len(self._layers)}:kernel" in arrays:
                i = len(self._layers)
                relu = str(arrays[f"dense:{i}:activation"]) == "relu"
                self._layers.append((arrays[f"dense:{i}:kernel"], arrays[f"dense:{i}:bias"], relu))

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        """Codes in `columns` order (Categorify's) -> query embeddings, float32."""
        x = np.concatenate([t[codes[:, i]] for i, t in enumerate(self._tables)], axis=1)
        for kernel, bias, relu in self._layers:
            x = x @ kernel + bias
            if relu:
                np.maximum(x, 0, out=x)
        return x.astype("float32", copy=False)


class TowerInputs:
    """The customer workflow's Categorify as array look-ups over its category tables.

    In `unique.<domain>.parquet` the row index is the code; a value absent from it is
    out-of-vocabulary (2), a missing value null (1), as Categorify encodes. The recent
    slots share one domain (one table)."""

    def __init__(self, categories: Path, tower: NumpyTower) -> None:
        self.columns = tower.columns
        self._domains = tower.domains
        self._vocabularies: dict[str, pd.Series] = {}
        for column, domain in tower.domains.items():
            if domain not in self._vocabularies:
                self._vocabularies[domain] = _vocabulary(categories, domain, column)
        self.profile_at = [self.columns.index(c) for c in PROFILE_COLUMNS]
        self.month_at = self.columns.index("month")
        self.recent_at = [self.columns.index(c) for c in RECENT_COLUMNS]
        self.no_article = int(self.codes("recent_1", [NO_ARTICLE])[0])
        self._months = self.codes("month", [str(m) for m in range(1, 13)])  # January first

    def codes(self, column: str, values) -> np.ndarray:
        """One column's values (text, None for missing) as codes, int64."""
        vocabulary = self._vocabularies[self._domains[column]]
        values = pd.Series(values, dtype=object)
        found = vocabulary.index.get_indexer(values.astype(str))
        codes = np.where(found < 0, OOV_INDEX, vocabulary.to_numpy()[found])
        return np.where(values.isna().to_numpy(), NULL_INDEX, codes).astype("int64")

    def known_customers(self) -> list[str]:
        """The customer ids the model has an embedding row for (its vocabulary)."""
        return self._vocabularies[self._domains["customer_id"]].index.tolist()

    def encode(self, prepared: pd.DataFrame) -> np.ndarray:
        """Prepared rows (`prepare_customers`) -> the tower's inputs (n, columns), int64."""
        return np.stack([self.codes(c, prepared[c].to_numpy()) for c in self.columns], axis=1)

    def profiles(self, prepared: pd.DataFrame) -> np.ndarray:
        """The PROFILE_COLUMNS' codes of prepared rows (n, 7), int32: what the state keeps."""
        return np.stack([self.codes(c, prepared[c].to_numpy()) for c in PROFILE_COLUMNS], 1).astype(
            "int32"
        )

    def assemble(self, profiles: np.ndarray, month: int, recent: np.ndarray) -> np.ndarray:
        """The tower's inputs from the state's profile codes (n, 7), the month of the day
        recommended for, and the recent slots' codes (n, 4)."""
        codes = np.empty((len(profiles), len(self.columns)), dtype="int64")
        codes[:, self.profile_at] = profiles
        codes[:, self.month_at] = self._months[month - 1]
        codes[:, self.recent_at] = recent
        return codes


def _vocabulary(categories: Path, domain: str, column: str) -> pd.Series:
    """A category table as a Series: value (text) -> code (its row index)."""
    path = categories / f"unique.{domain}.parquet"
    if not path.is_file():
        raise RunMissing(
            f"{path} is missing: the query tower's input {column!r} is not a "
            "category this service can encode (a run from another version?)"
        )
    table = pd.read_parquet(path, columns=[domain])[domain].dropna()
    codes = pd.Series(table.index.to_numpy(), index=table.astype(str).to_numpy())
    return codes[~codes.index.duplicated(keep="last")]
