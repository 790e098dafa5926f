"""AUCMEDI's third pillar, `NeuralNetwork`: a model built from an architecture key or object, trained,
predicted with, dumped and loaded, with AUCMEDI's constructor, attributes and transfer-learning schedule.

Keras 3 moved the batch workers from `fit` to the dataset: `workers`, `multiprocessing` and
`batch_queue_size` are given to each `DataGenerator` that is trained on or predicted (a generator that
set its own keeps them). Transfer learning freezes the nested backbone (AUCMEDI froze every layer before
its "avg_pool"), trains `tf_epochs` epochs at `tf_lr_start`, then unfreezes it and continues to `epochs`
at `tf_lr_end`; the history's keys are prefixed ``tl_`` and ``ft_``. The class attributes are AUCMEDI's
code's (``tf_epochs = 10``; its docstring says 5).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from medbench.architectures.info import BACKBONE_NAME
from medbench.architectures.registry import get_architecture
from medbench.aucmedi.neural_network.architectures.architecture import Architecture, architecture_class
from medbench.aucmedi.neural_network.architectures.classifier import Classifier
from medbench.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["NeuralNetwork"]

DEFAULT_ARCHITECTURE = "2D.Vanilla"


class NeuralNetwork:
    """A compiled Keras model for `n_labels` classes of `channels`-channel images (see the module docstring)."""

    tf_epochs = 10
    tf_lr_start = 1e-4
    tf_lr_end = 1e-5

    def __init__(
        self,
        n_labels: int | None,
        channels: int | None,
        input_shape: tuple[int, ...] | None = None,
        architecture: str | Architecture | None = None,
        pretrained_weights: bool = False,
        loss: Any = "categorical_crossentropy",
        metrics: Sequence[Any] = ("categorical_accuracy",),
        activation_output: str = "softmax",
        fcl_dropout: bool = True,
        meta_variables: int | None = None,
        learning_rate: float = 1e-4,
        batch_queue_size: int = 10,
        workers: int = 1,
        multiprocessing: bool = False,
        verbose: int = 1,
    ) -> None:
        self.n_labels, self.channels = n_labels, channels
        self.loss, self.metrics = loss, list(metrics)
        self.learning_rate = learning_rate
        self.batch_queue_size, self.workers, self.multiprocessing = batch_queue_size, workers, multiprocessing
        self.pretrained_weights = pretrained_weights
        self.activation_output, self.fcl_dropout, self.meta_variables = activation_output, fcl_dropout, meta_variables
        self.verbose = verbose
        if isinstance(architecture, Architecture):
            self.architecture = architecture
        else:
            if n_labels is None or channels is None:
                raise ConfigError("NeuralNetwork: n_labels and channels are needed unless an Architecture is given")
            key = get_architecture(architecture or DEFAULT_ARCHITECTURE).key
            head = Classifier(n_labels, activation_output, meta_variables, fcl_dropout)
            self.architecture = architecture_class(key)(head, channels, input_shape, pretrained_weights)
        self.meta_standardize = self.architecture.standardize_mode
        self.model = self.architecture.create_model()
        self._compile(self.learning_rate)
        self.input_shape = tuple(self.architecture.input)
        self.meta_input = self.input_shape[:-1]
        self.initialization_weights = self.model.get_weights()

    def _compile(self, learning_rate: float) -> None:
        self.model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=self.loss, metrics=self.metrics
        )

    def _feed(self, generator: Any) -> Any:
        """Give a generator the network's workers and queue size unless it set its own."""
        if isinstance(generator, keras.utils.PyDataset):
            if generator.workers == 1 and self.workers != 1:
                generator.workers = self.workers
            if not generator.use_multiprocessing and self.multiprocessing:
                generator.use_multiprocessing = True
            if generator.max_queue_size == 10:
                generator.max_queue_size = self.batch_queue_size
        return generator

    def _fit(self, training: Any, validation: Any, callbacks: Sequence[Any], epochs: int, **kwargs: Any) -> Any:
        return self.model.fit(
            self._feed(training),
            validation_data=self._feed(validation) if validation is not None else None,
            callbacks=list(callbacks),
            epochs=epochs,
            verbose=self.verbose,
            **kwargs,
        ).history

    def train(
        self,
        training_generator: Any,
        validation_generator: Any = None,
        epochs: int = 20,
        iterations: int | None = None,
        callbacks: Sequence[Any] = (),
        class_weights: dict[int, float] | Sequence[float] | None = None,
        transfer_learning: bool = False,
    ) -> dict[str, list[float]]:
        """Fit and return the history dict (``tl_``/``ft_`` keys after transfer learning)."""
        if isinstance(class_weights, np.ndarray | list | tuple):
            class_weights = {index: float(weight) for index, weight in enumerate(class_weights)}
        if iterations is not None:
            training_generator.set_length(iterations)
        options = {"steps_per_epoch": iterations, "class_weight": class_weights}
        try:
            if not transfer_learning:
                return self._fit(training_generator, validation_generator, callbacks, epochs, **options)
            backbone = self.model.get_layer(BACKBONE_NAME)
            backbone.trainable = False
            self._compile(self.tf_lr_start)
            start = self._fit(training_generator, validation_generator, callbacks, self.tf_epochs, **options)
            backbone.trainable = True
            self._compile(self.tf_lr_end)
            end = self._fit(
                training_generator, validation_generator, callbacks, epochs, initial_epoch=self.tf_epochs, **options
            )
            return {**{f"tl_{k}": v for k, v in start.items()}, **{f"ft_{k}": v for k, v in end.items()}}
        finally:
            if iterations is not None:
                training_generator.reset_length()

    def predict(self, prediction_generator: Any) -> np.ndarray:
        """Predictions of shape (n_samples, n_labels), in the generator's order."""
        return self.model.predict(self._feed(prediction_generator), verbose=self.verbose)

    def reset_weights(self) -> None:
        """Back to the weights the network was built with (train several models with one object)."""
        self.model.set_weights(self.initialization_weights)

    def dump(self, file_path: str | os.PathLike[str]) -> None:
        """Save the model (``.keras``, or legacy ``.h5``/``.hdf5``)."""
        self.model.save(os.fspath(file_path))

    def load(self, file_path: str | os.PathLike[str], custom_objects: dict[str, Any] | None = None) -> None:
        """Load a dumped model and compile it with the network's loss, metrics and learning rate."""
        import medbench.losses.focal  # noqa: F401  (registers the focal losses for deserialization)

        self.model = keras.models.load_model(os.fspath(file_path), custom_objects=custom_objects or {}, compile=False)
        self._compile(self.learning_rate)
