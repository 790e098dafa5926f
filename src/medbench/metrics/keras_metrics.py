"""Streaming Keras metrics that ignore NaN (masked) targets, for the training progress display.

They approximate what :mod:`medbench.metrics.classification` computes exactly: the reported
metrics of an experiment come from ``evaluate_predictions`` on the stored predictions, not from
these. Both use the same rules: masked entries are dropped (never read as negatives) and the
mean AUROC is taken over the classes that have both labels among the entries seen so far.
Where nothing is defined (no unmasked entry, no class with both labels) they return NaN, since a
Keras metric has no ``None``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["MaskedAUC", "MaskedBinaryAccuracy"]


def _mask_and_weights(y_true: Any, sample_weight: Any, dtype: Any) -> tuple[Any, Any]:
    """Targets with NaN replaced by 0, and per-entry weights: 0 where masked, else ``sample_weight``."""
    y_true = ops.convert_to_tensor(y_true, dtype=dtype)
    mask = ops.logical_not(ops.isnan(y_true))
    targets = ops.where(mask, y_true, ops.zeros_like(y_true))
    weights = ops.cast(mask, dtype)
    if sample_weight is not None:
        sample_weight = ops.convert_to_tensor(sample_weight, dtype=dtype)
        if len(sample_weight.shape) == 1 and len(weights.shape) == 2:
            sample_weight = ops.expand_dims(sample_weight, -1)
        weights = weights * ops.broadcast_to(sample_weight, ops.shape(weights))
    return targets, weights


@keras.saving.register_keras_serializable(package="medbench")
class MaskedAUC(keras.metrics.AUC):
    """Mean ROC AUC over classes, ignoring NaN targets (threshold-bucketed approximation).

    Wraps ``keras.metrics.AUC(curve="ROC", multi_label=True)``: masked entries get sample
    weight 0, and the mean skips classes that have not yet seen both a positive and a negative
    (plain Keras would average them in with an AUC of 0). Accuracy improves with
    ``num_thresholds`` (about 1e-2 at 1000).
    """

    def __init__(
        self,
        num_thresholds: int = 200,
        summation_method: str = "interpolation",
        name: str = "masked_auc",
        dtype: Any = None,
        thresholds: list[float] | None = None,
        num_labels: int | None = None,
        from_logits: bool = False,
    ) -> None:
        super().__init__(
            num_thresholds=num_thresholds,
            curve="ROC",
            summation_method=summation_method,
            name=name,
            dtype=dtype,
            thresholds=thresholds,
            multi_label=True,
            num_labels=num_labels,
            label_weights=None,
            from_logits=from_logits,
        )

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        targets, weights = _mask_and_weights(y_true, sample_weight, self.dtype)
        super().update_state(targets, y_pred, sample_weight=weights)

    def per_class_result(self) -> Any:
        """AUC per class, shape ``(c,)``; NaN for classes without both labels so far."""
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        recall = ops.divide_no_nan(tp, tp + fn)
        fp_rate = ops.divide_no_nan(fp, fp + tn)
        n = self.num_thresholds
        method = self.summation_method.value
        if method == "minoring":
            heights = ops.minimum(recall[: n - 1], recall[1:])
        elif method == "majoring":
            heights = ops.maximum(recall[: n - 1], recall[1:])
        else:
            heights = (recall[: n - 1] + recall[1:]) / 2.0
        by_class = ops.sum((fp_rate[: n - 1] - fp_rate[1:]) * heights, axis=0)
        # The first threshold lies below 0, so row 0 counts every seen entry as predicted positive.
        defined = ops.logical_and(tp[0] + fn[0] > 0, fp[0] + tn[0] > 0)
        return ops.where(defined, by_class, ops.full_like(by_class, float("nan")))

    def result(self) -> Any:
        by_class = self.per_class_result()
        defined = ops.logical_not(ops.isnan(by_class))
        count = ops.sum(ops.cast(defined, self.dtype))
        total = ops.sum(ops.where(defined, by_class, ops.zeros_like(by_class)))
        return ops.where(count > 0, total / ops.maximum(count, 1.0), float("nan"))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for fixed in ("curve", "multi_label", "label_weights"):
            config.pop(fixed, None)
        return config


@keras.saving.register_keras_serializable(package="medbench")
class MaskedBinaryAccuracy(keras.metrics.Metric):
    """Share of unmasked (sample, class) entries classified correctly at ``threshold``.

    A prediction counts as positive when ``p >= threshold``, as in
    :func:`medbench.metrics.classification.evaluate_predictions` (whose micro accuracy this
    reproduces).
    """

    def __init__(self, threshold: float = 0.5, name: str = "masked_binary_accuracy", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.threshold = float(threshold)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        targets, weights = _mask_and_weights(y_true, sample_weight, self.dtype)
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        predicted = ops.cast(ops.greater_equal(y_pred, self.threshold), self.dtype)
        matches = ops.cast(ops.equal(predicted, targets), self.dtype)
        self.correct.assign(self.correct + ops.sum(matches * weights))
        self.count.assign(self.count + ops.sum(weights))

    def result(self) -> Any:
        return ops.where(self.count > 0, self.correct / ops.maximum(self.count, 1e-12), float("nan"))

    def reset_state(self) -> None:
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}
