"""The Merlin two-tower model: build, train, embed, and score against the whole catalogue.

Training uses in-batch negatives with the logQ (popularity) correction: without it the
popular articles, which are most often someone else's in-batch negative, get pushed
down too hard and the model falls below the popularity baseline (stack-facts.md).

The metrics Keras prints during `fit` are *in-batch* metrics. Catalogue metrics come
from `top_k` over the exported embeddings (see `recsys.evaluate.metrics`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.train.recent_articles import RECENT_COLUMNS

ID_EMBEDDING_DIM = 64
FEATURE_EMBEDDING_DIM = 16
RECENT_EMBEDDING_DIM = 32  # the recent-article slots: one table, articles need room
# Adagrad moves a row only when it is looked up, so its steps must be larger than Adam's,
# whose moments keep moving every row for many steps after each lookup.
EMBEDDING_LR_FACTOR = 10.0


@dataclass(frozen=True)
class HyperParameters:
    """One point of the grid; `validate` rejects values that cannot train."""

    learning_rate: float
    batch_size: int
    epochs: int
    embedding_dim: int = 64
    logq: float = 1.0  # strength of the logQ correction (0: none; 1: the full log(frequency))
    # The query tower's own embedding per customer id. Without it, the tower is the same
    # function of profile and recent articles for every customer, known or not.
    customer_ids: bool = True

    def validate(self) -> None:
        problems = []
        if not 0 < self.learning_rate < 1:
            problems.append(f"learning rate {self.learning_rate} (expected 0 < lr < 1)")
        if self.batch_size < 2:
            problems.append(f"batch size {self.batch_size} (in-batch negatives need >= 2)")
        if self.epochs < 1:
            problems.append(f"epochs {self.epochs} (expected >= 1)")
        if self.embedding_dim < 1:
            problems.append(f"embedding dim {self.embedding_dim} (expected >= 1)")
        if not 0 <= self.logq <= 2:
            problems.append(f"logQ strength {self.logq} (expected 0..2)")
        if problems:
            raise ValueError("invalid hyperparameters: " + "; ".join(problems))


@dataclass
class TrainingResult:
    """What a training branch hands on: history, timings and the two encoders."""

    history: dict[str, list[float]]
    seconds_per_epoch: list[float]
    examples: int
    device: str
    model: object = field(repr=False)  # the Keras RetrievalModelV2

    @property
    def examples_per_second(self) -> float:
        return self.examples / (sum(self.seconds_per_epoch) / len(self.seconds_per_epoch))


def training_device() -> str:
    """'GPU:0' when TensorFlow sees a GPU (Merlin then trains there), else 'CPU'."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU:0 ({gpus[0].name})" if gpus else "CPU"


def build_model(schema, item_frequencies: np.ndarray, params: HyperParameters):
    """TwoTowerModelV2: MLP towers over embeddings, in-batch negatives, logQ correction.

    The query tower's recent-article slots share one embedding table (their Categorify
    domain is one): an article has one vector whichever slot it is in, and the slots'
    vectors are concatenated, so the MLP also sees which purchase is the newest."""
    import merlin.models.tf as mm
    from merlin.models.tf.outputs.base import DotProduct
    from merlin.models.tf.transforms.bias import PopularityLogitsCorrection
    from merlin.schema import Tags

    user_schema = schema.select_by_tag(Tags.USER)
    if not params.customer_ids:
        user_schema = user_schema.excluding_by_tag(Tags.USER_ID)
    item_schema = schema.select_by_tag(Tags.ITEM)

    def tower(tower_schema):
        dims = {
            col.name: ID_EMBEDDING_DIM if Tags.ID in col.tags else FEATURE_EMBEDDING_DIM
            for col in tower_schema.select_by_tag(Tags.CATEGORICAL)
        }
        dims.update(dict.fromkeys(set(RECENT_COLUMNS) & set(dims), RECENT_EMBEDDING_DIM))
        inputs = mm.InputBlockV2(
            tower_schema,
            categorical=mm.Embeddings(tower_schema.select_by_tag(Tags.CATEGORICAL), dim=dims),
        )
        mlp = mm.MLPBlock(
            [params.embedding_dim * 2, params.embedding_dim], no_activation_last_layer=True
        )
        return mm.Encoder(inputs, mlp)

    logq = PopularityLogitsCorrection(
        item_frequencies.astype("float32"),
        reg_factor=params.logq,
        schema=item_schema.select_by_tag(Tags.ITEM_ID),
    )
    output = mm.ContrastiveOutput(
        DotProduct(),
        negative_samplers="in-batch",
        schema=item_schema.select_by_tag(Tags.ITEM_ID),
        post=logq,
        store_negative_ids=True,
    )
    model = mm.TwoTowerModelV2(tower(user_schema), tower(item_schema), outputs=output)
    model.compile(optimizer=_optimizer(model, params), metrics=[mm.RecallAt(12), mm.NDCGAt(12)])
    return model


def _optimizer(model, params: HyperParameters):
    """Sparse Adagrad for the embedding tables, Adam for the MLPs.

    Adam (legacy or not) decays its moments and moves the variable over the *whole* table
    at every step: with the full data's hundreds of thousands of customer ids that dense
    update dominated the step (~4x slower). Adagrad's sparse apply touches only the rows
    looked up in the batch. Its accumulator starts at 0, so the first step of a row is
    about the learning rate whatever its gradient's scale (as with Adam).
    """
    import merlin.models.tf as mm
    import tensorflow as tf

    tables = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, mm.EmbeddingTable)
    ]
    sparse = tf.keras.optimizers.legacy.Adagrad(
        learning_rate=params.learning_rate * EMBEDDING_LR_FACTOR, initial_accumulator_value=0.0
    )
    return mm.MultiOptimizer(
        default_optimizer=tf.keras.optimizers.legacy.Adam(learning_rate=params.learning_rate),
        optimizers_and_blocks=[mm.OptimizerBlocks(sparse, tables)],
    )


