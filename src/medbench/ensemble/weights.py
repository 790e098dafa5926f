"""Weighted averaging: one weight per member, fitted on validation predictions and labels only.

The weights lie on the simplex (non-negative, summing to 1, written as a softmax of free parameters)
and minimise the masked cross-entropy of the weighted mean on the validation split: binary
cross-entropy over every labelled cell for sigmoid tasks, categorical cross-entropy over labelled
images for one class per image. The loss is smooth where AUROC is a step function, and a convex
combination keeps every prediction a probability (and multi-class rows summing to 1). The original
platform tuned its weights on the test set; nothing here ever sees test labels.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from medbench.errors import ConfigError

EPSILON = 1e-7
"""Probabilities are clipped to [ε, 1 − ε] inside the loss (a member's 0 or 1 must not make it infinite)."""
BOUND = 30.0
"""The free parameters stay in [−BOUND, BOUND]: a weight never reaches exactly 0 or 1 by running off."""


def weighted_mean(stack: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The members' predictions (members, samples, classes) averaged with `weights` (one per member)."""
    return np.tensordot(np.asarray(weights, dtype=np.float64), np.asarray(stack, dtype=np.float64), axes=1)


def uniform_weights(members: int) -> np.ndarray:
    """Equal weights: the plain mean."""
    return np.full(members, 1.0 / members)


def cross_entropy(predictions: np.ndarray, targets: np.ndarray, task: str) -> float:
    """Mean cross-entropy of `predictions` on the labelled targets (NaN = masked) of the task."""
    clipped = np.clip(predictions, EPSILON, 1.0 - EPSILON)
    if task == "multiclass":
        labelled = ~np.isnan(targets).any(axis=1)
        rows = clipped[labelled]
        return float(-np.mean(np.log(rows[targets[labelled] == 1.0])))
    labelled = ~np.isnan(targets)
    truth, scores = targets[labelled], clipped[labelled]
    return float(-np.mean(truth * np.log(scores) + (1.0 - truth) * np.log(1.0 - scores)))


def _simplex(parameters: np.ndarray) -> np.ndarray:
    exponent = np.exp(parameters - parameters.max())
    return exponent / exponent.sum()


def fit_weights(stack: np.ndarray, targets: np.ndarray, task: str) -> np.ndarray:
    """Member weights that minimise the validation cross-entropy of their weighted mean (see the module).

    Args:
        stack: validation predictions, (members, samples, classes).
        targets: validation targets, (samples, classes), NaN = masked.
        task: ``binary``, ``multilabel`` or ``multiclass``.

    Returns:
        One weight per member, non-negative, summing to 1; deterministic for the same inputs.
    """
    stack = np.asarray(stack, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    members = stack.shape[0]
    if (~np.isnan(targets)).sum() == 0:
        raise ConfigError("the validation split has no labelled images: weights cannot be fitted on it")
    if members == 1:
        return np.ones(1)
    result = minimize(
        lambda parameters: cross_entropy(weighted_mean(stack, _simplex(parameters)), targets, task),
        np.zeros(members),
        method="L-BFGS-B",
        bounds=[(-BOUND, BOUND)] * members,
    )
    return _simplex(result.x)
