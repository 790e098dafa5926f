"""Test-time augmentation (AUCMEDI's ``predict_augmenting``) and member predictions recomputed from a model.

Each cycle predicts the whole split once more, every batch augmented by the training pipeline's own host
augmentation (`medbench.pipeline.augmentation.augment_batch`) with a seed drawn from (seed, cycle, batch),
so the same options give the same predictions on any run. The cycles are then aggregated
(`medbench.ensemble.aggregate`). With one cycle and no augmentation this is the plain evaluation.
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from medbench.architectures.base import IMAGE_INPUT
from medbench.architectures.standardization import load_run_model
from medbench.ensemble.aggregate import aggregate
from medbench.ensemble.members import PARTS, SplitPredictions
from medbench.ensemble.options import TTAOptions
from medbench.errors import ConfigError
from medbench.experiment_data import prepare
from medbench.pipeline.augmentation import augment_batch
from medbench.pipeline.config import PipelineConfig
from medbench.pipeline.dataset import AUTOTUNE, epoch_seed
from medbench.runs.saved_run import SavedRun
from medbench.settings import Settings
from medbench.training.evaluation import predict_with_ids
from medbench.training.split_inputs import evaluation_batches

logger = logging.getLogger(__name__)

TTA_STREAM = 2
"""The random stream of test-time augmentation (training uses 0 for the order and 1 for its augmentation)."""


def augmented(dataset: tf.data.Dataset, augmentations: tuple[str, ...], seed: int, cycle: int) -> tf.data.Dataset:
    """An evaluation dataset (inputs, targets, ids) with batch b of `cycle` augmented from (seed, cycle, b)."""
    if not augmentations:
        return dataset
    base = epoch_seed(seed, cycle, TTA_STREAM)

    def augment(number: tf.Tensor, batch: tuple) -> tuple:
        inputs, targets, ids = batch
        batch_seed = tf.random.experimental.stateless_fold_in(base, number)
        if isinstance(inputs, dict):
            inputs = {**inputs, IMAGE_INPUT: augment_batch(inputs[IMAGE_INPUT], batch_seed, augmentations)}
        else:
            inputs = augment_batch(inputs, batch_seed, augmentations)
        return inputs, targets, ids

    return dataset.enumerate().map(augment, num_parallel_calls=AUTOTUNE, deterministic=True)


def predict_augmenting(
    model: tf.keras.Model,
    dataset: tf.data.Dataset,
    options: TTAOptions,
    augmentations: tuple[str, ...],
    *,
    task: str = "multilabel",
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(sample ids, aggregated predictions, targets) of `options.n_cycles` augmented passes over `dataset`.

    Args:
        model: a run's model (uint8 images in).
        dataset: the split's evaluation batches (inputs, targets, sample ids), in fixed order.
        options: cycles, aggregate and seed.
        augmentations: the augmentations to draw ("affine", "color"); () predicts the plain images.
        task: the data's task, which decides how `vote` and `softmax` aggregate.
    """
    cycles = []
    ids: list[str] = []
    targets = np.zeros((0, 0))
    for cycle in tqdm(range(options.n_cycles), desc="test-time augmentation", unit="cycle", leave=False):
        cycle_ids, predictions, targets = predict_with_ids(
            model, augmented(dataset, augmentations, options.seed, cycle)
        )
        if cycle and cycle_ids != ids:
            raise RuntimeError("test-time augmentation changed the order of the samples")
        ids = cycle_ids
        cycles.append(predictions)
    return ids, aggregate(np.stack(cycles), options.aggregate, task=task), targets


def model_predictions(run: SavedRun, settings: Settings, tta: TTAOptions | None) -> dict[str, SplitPredictions]:
    """The run's val and test predictions recomputed from its model.keras, test-time augmented when asked.

    The data is rebuilt from the run's spec, as re-evaluation does, so the plain predictions equal the
    stored ones.
    """
    if not run.run_dir.model_path.is_file():
        raise ConfigError(f"{run.run_dir.path}: no model.keras (the run did not finish); expected a finished run")
    spec = run.spec
    data, cache = prepare(spec, settings)
    config = PipelineConfig.for_spec(spec)
    model = load_run_model(run.run_dir.model_path, run.standardize_mode, run.image_channels)
    parts = {}
    for part in PARTS:
        split = getattr(data, part)
        dataset = evaluation_batches(cache, split, config)
        if tta is None:
            ids, predictions, _ = predict_with_ids(model, dataset)
        else:
            augmentations = tta.augmentations_for(spec.benchmark.augmentations)
            ids, predictions, _ = predict_augmenting(model, dataset, tta, augmentations, task=data.task)
        if ids != list(split.sample_ids):
            raise RuntimeError("evaluation order changed: predictions would not match their sample ids")
        parts[part] = SplitPredictions(tuple(ids), np.asarray(split.targets, dtype=np.float64), predictions)
        logger.debug("run %s: %d %s predictions from its model", run.run_id, len(ids), part)
    return parts
