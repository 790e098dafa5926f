"""AUCMEDI's focal loss functions, returning medbench's NaN-masked Keras losses (`medbench.losses.focal`)."""

from __future__ import annotations

from collections.abc import Sequence

from medbench.losses.focal import BinaryFocalLoss, CategoricalFocalLoss, MultilabelFocalLoss

__all__ = ["binary_focal_loss", "categorical_focal_loss", "multilabel_focal_loss"]


def binary_focal_loss(alpha: float = 0.25, gamma: float = 2.0) -> BinaryFocalLoss:
    """Sigmoid focal loss, `alpha` weighing the positives."""
    return BinaryFocalLoss(alpha, gamma=gamma)


def categorical_focal_loss(alpha: Sequence[float], gamma: float = 2.0) -> CategoricalFocalLoss:
    """Softmax focal loss, `alpha` one weight per class (e.g. `compute_class_weights`' first result)."""
    return CategoricalFocalLoss(alpha, gamma=gamma)


def multilabel_focal_loss(
    class_weights: Sequence[float], gamma: float = 2.0, class_sparsity_coefficient: float = 1.0
) -> MultilabelFocalLoss:
    """Multi-label focal loss with per-class weights (`compute_multilabel_weights`)."""
    return MultilabelFocalLoss(class_weights, gamma=gamma, sparsity=class_sparsity_coefficient)
