"""The exported flow run the service answers with: its folder (`recsys.run_folder`).

What it takes from the run: the query tower as arrays (`query_tower.npz`, applied in
numpy: `recsys.serve.tower`), the customer workflow's category tables, the article
embeddings, the learned rankers, the catalogue's names and images, and from
`run_info.json` what the flow chose to serve on the validation week and its candidate
rule. Neither TensorFlow nor NVTabular is imported, unless a run made before the tower's
arrays were exported needs them written once (`write_tower_weights`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from recsys.run_folder import (
    ARTICLE_EMBEDDINGS,
    ARTICLES,
    CUSTOMER_WORKFLOW,
    QUERY_TOWER,
    QUERY_TOWER_WEIGHTS,
    RANKERS,
    RunFolder,
    RunInfo,
)
from recsys.serve.tower import NumpyTower, TowerInputs
from recsys.strategy import ranker
from recsys.strategy.inputs import Candidates
from recsys.strategy.ranker import RankerModel
from recsys.train.embed import read_embeddings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedRun:
    """Everything an answer needs from the run, loaded once."""

    folder: RunFolder
    info: RunInfo
    tower: NumpyTower
    inputs: TowerInputs
    catalogue: Candidates  # every article's embedding
    articles: dict[str, dict]  # article_id -> {"prod_name", "image_path"}
    rankers: dict[str, RankerModel]

    @property
    def run_id(self) -> str:
        return self.info.run_id


def tower_weights(folder: RunFolder):
    """The run's `query_tower.npz`; written once from its SavedModel for a run made before
    the flow exported it (TensorFlow is imported for that alone)."""
    path = folder.file(QUERY_TOWER_WEIGHTS)
    if not path.is_file():
        from recsys.train.towers import write_tower_weights

        folder.require(QUERY_TOWER, CUSTOMER_WORKFLOW)
        log.warning("writing %s from the run's SavedModel (once)", path)
        write_tower_weights(folder.file(QUERY_TOWER), folder.file(CUSTOMER_WORKFLOW), path)
    return path


def load_run(folder: RunFolder) -> ServedRun:
    """Load a run's folder; a missing piece raises RunMissing naming it."""
    folder.require(CUSTOMER_WORKFLOW, ARTICLE_EMBEDDINGS, ARTICLES, RANKERS)
    tower = NumpyTower(tower_weights(folder))
    articles = pd.read_parquet(
        folder.file(ARTICLES), columns=["article_id", "prod_name", "image_path"]
    )
    ids, vectors = read_embeddings(folder.file(ARTICLE_EMBEDDINGS), "article_id")
    return ServedRun(
        folder=folder,
        info=folder.info(),
        tower=tower,
        inputs=TowerInputs(folder.file(CUSTOMER_WORKFLOW) / "categories", tower),
        catalogue=Candidates(vectors, ids),
        articles=articles.drop_duplicates("article_id").set_index("article_id").to_dict("index"),
        rankers=ranker.load(folder.file(RANKERS)),
    )