def train(
    encoded,
    schema,
    item_frequencies: np.ndarray,
    params: HyperParameters,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    seed: int = 42,
) -> TrainingResult:
    """Fit on encoded interaction rows, read part by part in their stored order.

    `encoded` is, per order, a list of encoded Parquet parts (the flow: epoch e reads
    order e, cycling when there are fewer orders than epochs) or one frame (benchmarks,
    tests). Rows are not reshuffled here: `recsys.train.dataset` wrote each order in its own
    seeded hash order, and reading it as stored makes the batches the same however the
    rows are cut into parts. `on_epoch_end(epoch, logs)` sees each epoch's logs.
    """
    import merlin.io
    import merlin.models.tf as mm
    import tensorflow as tf

    params.validate()
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()  # same data + seed -> same model
    if isinstance(encoded, pd.DataFrame):
        datasets = [merlin.io.Dataset(encoded, schema=schema)]
    else:
        datasets = [
            merlin.io.Dataset([str(p) for p in parts], engine="parquet", schema=schema)
            for parts in encoded
        ]
    model = build_model(schema, item_frequencies, params)
    examples = int(datasets[0].num_rows)
    timer = _EpochTimer(on_epoch_end, examples * params.epochs, params.batch_size)
    history: dict[str, list[float]] = {}
    for epoch in range(params.epochs):
        loader = mm.Loader(
            datasets[epoch % len(datasets)], batch_size=params.batch_size, shuffle=False
        )
        fitted = model.fit(
            loader, epochs=epoch + 1, initial_epoch=epoch, verbose=0, callbacks=[timer]
        )
        for name, values in fitted.history.items():
            history.setdefault(name, []).extend(float(v) for v in values)
    timer.progress.finish()
    return TrainingResult(
        history=history,
        seconds_per_epoch=timer.seconds,
        examples=examples,
        device=training_device(),
        model=model,
    )


def embed(encoder, encoded: pd.DataFrame, schema, batch_size: int = 8192) -> np.ndarray:
    """One float32 row per input row, in input order (the tower's output embedding)."""
    import merlin.io
    import merlin.models.tf as mm

    columns = [name for name in schema.column_names if name in encoded.columns]
    loader = mm.Loader(
        merlin.io.Dataset(encoded[columns], schema=schema.select_by_name(columns)),
        batch_size=batch_size,
        shuffle=False,
    )
    return np.asarray(encoder.predict(loader, verbose=0), dtype="float32")


def write_tower_weights(tower_dir: Path, workflow_dir: Path, path: Path) -> Path:
    """The saved query tower (`save_encoder`) as plain arrays in one `.npz`, for a numpy
    forward pass in the service (`recsys.serve.tower`): no TensorFlow per request or at
    its start. Holds the input columns in the order the tower concatenates them
    (Merlin's ConcatFeatures sorts them by name), each column's category domain and
    embedding table, and each dense layer's kernel, bias and activation (relu or linear).
    """
    import merlin.models.tf as mm
    import nvtabular as nvt
    import tensorflow as tf

    model = tf.keras.models.load_model(str(tower_dir), compile=False)
    schema = nvt.Workflow.load(str(workflow_dir)).output_schema
    columns = sorted(schema.column_names)
    domains = [schema[column].int_domain.name or column for column in columns]
    layers = list(model._flatten_layers(include_self=False))
    arrays = {"columns": np.array(columns), "domains": np.array(domains)}
    for layer in layers:
        if isinstance(layer, mm.EmbeddingTable):
            arrays[f"table:{layer.name}"] = layer.table.embeddings.numpy()
    dense = [layer for layer in layers if isinstance(layer, tf.keras.layers.Dense)]
    for i, layer in enumerate(dense):
        activation = layer.activation.__name__
        if activation not in ("relu", "linear"):
            raise ValueError(f"{layer.name}: activation {activation} has no numpy twin here")
        arrays |= {f"dense:{i}:kernel": layer.kernel.numpy(), f"dense:{i}:bias": layer.bias.numpy(),
                   f"dense:{i}:activation": np.array(activation)}  # fmt: skip
    missing = {f"table:{d}" for d in domains} - set(arrays)
    if missing:
        raise ValueError(f"{tower_dir}: no embedding table for {sorted(missing)}")
    np.savez(path, **arrays)
    return path


def save_encoder(encoder, path: Path) -> Path:
    """A tower as a Keras SavedModel in `path` (loadable with tf.keras.models.load_model)."""
    encoder.save(str(path))
    return path


class _EpochTimer:
    """Keras callback: wall time per epoch, a progress line while training, and a hook for
    per-epoch logging (Comet)."""

    def __new__(cls, hook, total_examples: int, batch_size: int):
        import tensorflow as tf

        from recsys.progress import Progress

        class Timer(tf.keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds: list[float] = []
                self.progress = Progress("train", total_examples, unit="examples")

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                self.progress.advance(batch_size)

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._start)
                if hook is not None:
                    hook(epoch, {k: float(v) for k, v in (logs or {}).items()})

        return Timer()
