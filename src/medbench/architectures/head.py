"""Classifier head: backbone features (+ optional metadata) → class probabilities, as AUCMEDI's `Classifier`.

GlobalAveragePooling (2D or 3D) → optional Dense(512, relu) + Dropout(0.3) (or dense layers of given widths,
each with its Dropout: TIML's 2 × 2048) → optional metadata:
Concatenate → Dense(512, relu) → Dropout(0.3) → Dense(256, relu) → Dropout(0.3) → Dense(n_classes) →
activation. AUCMEDI's optional Dense(512) has no activation, so it and the output layer compose to one
linear map; medbench gives it a ReLU, which is what a hidden layer is for. The output is float32 even
under a mixed-precision policy, so losses and metrics stay exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from medbench.errors import ConfigError

FCL_UNITS = 512
METADATA_UNITS = (512, 256)
"""The dense layers after the image features and the metadata are concatenated (each with Dropout)."""
ACTIVATIONS = ("sigmoid", "softmax", "linear")


def classifier_head(
    features: keras.KerasTensor,
    n_classes: int,
    *,
    activation: str = "sigmoid",
    fcl: bool | Sequence[int] = False,
    dropout: float = 0.3,
    metadata: keras.KerasTensor | None = None,
) -> keras.KerasTensor:
    """Append the classifier to `features` (4D feature map or 2D vector) and return the output.

    Args:
        features: backbone output; 4D maps are pooled with GlobalAveragePooling2D.
        n_classes: output units.
        activation: "sigmoid" (multi-label), "softmax" (one class per image) or "linear" (logits).
        fcl: add Dense(512, relu) + Dropout(dropout) before the output layer; a sequence of widths adds one
            Dense(width, relu) + Dropout per width ("head_dense", "head_dense_2", …).
        dropout: dropout rate of the fully connected block, in [0, 1).
        metadata: a (batch, n) tensor (e.g. the metadata `keras.Input`), concatenated with the image
            features and passed through Dense(512, relu), Dropout, Dense(256, relu), Dropout.
    """
    if n_classes < 1:
        raise ConfigError(f"n_classes {n_classes}: expected at least 1 output class")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"head activation {activation!r}: expected one of {', '.join(ACTIVATIONS)}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"head dropout {dropout}: expected a rate in [0, 1)")
    rank = len(features.shape)
    if rank == 4:
        x = layers.GlobalAveragePooling2D(name="head_pool")(features)
    elif rank == 5:
        x = layers.GlobalAveragePooling3D(name="head_pool")(features)
    elif rank == 2:
        x = features
    else:
        raise ConfigError(
            f"backbone features of shape {tuple(features.shape)}: expected (batch, h, w, c), (batch, d, h, w, c) "
            "or (batch, c)"
        )
    widths = (FCL_UNITS,) if fcl is True else tuple(fcl or ())
    for index, units in enumerate(widths, start=1):
        suffix = "" if index == 1 else f"_{index}"
        x = layers.Dense(int(units), activation="relu", name=f"head_dense{suffix}")(x)
        x = layers.Dropout(dropout, name=f"head_dropout{suffix}")(x)
    if metadata is not None:
        x = layers.Concatenate(name="head_concat")([x, metadata])
        for index, units in enumerate(METADATA_UNITS, start=1):
            x = layers.Dense(units, activation="relu", name=f"metadata_dense_{index}")(x)
            x = layers.Dropout(dropout, name=f"metadata_dropout_{index}")(x)
    x = layers.Dense(n_classes, name="logits")(x)
    return layers.Activation(activation, dtype="float32", name="predictions")(x)
