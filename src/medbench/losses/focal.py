"""Focal losses (Lin et al., 2017) as AUCMEDI defines them, NaN-masked like medbench's cross-entropies.

    binary       l_ij = -a_t (1 - p_t)^g log p_t,  p_t = p if y = 1 else 1 - p,  a_t = a if y = 1 else 1 - a;
                 a sample's loss is the SUM over its classes (AUCMEDI's ``binary_focal_loss``)
    categorical  l_i  = sum_c -a_c (1 - p_c)^g y_c log p_c  (one class per image; softmax outputs)
    multi-label  l_ij = w_j ((1 - y) p^g (-log(1 - p)) + y s (1 - p)^g (-log p));
                 a sample's loss is the MEAN over its classes (``multilabel_focal_loss``)

with ``p`` clipped to ``[eps, 1 - eps]``. AUCMEDI's multi-label version weighs a negative entry by
``p^g + (1 - eps)^g`` (its clipped complement of a zero adds almost 1), so negatives are not focused at
all; medbench uses the focal weight ``p^g`` the formula intends and is otherwise the same. Masked
targets (NaN) take no part: their entries are zero and leave the class sum or mean; an unlabelled
sample (all NaN) leaves the batch mean. On unmasked data the binary and categorical losses equal
AUCMEDI's to float precision (`tests/test_focal_losses.py` checks all three against their formulas
written out in NumPy, and against Keras' focal cross-entropies where they coincide).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from medbench.errors import ConfigError
from medbench.losses.masked_crossentropy import scale_for_distribution

__all__ = ["BinaryFocalLoss", "CategoricalFocalLoss", "MultilabelFocalLoss"]


class _FocalLoss(keras.losses.Loss):
    """Shared masking, clipping and reduction: per-sample losses averaged over the labelled samples."""

    per_sample = "sum"
    """How a sample's class terms combine: "sum" or "mean" (over its unmasked classes)."""

    def __init__(self, *, gamma: float = 2.0, epsilon: float | None = None, name: str, dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        if not 0.0 <= float(gamma) <= 10.0:
            raise ConfigError(f"{name}: gamma={gamma!r}; expected a focusing parameter in 0..10 (2 is usual)")
        self.gamma = float(gamma)
        self.epsilon = float(keras.config.epsilon() if epsilon is None else epsilon)
        if not 0.0 < self.epsilon < 0.5:
            raise ConfigError(f"{name}: epsilon={self.epsilon!r}; expected a small positive number (e.g. 1e-7)")

    def entries(self, targets: Any, probabilities: Any) -> Any:
        """The loss of every (sample, class) entry; targets hold 0 where masked."""
        raise NotImplementedError

    def _checked(self, weights: np.ndarray | None, y_pred: Any) -> Any:
        if weights is None:
            return None
        if y_pred.shape[-1] is not None and y_pred.shape[-1] != weights.size:
            raise ConfigError(
                f"{self.name} has {weights.size} class weights but the predictions have {y_pred.shape[-1]} classes; "
                "expected one weight per class"
            )
        return ops.convert_to_tensor(weights, dtype=y_pred.dtype)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        with keras.name_scope(self.name):
            y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
            y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
            mask = ops.logical_not(ops.isnan(y_true))
            targets = ops.where(mask, y_true, ops.zeros_like(y_true))
            probabilities = ops.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
            kept = ops.cast(mask, self.dtype)
            terms = self.entries(targets, probabilities) * kept
            counted = ops.sum(kept, axis=-1)
            per_sample = ops.sum(terms, axis=-1)
            if self.per_sample == "mean":
                per_sample = ops.divide_no_nan(per_sample, counted)
            labelled = ops.cast(counted > 0, self.dtype)
            if sample_weight is not None:
                labelled = labelled * ops.reshape(ops.convert_to_tensor(sample_weight, dtype=self.dtype), (-1,))
            total = ops.sum(per_sample * labelled)
            return scale_for_distribution(ops.divide_no_nan(total, ops.sum(ops.cast(counted > 0, self.dtype))))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "gamma": self.gamma, "epsilon": self.epsilon}


