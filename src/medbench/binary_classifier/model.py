"""The network and loss of a `BinaryClassifier`: a registry backbone on normalised floats, one sigmoid unit.

The model takes the normalised float32 images directly: input "image" → the registry backbone (built for
the data's own 1-3 channels, randomly initialised) → the standard classifier head with one unit,
Dense "logits" → sigmoid "predictions". It has no `Standardization` layer, unlike `SimpleBaseArchitecture`:
the clip-and-min-max normalisation has already mapped each channel onto [0, 1], the range the "unit"
standardize mode of the from-scratch networks gives uint8 images, and the floats keep the precision of
inputs that are not 8-bit (pyBIA's astronomical counts) which a uint8 input would round away; that layer
also takes only 1 or 3 channels. The sigmoid is the last layer: pyBIA's batch-norm variant put a
BatchNormalization after it, which returns values outside [0, 1] that are no probabilities.

`recalibrate_batch_norm` re-estimates the BatchNormalization statistics after training (PreciseBN, Wu &
Johnson 2021): a small dataset gives a few steps per epoch, after which the moving averages still hold
much of their initial values and a classifier that is right in training predicts one class at inference.

Every loss here works on probabilities, as the sigmoid gives them (pyBIA's focal loss set
``from_logits=True`` on probabilities, i.e. applied a second sigmoid).
"""

from __future__ import annotations

import logging

import keras
import numpy as np

from medbench.architectures.head import classifier_head
from medbench.architectures.info import BACKBONE_NAME
from medbench.architectures.registry import get_architecture
from medbench.binary_classifier.config import BinaryClassifierConfig
from medbench.errors import ConfigError
from medbench.losses.focal import BinaryFocalLoss
from medbench.losses.masked_crossentropy import masked_binary_crossentropy, weighted_binary_crossentropy
from medbench.training.model import make_optimizer

__all__ = ["IMAGE_INPUT", "build_network", "compile_network", "make_binary_loss", "recalibrate_batch_norm"]

logger = logging.getLogger(__name__)

IMAGE_INPUT = "image"


def build_network(config: BinaryClassifierConfig, image_shape: tuple[int, int, int]) -> keras.Model:
    """The uncompiled model for (height, width, channels) float32 images, output (batch, 1) probabilities.

    Raises:
        ConfigError: images smaller than the architecture's minimum side.
    """
    info = get_architecture(config.architecture)
    height, width, channels = image_shape
    if min(height, width) < info.min_input_size:
        raise ConfigError(
            f"images of {height}x{width} px for {info.key}: expected height and width of at least "
            f"{info.min_input_size} px (resize the stacks, e.g. with medbench.augment's image_size)"
        )
    image = keras.Input(shape=image_shape, dtype="float32", name=IMAGE_INPUT)
    backbone = info.builder(image_shape, weights=None, imagenet=False, name=BACKBONE_NAME)
    outputs = classifier_head(backbone(image), 1, activation="sigmoid", fcl=config.fcl, dropout=config.dropout)
    model = keras.Model(image, outputs, name=f"binary_{info.name.lower()}")
    logger.debug("built %s for %s images: %d weights", info.key, image_shape, model.count_params())
    return model


def make_binary_loss(config: BinaryClassifierConfig) -> keras.losses.Loss:
    """The loss `config.loss` names, computed on probabilities (never from logits)."""
    if config.loss == "focal":
        return BinaryFocalLoss(config.focal_alpha, gamma=config.focal_gamma)
    if config.loss == "weighted_binary_crossentropy":
        return weighted_binary_crossentropy([config.weight])
    return masked_binary_crossentropy()


def compile_network(model: keras.Model, config: BinaryClassifierConfig) -> keras.Model:
    """Compile `model` with a fresh optimizer, the config's loss and binary accuracy at its threshold."""
    model.compile(
        optimizer=make_optimizer(config.optimizer, config.learning_rate),
        loss=make_binary_loss(config),
        metrics=[keras.metrics.BinaryAccuracy(name="binary_accuracy", threshold=config.threshold)],
    )
    return model


def _batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer of `model`, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(_batch_norm_layers(layer))
        elif isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
    return found


def recalibrate_batch_norm(model: keras.Model, images: np.ndarray, batch_size: int, seed: int = 0) -> int:
    """Set every BatchNormalization's moving mean and variance to its average over `images`.

    The images go through the model once, in shuffled batches in training mode (batch statistics), with
    each layer's momentum set to the share of the images already seen, so the moving statistics end as the
    size-weighted average of the batches' statistics; the weights are not changed and the momentum is
    restored. Returns the number of layers recalibrated (0: the model has none, nothing is run).
    """
    layers = _batch_norm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    order = np.random.default_rng(seed).permutation(len(images))
    seen = 0
    try:
        for start in range(0, len(images), batch_size):
            batch = images[order[start : start + batch_size]]
            for layer in layers:
                layer.momentum = seen / (seen + len(batch))
            model(batch, training=True)
            seen += len(batch)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    logger.debug("recalibrated %d BatchNormalization layers on %d images", len(layers), seen)
    return len(layers)
