"""Maps from gradients with respect to the input pixels: saliency, guided backpropagation, guided Grad-CAM and
integrated gradients.

The gradients are taken with respect to the [0, 255] image as a float (the model's `Standardization`
layer is differentiable for float input), of the pre-activation score S_c.

- Vanilla saliency (Simonyan et al., 2014): max over channels of |∂S_c/∂x|.
- Guided backpropagation (Springenberg et al., 2015): the same gradient with every ReLU of the backbone
  and the head passing back only positive gradients where its input was positive; max over channels of
  its magnitude. Other activations (swish, GELU) are left as they are.
- Guided Grad-CAM (Selvaraju et al., 2017): guided backpropagation × Grad-CAM, pixel by pixel.
- Integrated gradients (Sundararajan et al., 2017): (x − x') · ∫₀¹ ∂S_c/∂x(x' + α(x − x')) dα from the
  black image x' = 0, the integral by the trapezoid rule (or the right Riemann sum) over `steps` intervals,
  summed over channels: signed, and by completeness its sum is S_c(x) − S_c(x').

All four work on volumes too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from medbench.errors import ConfigError
from medbench.xai.cam import gradcam
from medbench.xai.maps import ClassSpec, gather_scores, input_maps, prepared
from medbench.xai.view import ModelView, as_view, batches

RULES = ("trapezoid", "riemann")
RELU_NAMES = frozenset({"relu", "relu6"})


@dataclass(frozen=True)
class IntegratedGradientsConfig:
    """Integrated gradients: `steps` intervals on the straight path from black, integrated by `rule`."""

    steps: int = 64
    rule: str = "trapezoid"

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"integrated gradients steps {self.steps!r}: expected a whole number of at least 1")
        if self.rule not in RULES:
            raise ConfigError(f"integrated gradients rule {self.rule!r}: expected one of {', '.join(RULES)}")

    def nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """(α, weights) of the quadrature on [0, 1]; the weights sum to 1."""
        if self.rule == "trapezoid":
            alphas = np.linspace(0.0, 1.0, self.steps + 1, dtype=np.float32)
            weights = np.full(self.steps + 1, 1.0 / self.steps, dtype=np.float32)
            weights[[0, -1]] /= 2.0
            return alphas, weights
        alphas = np.arange(1, self.steps + 1, dtype=np.float32) / self.steps
        return alphas, np.full(self.steps, 1.0 / self.steps, dtype=np.float32)


def _is_relu(function: Any) -> bool:
    return callable(function) and getattr(function, "__name__", "") in RELU_NAMES


def _guided(function: Callable[..., tf.Tensor]) -> Callable[..., tf.Tensor]:
    """`function` (a ReLU) whose backward pass lets through only positive gradients (and its own gate)."""

    def guided(inputs: tf.Tensor, *args: Any, **kwargs: Any) -> tf.Tensor:
        @tf.custom_gradient
        def forward(x: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], tf.Tensor]]:
            def backward(upstream: tf.Tensor) -> tf.Tensor:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    again = function(x, *args, **kwargs)
                local = tape.gradient(again, x, output_gradients=upstream)
                return local * tf.cast(upstream > 0, local.dtype)

            return function(x, *args, **kwargs), backward

        return forward(inputs)

    return guided


def _all_layers(layers: Sequence[keras.layers.Layer]) -> Iterator[keras.layers.Layer]:
    for layer in layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer.layers)


@contextmanager
def guided_relus(view: ModelView) -> Iterator[int]:
    """Every ReLU of `view`'s backbone and head guided while inside; yields how many were changed."""
    changed: list[tuple[keras.layers.Layer, str, Any]] = []
    try:
        for layer in _all_layers([*view.parts.pre, view.parts.backbone, *view.parts.head]):
            if isinstance(layer, keras.layers.ReLU):
                changed.append((layer, "call", vars(layer).get("call")))
                object.__setattr__(layer, "call", _guided(layer.call))
            elif _is_relu(getattr(layer, "activation", None)):
                changed.append((layer, "activation", layer.activation))
                object.__setattr__(layer, "activation", _guided(layer.activation))
        yield len(changed)
    finally:
        for layer, attribute, original in reversed(changed):
            if original is None:
                object.__delattr__(layer, attribute)
            else:
                object.__setattr__(layer, attribute, original)


