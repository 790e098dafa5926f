"""The loss a benchmark's loss token names, for the task its dataset's label set makes.

    BCE    masked binary cross-entropy                         binary, multi-label
    WBCE   with positive weights n_neg / n_pos per class        binary, multi-label
    CWBCE  with balanced positive and negative weights          binary, multi-label
    CCE    masked categorical cross-entropy                     multi-class
    WCCE   with balanced class weights n / (C n_c)              multi-class
    FL     focal loss, gamma 2: sigmoid (alpha 0.25) or softmax  every task

CCE is the categorical focal loss with gamma 0 (the focal loss generalises cross-entropy), so one
masked implementation serves both; an unlabelled image (a NaN row) takes no part.
"""

from __future__ import annotations

import keras

from medbench.benchmark.vocabulary import LOSS_TASKS, LOSSES, WEIGHTED_LOSSES, losses_for
from medbench.errors import ConfigError
from medbench.losses.class_weights import ClassWeights
from medbench.losses.focal import BinaryFocalLoss, CategoricalFocalLoss
from medbench.losses.masked_crossentropy import (
    ClassWeightedBinaryCrossentropy,
    MaskedBinaryCrossentropy,
    WeightedBinaryCrossentropy,
)

__all__ = ["FOCAL_ALPHA", "FOCAL_GAMMA", "make_loss"]

FOCAL_GAMMA = 2.0
FOCAL_ALPHA = 0.25
"""Lin et al.'s defaults for the sigmoid focal loss (the weight of the positives)."""


def make_loss(name: str, class_weights: ClassWeights | None = None, task: str = "multilabel") -> keras.losses.Loss:
    """The loss a benchmark names (case-insensitive) for `task` (``"binary"``, ``"multiclass"``, ``"multilabel"``).

    WBCE uses ``class_weights.positive_ratio`` (``n_neg / n_pos``, unaffected by ``l1_normed``), CWBCE
    ``class_weights.positive`` and ``.negative`` (`compute_class_weights`), WCCE ``class_weights.positive``
    (`compute_multiclass_weights`); the others ignore `class_weights`.
    """
    key = str(name).upper()
    if key not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}")
    if task not in LOSS_TASKS[key]:
        raise ConfigError(f"loss {key} does not fit a {task} task; expected one of {', '.join(losses_for(task))}")
    if key in WEIGHTED_LOSSES and class_weights is None:
        helper = "compute_multiclass_weights" if key == "WCCE" else "compute_class_weights"
        raise ConfigError(
            f"loss {key} needs class weights; compute them from the training labels with "
            f"medbench.losses.class_weights.{helper}() and pass them as class_weights"
        )
    if key == "BCE":
        return MaskedBinaryCrossentropy()
    if key == "WBCE":
        return WeightedBinaryCrossentropy(class_weights.positive_ratio)
    if key == "CWBCE":
        return ClassWeightedBinaryCrossentropy(class_weights.positive, class_weights.negative)
    if key == "CCE":
        return CategoricalFocalLoss(gamma=0.0, name="masked_categorical_crossentropy")
    if key == "WCCE":
        return CategoricalFocalLoss(class_weights.positive, gamma=0.0, name="weighted_categorical_crossentropy")
    if task == "multiclass":
        return CategoricalFocalLoss(gamma=FOCAL_GAMMA)
    return BinaryFocalLoss(FOCAL_ALPHA, gamma=FOCAL_GAMMA)
