"""Where training runs: tf.distribute strategies and the mixed-precision dtype policy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras
import tensorflow as tf

from medbench.errors import ConfigError


def distribution_strategy(name: str, tf_config: str | None = None) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `name` (see ExperimentOptions.strategy).

    "multiworker" needs the cluster in TF_CONFIG (`Settings.tf_config`); TensorFlow reads it itself.
    """
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if not tf_config:
            raise ConfigError("strategy 'multiworker' needs TF_CONFIG (the cluster and this worker's task) to be set")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


@contextmanager
def dtype_policy(name: str | None) -> Iterator[None]:
    """Build models under the Keras dtype policy `name` (None: unchanged), restoring the global one after."""
    previous = keras.config.dtype_policy()
    if name is not None:
        keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