def input_gradients(view: ModelView, batch: np.ndarray, indices: np.ndarray, *, guided: bool = False) -> tf.Tensor:
    """∂S_c/∂x of each image's asked classes: (b, k, *image shape), x the [0, 255] image as float."""
    x = tf.convert_to_tensor(np.asarray(batch, dtype=np.float32))
    with guided_relus(view) if guided else nullcontext():
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            scores = gather_scores(view.outputs(x)[0], indices)
            totals = [tf.reduce_sum(scores[:, column]) for column in range(indices.shape[1])]
        gradients = tf.stack([tape.gradient(total, x) for total in totals], axis=1)
    del tape
    return gradients


def _gradient_maps(
    model: keras.Model | ModelView,
    images: np.ndarray,
    classes: ClassSpec,
    *,
    layer: str | None,
    class_names: Sequence[str] | None,
    batch_size: int,
    guided: bool,
) -> np.ndarray:
    view = as_view(model, layer)
    images, indices = prepared(view, images, classes, class_names)
    maps = [
        input_maps(input_gradients(view, batch, indices[start : start + len(batch)], guided=guided)).numpy()
        for start, batch in zip(range(0, len(images), batch_size), batches(images, batch_size))
    ]
    return np.concatenate(maps).astype(np.float32)


def saliency(
    model: keras.Model | ModelView,
    images: np.ndarray,
    classes: ClassSpec = None,
    *,
    layer: str | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """Vanilla saliency maps (n, k, *image size), float32, ≥ 0 (`layer` is not used)."""
    return _gradient_maps(
        model, images, classes, layer=layer, class_names=class_names, batch_size=batch_size, guided=False
    )


def guided_backprop(
    model: keras.Model | ModelView,
    images: np.ndarray,
    classes: ClassSpec = None,
    *,
    layer: str | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """Guided backpropagation maps (n, k, *image size), float32, ≥ 0 (`layer` is not used)."""
    return _gradient_maps(
        model, images, classes, layer=layer, class_names=class_names, batch_size=batch_size, guided=True
    )


def guided_gradcam(
    model: keras.Model | ModelView,
    images: np.ndarray,
    classes: ClassSpec = None,
    *,
    layer: str | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """Guided Grad-CAM maps (n, k, *image size), float32: guided backpropagation times Grad-CAM at `layer`."""
    view = as_view(model, layer)
    images, indices = prepared(view, images, classes, class_names)
    guided = guided_backprop(view, images, indices, batch_size=batch_size)
    return (guided * gradcam(view, images, indices, batch_size=batch_size)).astype(np.float32)


def integrated_gradients(
    model: keras.Model | ModelView,
    images: np.ndarray,
    classes: ClassSpec = None,
    *,
    layer: str | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
    config: IntegratedGradientsConfig = IntegratedGradientsConfig(),
) -> np.ndarray:
    """Integrated-gradients maps (n, k, *image size), float32, signed; each sums to about S_c(x) − S_c(black)."""
    view = as_view(model, layer)
    images, indices = prepared(view, images, classes, class_names)
    alphas, weights = config.nodes()
    maps = []
    for image, row in tqdm(
        zip(images, indices),
        total=len(images),
        desc="integrated gradients",
        unit="img",
        leave=False,
        disable=len(images) < 8,
    ):
        x = image.astype(np.float32)
        total = np.zeros((indices.shape[1], *x.shape), dtype=np.float64)
        for start in range(0, len(alphas), batch_size):
            path = alphas[start : start + batch_size]
            points = path.reshape(-1, *([1] * x.ndim)) * x[np.newaxis]
            rows = np.tile(row, (len(path), 1))
            gradients = input_gradients(view, points, rows).numpy()
            total += np.einsum("p,pk...->k...", weights[start : start + len(path)], gradients.astype(np.float64))
        maps.append(np.sum(total * x[np.newaxis], axis=-1))
    return np.stack(maps).astype(np.float32)
