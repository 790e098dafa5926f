"""AUCMEDI's `Classifier`: the classification head an `Architecture` appends to its backbone.

GlobalAveragePooling (2D or 3D) → optional Dense(512) + Dropout(0.3) (`fcl_dropout`) → optional metadata
block: Concatenate → Dense(512, relu) → Dropout(0.3) → Dense(256, relu) → Dropout(0.3) → Dense(n_labels) →
Activation(`activation_output`). It is medbench's `classifier_head`; the one difference from AUCMEDI is
the ReLU of the optional Dense(512), which AUCMEDI leaves linear so that it composes with the output
layer into a single linear map.
"""

from __future__ import annotations

import keras

from medbench.architectures.base import METADATA_INPUT
from medbench.architectures.head import classifier_head
from medbench.errors import ConfigError

__all__ = ["Classifier"]


class Classifier:
    """The head of `n_labels` outputs; `meta_variables` adds a second model input of that many features."""

    def __init__(
        self,
        n_labels: int,
        activation_output: str = "softmax",
        meta_variables: int | None = None,
        fcl_dropout: bool = True,
    ) -> None:
        if isinstance(n_labels, bool) or not isinstance(n_labels, int) or n_labels < 1:
            raise ConfigError(f"Classifier: n_labels {n_labels!r}; expected a positive number of classes")
        if meta_variables is not None and (isinstance(meta_variables, bool) or int(meta_variables) < 1):
            raise ConfigError(f"Classifier: meta_variables {meta_variables!r}; expected None or a positive count")
        self.n_labels = n_labels
        self.activation_output = activation_output
        self.meta_variables = None if meta_variables is None else int(meta_variables)
        self.fcl_dropout = bool(fcl_dropout)

    def build(self, model_input: keras.KerasTensor, model_output: keras.KerasTensor) -> keras.Model:
        """The functional model from `model_input` through the backbone output `model_output` and the head."""
        metadata = keras.Input(shape=(self.meta_variables,), name=METADATA_INPUT) if self.meta_variables else None
        outputs = classifier_head(
            model_output, self.n_labels, activation=self.activation_output, fcl=self.fcl_dropout, metadata=metadata
        )
        inputs = [model_input, metadata] if metadata is not None else model_input
        return keras.Model(inputs, outputs)
