"""Class activation maps from a feature map: Grad-CAM, Grad-CAM++ and CRM.

- Grad-CAM (Selvaraju et al., ICCV 2017): ReLU(Σ_k α_k A_k), α_k the spatial mean of ∂S_c/∂A_k, S_c the
  pre-activation score (the head's `logits` layer).
- Grad-CAM++ (Chattopadhay et al., WACV 2018) in MONAI's form: α = g² / (2 g² + Σ_ij A_ij g_ij³) per
  channel (a zero denominator taken as 1), weights w_k = Σ_ij α · ReLU(exp(S_c) g), map ReLU(Σ_k w_k A_k).
- CRM, class-selective relevance mapping (Kim, Rajaraman and Antani, "Visual Interpretation of
  Convolutional Neural Network Predictions in Classifying Medical Image Modalities", Diagnostics 9(2):38,
  2019): CRM(l, m) = Σ_c (S_c − S_c(l, m))² over all output classes c, S_c(l, m) the score with the
  feature map's position (l, m) removed (zeroed in every channel), normalised by its maximum. Each
  position is removed and the head run again, so a Dense(512) head is handled exactly; for a pooling +
  dense head it equals Σ_c CAM_c(l, m)² up to the common factor (it is one map for all classes).

Maps are computed at the target layer's resolution and resized to the image's (bilinear; trilinear for
volumes). Grad-CAM and Grad-CAM++ work on volumes too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from medbench.errors import ConfigError
from medbench.xai.maps import ClassSpec, gather_scores, prepared, upsample
from medbench.xai.view import ModelView, as_view, batches

SCORE_EXP_LIMIT = 80.0
"""exp(S_c) in Grad-CAM++ is taken at min(S_c, 80): a per-image factor that would overflow float32 beyond 88."""
CRM_CHUNK_VALUES = 1 << 24
"""Feature values (about 64 MB) of the position-removed copies CRM sends through the head at once."""


def _feature_gradients(
    view: ModelView, batch: np.ndarray, indices: np.ndarray
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(A, ∂S/∂A, S): the target map (b, *s, C), the gradients of each asked class's score (b, k, *s, C) and
    those scores (b, k)."""
    x = view.standardized(batch)
    with tf.GradientTape(persistent=True) as tape:
        if view.at_backbone_output:
            target = view.features(x)[0]
            tape.watch(target)
            final = target
        else:
            tape.watch(x)
            target, final = view.features(x)
        scores = gather_scores(view.head_outputs(final)[0], indices)
        totals = [tf.reduce_sum(scores[:, column]) for column in range(indices.shape[1])]
    gradients = tf.stack([tape.gradient(total, target) for total in totals], axis=1)
    del tape
    return target, gradients, scores


def _spatial_axes(view: ModelView) -> list[int]:
    """The spatial axes of a (b, k, *s, C) tensor."""
    return list(range(2, 2 + view.spatial_rank))


def gradcam(
    model: keras.Model | ModelView,
    images: np.ndarray,
    classes: ClassSpec = None,
    *,
    layer: str | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """Grad-CAM maps (n, k, *image size), float32, of uint8 `images` for `classes` (default each image's top)."""
    view = as_view(model, layer)
    images, indices = prepared(view, images, classes, class_names)
    maps = []
    for start, batch in zip(range(0, len(images), batch_size), batches(images, batch_size)):
        target, gradients, _ = _feature_gradients(view, batch, indices[start : start + len(batch)])
        weights = tf.reduce_mean(gradients, axis=_spatial_axes(view), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * target[:, tf.newaxis], axis=-1))
        maps.append(upsample(cam, view.image_shape[:-1]))
    return np.concatenate(maps).astype(np.float32)


def gradcam_plus_plus(
    model: keras.Model | ModelView,
    images: np.ndarray,
    classes: ClassSpec = None,
    *,
    layer: str | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """Grad-CAM++ maps (n, k, *image size), float32, computed as MONAI's `GradCAMpp` does."""
    view = as_view(model, layer)
    images, indices = prepared(view, images, classes, class_names)
    axes = _spatial_axes(view)
    maps = []
    for start, batch in zip(range(0, len(images), batch_size), batches(images, batch_size)):
        target, gradients, scores = _feature_gradients(view, batch, indices[start : start + len(batch)])
        activations = target[:, tf.newaxis]
        squared = tf.square(gradients)
        denominator = 2.0 * squared + tf.reduce_sum(activations * squared * gradients, axis=axes, keepdims=True)
        denominator = tf.where(denominator != 0.0, denominator, tf.ones_like(denominator))
        alpha = squared / (denominator + 1e-7)
        factor = tf.exp(tf.minimum(scores, SCORE_EXP_LIMIT))
        factor = tf.reshape(factor, (*factor.shape, *([1] * (view.spatial_rank + 1))))
        weights = tf.reduce_sum(alpha * tf.nn.relu(factor * gradients), axis=axes, keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1))
        maps.append(upsample(cam, view.image_shape[:-1]))
    return np.concatenate(maps).astype(np.float32)


def crm(
    model: keras.Model | ModelView,
    images: np.ndarray,
    classes: ClassSpec = None,
    *,
    layer: str | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """CRM maps (n, k, *image size), float32, in [0, 1]: one map per image, repeated for each asked class.

    The definition sums over every output class, so the map does not depend on the class asked for; the
    class axis keeps the shape every method returns.
    """
    view = as_view(model, layer)
    if not view.at_backbone_output:
        raise ConfigError(
            f"CRM removes positions of the feature map the head reads, so it takes no layer inside the backbone "
            f"(got {view.layer!r}); expected the default layer (the backbone's output)"
        )
    images, indices = prepared(view, images, classes, class_names)
    maps = []
    for batch in batches(images, batch_size):
        features = view.features(view.standardized(batch))[0]
        relevance = _removal_relevance(view, features)
        peak = tf.reduce_max(relevance, axis=list(range(1, 1 + view.spatial_rank)), keepdims=True)
        relevance = tf.math.divide_no_nan(relevance, peak)
        repeated = tf.repeat(relevance[:, tf.newaxis], indices.shape[1], axis=1)
        maps.append(upsample(repeated, view.image_shape[:-1]))
    return np.concatenate(maps).astype(np.float32)


def _removal_relevance(view: ModelView, features: tf.Tensor) -> tf.Tensor:
    """Σ_c (S_c − S_c(position removed))² for every position of (b, *s, C) features: (b, *s)."""
    n, spatial, channels = int(features.shape[0]), tuple(features.shape[1:-1]), int(features.shape[-1])
    positions = math.prod(spatial)
    scores = view.head_outputs(features)[0]
    chunk = max(1, CRM_CHUNK_VALUES // max(1, n * positions * channels))
    relevance = []
    for first in range(0, positions, chunk):
        count = min(chunk, positions - first)
        removed = tf.one_hot(tf.range(first, first + count), positions, dtype=features.dtype)
        keep = tf.reshape(1.0 - removed, (1, count, *spatial, 1))
        copies = tf.reshape(features[:, tf.newaxis] * keep, (n * count, *spatial, channels))
        without = tf.reshape(view.head_outputs(copies)[0], (n, count, -1))
        relevance.append(tf.reduce_sum(tf.square(scores[:, tf.newaxis] - without), axis=-1))
    return tf.reshape(tf.concat(relevance, axis=1), (n, *spatial))
