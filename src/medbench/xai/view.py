"""A model as the explanation methods see it: standardization → backbone → head, run layer by layer.

Every medbench model nests its backbone as a sub-model named "backbone", so a layer inside it is not
connected to the outer model's inputs and off-the-shelf code fails there ("not connected to inputs").
`ModelView` runs the parts itself: the layers before the backbone (the `Standardization` layer), the
backbone (or a two-output copy of it for a named inner layer: that layer's map and the backbone's
output) and then each head layer on the features, so that a gradient tape sees the whole path from
the input, or from the feature map, to the class scores. Models saved before the standardization
moved inside (wrapped by `load_run_model`) are unwrapped the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from medbench.architectures.info import BACKBONE_NAME
from medbench.errors import ConfigError

logger = logging.getLogger(__name__)

LOGITS_LAYER = "logits"
"""The head's Dense layer whose outputs are the pre-activation class scores S_c."""
LAYERS_SHOWN = 60
"""The most layer names an unknown-layer error lists."""


@dataclass(frozen=True)
class ModelParts:
    """The layers of a classifier in the order they run: before the backbone, the backbone, the head."""

    pre: tuple[keras.layers.Layer, ...]
    backbone: keras.Model
    head: tuple[keras.layers.Layer, ...]
    logits_at: int
    """Index in `head` of the layer whose output is the pre-activation score (the `logits` Dense)."""


def _layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _holds_backbone(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.Model) and any(inner.name == BACKBONE_NAME for inner in layer.layers)


def model_parts(model: keras.Model) -> ModelParts:
    """`model` split around its nested backbone; ConfigError for a model without one or with a metadata input."""
    if len(model.inputs) != 1:
        names = ", ".join(tensor.name for tensor in model.inputs)
        raise ConfigError(
            f"model {model.name!r} takes {len(model.inputs)} inputs ({names}): explanations need a model that "
            "takes the image alone (a run with metadata cannot be explained from image files)"
        )
    pre: list[keras.layers.Layer] = []
    for layer in _layers(model):
        if layer.name == BACKBONE_NAME:
            head = tuple(_layers(model)[len(pre) + 1 :])
            return ModelParts(tuple(pre), layer, head, _logits_index(model, head))
        if _holds_backbone(layer):
            inner = model_parts(layer)
            after = tuple(_layers(model)[len(pre) + 1 :])
            if after:
                raise ConfigError(
                    f"model {model.name!r}: layers {[item.name for item in after]} follow the wrapped model "
                    f"{layer.name!r}; expected a model whose last layer is the wrapped classifier"
                )
            return ModelParts((*pre, *inner.pre), inner.backbone, inner.head, inner.logits_at)
        pre.append(layer)
    raise ConfigError(
        f"model {model.name!r} has no nested model named {BACKBONE_NAME!r}; expected a model built by "
        "SimpleBaseArchitecture (standardize → backbone → head), as every saved medbench run is"
    )


def _logits_index(model: keras.Model, head: Sequence[keras.layers.Layer]) -> int:
    if not head:
        raise ConfigError(f"model {model.name!r} has no layers after its backbone; expected a classifier head")
    names = [layer.name for layer in head]
    if LOGITS_LAYER in names:
        return names.index(LOGITS_LAYER)
    if isinstance(head[-1], keras.layers.Activation) and len(head) > 1:
        return len(head) - 2
    return len(head) - 1


def spatial_layers(backbone: keras.Model) -> list[str]:
    """Names of the backbone's layers whose output is a feature map (4D for images, 5D for volumes)."""
    rank = len(backbone.output.shape)
    names = []
    for layer in backbone.layers:
        try:
            output = layer.output
        except (AttributeError, ValueError):
            continue
        if not isinstance(output, list | tuple) and len(output.shape) == rank:
            names.append(layer.name)
    return names


