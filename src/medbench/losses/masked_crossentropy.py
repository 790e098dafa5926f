"""NaN-masked binary cross-entropy losses for multi-label training (BCE, WBCE, CWBCE).

Targets hold 1.0, 0.0 or NaN (masked). Every loss computes one term per (sample, class) entry,

    BCE    l = -(y log p + (1 - y) log(1 - p))
    WBCE   l = -(w_j y log p + (1 - y) log(1 - p))          w_j: positive weight of class j
    CWBCE  l = -(wp_j y log p + wn_j (1 - y) log(1 - p))    wp_j, wn_j: positive/negative weights

with ``p`` clipped to ``[eps, 1 - eps]``, zeroes the masked entries and averages over the
UNMASKED entries of the batch (a batch with every entry masked has loss 0). NaN targets are
replaced by 0 before the log terms, so no NaN reaches the value or the gradient.

The weights are per class, applied entry by entry. Keras' ``fit(class_weight=...)`` is not a
substitute: for multi-label targets it weights each whole SAMPLE by the weight of its first
positive class (``argmax`` of the target row), which the original project relied on.

The classes subclass :class:`keras.losses.Loss` and are registered under the ``medbench``
package, so a model saved with them reloads with :func:`keras.models.load_model` once this
module has been imported.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from numpy.typing import ArrayLike

from medbench.errors import ConfigError

__all__ = [
    "ClassWeightedBinaryCrossentropy",
    "MaskedBinaryCrossentropy",
    "WeightedBinaryCrossentropy",
    "class_weighted_binary_crossentropy",
    "masked_binary_crossentropy",
    "weighted_binary_crossentropy",
]

_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean")


class _MaskedCrossentropy(keras.losses.Loss):
    """Shared masking, clipping and reduction; subclasses choose the per-class weights.

    Reductions: ``"sum_over_batch_size"``/``"mean"`` (default) divide the weighted sum by the
    number of unmasked entries, ``"mean_with_sample_weight"`` by the sum of the entry weights
    (mask times ``sample_weight``), ``"sum"`` returns the sum, ``None``/``"none"`` the ``(n, c)``
    matrix of weighted entry losses (0 where masked).
    """

    def __init__(
        self,
        *,
        epsilon: float | None = None,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.epsilon = float(keras.config.epsilon() if epsilon is None else epsilon)
        if not 0.0 < self.epsilon < 0.5:
            raise ConfigError(f"epsilon={self.epsilon!r}; expected a small positive number (e.g. 1e-7)")

    def _class_weights(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Positive and negative weight per class (``None`` = 1)."""
        return None, None

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Cross-entropy per entry, shape ``(n, c)``, 0 where the target is NaN."""
        mask = ops.logical_not(ops.isnan(y_true))
        return self._entry_losses(y_true, y_pred, mask)

    def _entry_losses(self, y_true: Any, y_pred: Any, mask: Any) -> Any:
        targets = ops.where(mask, y_true, ops.zeros_like(y_true))
        probabilities = ops.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
        positive_term = targets * ops.log(probabilities)
        negative_term = (1.0 - targets) * ops.log(1.0 - probabilities)
        pos_weight, neg_weight = self._class_weights()
        for weights in (pos_weight, neg_weight):
            if weights is not None and y_pred.shape[-1] is not None and y_pred.shape[-1] != weights.size:
                raise ConfigError(
                    f"{type(self).__name__} ({self.name}) has {weights.size} class weights but the predictions "
                    f"have {y_pred.shape[-1]} classes (shape {tuple(y_pred.shape)}); expected one weight per class"
                )
        if pos_weight is not None:
            positive_term = positive_term * ops.convert_to_tensor(pos_weight, dtype=y_pred.dtype)
        if neg_weight is not None:
            negative_term = negative_term * ops.convert_to_tensor(neg_weight, dtype=y_pred.dtype)
        return ops.where(mask, -(positive_term + negative_term), ops.zeros_like(positive_term))

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        with keras.name_scope(self.name):
            y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
            y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
            if len(y_true.shape) == len(y_pred.shape) - 1:
                y_true = ops.expand_dims(y_true, -1)
            mask = ops.logical_not(ops.isnan(y_true))
            losses = self._entry_losses(y_true, y_pred, mask)
            weights = ops.cast(mask, self.dtype)
            if sample_weight is not None:
                sample_weight = ops.convert_to_tensor(sample_weight, dtype=self.dtype)
                if len(sample_weight.shape) == 1:
                    sample_weight = ops.expand_dims(sample_weight, -1)
                weights = weights * ops.broadcast_to(sample_weight, ops.shape(losses))
            weighted = losses * weights
            if self.reduction in (None, "none"):
                return weighted
            total = ops.sum(weighted)
            if self.reduction == "sum":
                return total
            if self.reduction in _MEAN_REDUCTIONS:
                divisor = ops.sum(ops.cast(mask, self.dtype))
            else:
                divisor = ops.sum(weights)
            return scale_for_distribution(ops.divide_no_nan(total, divisor))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="medbench")
class MaskedBinaryCrossentropy(_MaskedCrossentropy):
    """BCE averaged over the unmasked (non-NaN target) entries of the batch."""

    def __init__(
        self,
        *,
        epsilon: float | None = None,
        name: str = "masked_binary_crossentropy",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(epsilon=epsilon, name=name, reduction=reduction, dtype=dtype)


@keras.saving.register_keras_serializable(package="medbench")
class WeightedBinaryCrossentropy(_MaskedCrossentropy):
    """WBCE: BCE with the positive term of class ``j`` multiplied by ``pos_weight[j]``.

    The usual choice is ``pos_weight = n_neg / n_pos`` per class
    (:func:`medbench.losses.class_weights.positive_weight_ratio`).
    """

    def __init__(
        self,
        pos_weight: ArrayLike,
        *,
        epsilon: float | None = None,
        name: str = "weighted_binary_crossentropy",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(epsilon=epsilon, name=name, reduction=reduction, dtype=dtype)
        self.pos_weight = _check_weights(pos_weight, "pos_weight")

    def _class_weights(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        return self.pos_weight, None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pos_weight": self.pos_weight.tolist()}


@keras.saving.register_keras_serializable(package="medbench")
class ClassWeightedBinaryCrossentropy(_MaskedCrossentropy):
    """CWBCE: BCE with separate positive and negative weights per class (balanced class weights)."""

    def __init__(
        self,
        pos_weights: ArrayLike,
        neg_weights: ArrayLike,
        *,
        epsilon: float | None = None,
        name: str = "class_weighted_binary_crossentropy",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(epsilon=epsilon, name=name, reduction=reduction, dtype=dtype)
        self.pos_weights = _check_weights(pos_weights, "pos_weights")
        self.neg_weights = _check_weights(neg_weights, "neg_weights")
        if self.pos_weights.shape != self.neg_weights.shape:
            raise ConfigError(
                f"pos_weights has {self.pos_weights.size} entries but neg_weights has {self.neg_weights.size}; "
                "expected one of each per class"
            )

    def _class_weights(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        return self.pos_weights, self.neg_weights

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pos_weights": self.pos_weights.tolist(),
            "neg_weights": self.neg_weights.tolist(),
        }


def masked_binary_crossentropy(*, epsilon: float | None = None) -> MaskedBinaryCrossentropy:
    """The BCE loss object: ``model.compile(loss=masked_binary_crossentropy())``."""
    return MaskedBinaryCrossentropy(epsilon=epsilon)


def weighted_binary_crossentropy(pos_weight: ArrayLike, *, epsilon: float | None = None) -> WeightedBinaryCrossentropy:
    """The WBCE loss object with one positive weight per class."""
    return WeightedBinaryCrossentropy(pos_weight, epsilon=epsilon)


def class_weighted_binary_crossentropy(
    pos_weights: ArrayLike, neg_weights: ArrayLike, *, epsilon: float | None = None
) -> ClassWeightedBinaryCrossentropy:
    """The CWBCE loss object with one positive and one negative weight per class."""
    return ClassWeightedBinaryCrossentropy(pos_weights, neg_weights, epsilon=epsilon)


def _check_weights(weights: ArrayLike, what: str) -> np.ndarray:
    values = np.asarray(weights, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ConfigError(f"{what} has shape {values.shape}; expected a non-empty 1-D array, one weight per class")
    bad = ~(np.isfinite(values) & (values >= 0.0))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"{what}[{j}] is {float(values[j])}; expected a finite, non-negative weight")
    values.setflags(write=False)
    return values


def scale_for_distribution(loss: Any) -> Any:
    """Divide by the replica count under ``tf.distribute``, whose gradients are summed over replicas."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        loss = loss * (1.0 / replicas)
    return loss
