"""The batches of one split of an experiment's data: its images (and metadata) from the cache, with targets."""

from __future__ import annotations

import tensorflow as tf

from medbench.experiment_data import Split
from medbench.pipeline.config import PipelineConfig
from medbench.pipeline.dataset import evaluation_dataset, training_dataset
from medbench.preprocessing.cache import ImageCache


def training_batches(
    cache: ImageCache, split: Split, config: PipelineConfig, *, first_epoch: int, epochs: int
) -> tf.data.Dataset:
    """Epochs `first_epoch`..`epochs - 1` of the training split (see `training_dataset`)."""
    return training_dataset(
        cache,
        cache.rows(split.paths),
        split.targets,
        config,
        first_epoch=first_epoch,
        epochs=epochs,
        metadata=split.metadata,
    )


def evaluation_batches(cache: ImageCache, split: Split, config: PipelineConfig) -> tf.data.Dataset:
    """The split in its fixed order, each batch with its sample ids (see `evaluation_dataset`)."""
    return evaluation_dataset(cache, cache.rows(split.paths), split.targets, split.sample_ids, config, split.metadata)