def _weights(values: Sequence[float] | None, what: str, name: str) -> np.ndarray | None:
    if values is None:
        return None
    weights = np.asarray(values, dtype=np.float32).reshape(-1)
    if weights.size == 0 or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ConfigError(f"{name}: {what} {list(np.asarray(values).reshape(-1))[:10]}; expected non-negative numbers")
    return weights


@keras.saving.register_keras_serializable(package="medbench")
class BinaryFocalLoss(_FocalLoss):
    """Sigmoid focal loss; `alpha` weighs the positives (1 - alpha the negatives). Summed over classes."""

    def __init__(
        self,
        alpha: float = 0.25,
        *,
        gamma: float = 2.0,
        epsilon: float | None = None,
        name: str = "binary_focal_loss",
        dtype: Any = None,
    ) -> None:
        super().__init__(gamma=gamma, epsilon=epsilon, name=name, dtype=dtype)
        if not 0.0 <= float(alpha) <= 1.0:
            raise ConfigError(f"{name}: alpha={alpha!r}; expected a weight in [0, 1]")
        self.alpha = float(alpha)

    def entries(self, targets: Any, probabilities: Any) -> Any:
        p_t = targets * probabilities + (1.0 - targets) * (1.0 - probabilities)
        alpha_t = targets * self.alpha + (1.0 - targets) * (1.0 - self.alpha)
        return -alpha_t * ops.power(1.0 - p_t, self.gamma) * ops.log(p_t)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="medbench")
class CategoricalFocalLoss(_FocalLoss):
    """Softmax focal loss for one class per image; `alpha` is one weight per class (None: all 1)."""

    def __init__(
        self,
        alpha: Sequence[float] | None = None,
        *,
        gamma: float = 2.0,
        epsilon: float | None = None,
        name: str = "categorical_focal_loss",
        dtype: Any = None,
    ) -> None:
        super().__init__(gamma=gamma, epsilon=epsilon, name=name, dtype=dtype)
        self.alpha = _weights(alpha, "alpha", name)

    def entries(self, targets: Any, probabilities: Any) -> Any:
        terms = -targets * ops.power(1.0 - probabilities, self.gamma) * ops.log(probabilities)
        alpha = self._checked(self.alpha, probabilities)
        return terms if alpha is None else terms * alpha

    def get_config(self) -> dict[str, Any]:
        alpha = None if self.alpha is None else self.alpha.tolist()
        return {**super().get_config(), "alpha": alpha}


@keras.saving.register_keras_serializable(package="medbench")
class MultilabelFocalLoss(_FocalLoss):
    """AUCMEDI's multi-label focal loss: per-class weights, `sparsity` weighing the positives; mean over classes."""

    per_sample = "mean"

    def __init__(
        self,
        class_weights: Sequence[float],
        *,
        gamma: float = 2.0,
        sparsity: float = 1.0,
        epsilon: float | None = None,
        name: str = "multilabel_focal_loss",
        dtype: Any = None,
    ) -> None:
        super().__init__(gamma=gamma, epsilon=epsilon, name=name, dtype=dtype)
        self.class_weights = _weights(class_weights, "class_weights", name)
        if not float(sparsity) > 0:
            raise ConfigError(f"{name}: sparsity={sparsity!r}; expected a positive weight of the positives")
        self.sparsity = float(sparsity)

    def entries(self, targets: Any, probabilities: Any) -> Any:
        negative = (1.0 - targets) * ops.power(probabilities, self.gamma) * -ops.log(1.0 - probabilities)
        positive = targets * self.sparsity * ops.power(1.0 - probabilities, self.gamma) * -ops.log(probabilities)
        return (negative + positive) * self._checked(self.class_weights, probabilities)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_weights": self.class_weights.tolist(), "sparsity": self.sparsity}
