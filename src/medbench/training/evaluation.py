"""Evaluation of a model on one split: predictions in the split's fixed order, then exact masked metrics."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from medbench.experiment_data import Split
from medbench.metrics.multiclass import SplitReport, evaluate_for_task
from medbench.pipeline.config import PipelineConfig
from medbench.preprocessing.cache import ImageCache
from medbench.training.split_inputs import evaluation_batches


def predict_with_ids(model: tf.keras.Model, dataset: tf.data.Dataset) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Run `model` over an evaluation dataset: (sample ids, predictions, targets), row-aligned by construction.

    A model built under a multi-replica strategy is called directly: its `predict_on_batch` would
    give every replica the whole batch and return each row once per replica.
    """
    forward = model.predict_on_batch
    if model.distribute_strategy.num_replicas_in_sync > 1:
        forward = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
    ids: list[str] = []
    predictions: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for images, batch_targets, batch_ids in dataset:
        predictions.append(np.asarray(forward(images), dtype=np.float64))
        targets.append(batch_targets.numpy())
        ids.extend(value.decode("utf-8") for value in batch_ids.numpy())
    if not ids:
        return [], np.zeros((0, 0)), np.zeros((0, 0))
    return ids, np.concatenate(predictions), np.concatenate(targets).astype(np.float64)


def evaluate_split(
    model: tf.keras.Model,
    split: Split,
    classes: tuple[str, ...],
    cache: ImageCache,
    config: PipelineConfig,
    task: str = "multilabel",
) -> tuple[SplitReport, list[str], np.ndarray]:
    """Predict a split in its fixed order and compute the exact metrics of its task from the predictions."""
    dataset = evaluation_batches(cache, split, config)
    ids, predictions, targets = predict_with_ids(model, dataset)
    if ids != list(split.sample_ids):
        raise RuntimeError("evaluation order changed: predictions would not match their sample ids")
    return evaluate_for_task(task, targets, predictions, classes), ids, predictions