class ModelView:
    """A classifier with two outputs: the feature map of its target layer and its class scores.

    Args:
        model: a medbench classifier (uint8 image in, `SimpleBaseArchitecture`'s layout).
        layer: a layer inside the backbone whose output map the CAM methods use; None (or "backbone"):
            the backbone's output, the last feature map before the head.
    """

    def __init__(self, model: keras.Model, layer: str | None = None) -> None:
        self.model = model
        self.parts = model_parts(model)
        backbone = self.parts.backbone
        if len(backbone.output.shape) not in (4, 5):
            raise ConfigError(
                f"the backbone of {model.name!r} outputs shape {tuple(backbone.output.shape)}: expected a feature "
                "map (batch, height, width, channels) or (batch, depth, height, width, channels)"
            )
        self.layer = BACKBONE_NAME if layer in (None, "", BACKBONE_NAME) else layer
        self._inner: keras.Model | None = None
        if self.layer != BACKBONE_NAME:
            valid = spatial_layers(backbone)
            if self.layer not in valid:
                shown = ", ".join(valid[-LAYERS_SHOWN:])
                more = f" (the last {LAYERS_SHOWN} of {len(valid)})" if len(valid) > LAYERS_SHOWN else ""
                raise ConfigError(
                    f"layer {self.layer!r} is not a feature-map layer of {model.name!r}'s backbone; expected "
                    f"{BACKBONE_NAME!r} (the default, the backbone's output) or one of{more}: {shown}"
                )
            target = backbone.get_layer(self.layer)
            self._inner = keras.Model(backbone.inputs, [target.output, backbone.output], name=f"{self.layer}_view")
        logger.debug("explaining %s at layer %s", model.name, self.layer)

    @property
    def spatial_rank(self) -> int:
        """2 for images, 3 for volumes."""
        return len(self.model.inputs[0].shape) - 2

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape of one input image without the batch axis."""
        return tuple(self.model.inputs[0].shape[1:])

    @property
    def n_classes(self) -> int:
        return int(self.model.outputs[0].shape[-1])

    @property
    def at_backbone_output(self) -> bool:
        """True when the target layer is the backbone's output (the layer the head reads)."""
        return self._inner is None

    def check_images(self, images: np.ndarray) -> np.ndarray:
        """`images` as a batch of the model's input shape; ConfigError naming the shapes otherwise."""
        array = np.asarray(images)
        expected = self.image_shape
        if array.ndim != len(expected) + 1 or any(
            want is not None and have != want for have, want in zip(array.shape[1:], expected)
        ):
            raise ConfigError(
                f"images of shape {array.shape}: expected a batch (n, {', '.join(map(str, expected))}) of the "
                f"model's input, uint8 as the run's preprocessing writes it"
            )
        return array

    def standardized(self, images: tf.Tensor | np.ndarray) -> tf.Tensor:
        """The backbone's input: [0, 255] images (float, so that gradients reach them) through the pre-layers."""
        x = tf.cast(tf.convert_to_tensor(images), tf.float32)
        for layer in self.parts.pre:
            x = layer(x, training=False)
        return x

    def features(self, standardized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(target layer's map, backbone output) of a standardized batch (the same tensor at the default layer)."""
        if self._inner is None:
            final = self.parts.backbone(standardized, training=False)
            return final, final
        target, final = self._inner(standardized, training=False)
        return target, final

    def head_outputs(self, final: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(pre-activation scores S, model outputs) of backbone features, each head layer run in turn."""
        x = final
        logits = None
        for index, layer in enumerate(self.parts.head):
            x = layer(x, training=False)
            if index == self.parts.logits_at:
                logits = x
        return tf.cast(logits, tf.float32), tf.cast(x, tf.float32)

    def outputs(self, images: tf.Tensor | np.ndarray) -> tuple[tf.Tensor, tf.Tensor]:
        """(scores S, model outputs) of a batch of [0, 255] images."""
        _, final = self.features(self.standardized(images))
        return self.head_outputs(final)

    def predict(self, images: np.ndarray, *, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """(scores S, model outputs) of uint8 images as float32 arrays, `batch_size` images at a time."""
        logits, outputs = [], []
        for batch in batches(self.check_images(images), batch_size):
            scores, probabilities = self.outputs(batch)
            logits.append(scores.numpy())
            outputs.append(probabilities.numpy())
        return np.concatenate(logits), np.concatenate(outputs)


def as_view(model: keras.Model | ModelView, layer: str | None = None) -> ModelView:
    """`model` as a ModelView at `layer` (a view is returned unchanged when it already looks there)."""
    if isinstance(model, ModelView):
        if layer in (None, "", model.layer) or (layer == BACKBONE_NAME and model.at_backbone_output):
            return model
        return ModelView(model.model, layer)
    return ModelView(model, layer)


def batches(array: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of `size` rows (the last may be shorter)."""
    if size < 1:
        raise ConfigError(f"batch size {size}: expected at least 1")
    for start in range(0, len(array), size):
        yield array[start : start + size]
