"""AUCMEDI's class and sample weights from one-hot labels, scikit-learn's "balanced" rule.

Unlike AUCMEDI, no sample of each class is added before counting (AUCMEDI did, so that an absent class
got a weight): the weights are exactly scikit-learn's on the given labels, and a class without a sample
is an error naming it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

from medbench.errors import ConfigError

__all__ = ["compute_class_weights", "compute_multilabel_weights", "compute_sample_weights"]


def _matrix(ohe_array: ArrayLike) -> np.ndarray:
    matrix = np.asarray(ohe_array, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 1:
        raise ConfigError(f"labels of shape {matrix.shape}; expected one-hot rows (n_samples, n_classes)")
    return matrix


def compute_class_weights(ohe_array: ArrayLike, method: str = "balanced") -> tuple[np.ndarray, dict[int, float]]:
    """Weights of one-class-per-image labels: (a list for a loss, a dict for `NeuralNetwork.train`)."""
    matrix = _matrix(ohe_array)
    counts = matrix.sum(axis=0)
    if (counts == 0).any():
        raise ConfigError(f"classes {np.flatnonzero(counts == 0).tolist()} have no sample; expected each class once")
    classes = np.arange(matrix.shape[1])
    weights = compute_class_weight(class_weight=method, classes=classes, y=matrix.argmax(axis=1))
    return weights, {int(index): float(weight) for index, weight in zip(classes, weights)}


def compute_multilabel_weights(ohe_array: ArrayLike, method: str = "balanced") -> np.ndarray:
    """The weight of the positives of each class, each class balanced against its own negatives."""
    matrix = _matrix(ohe_array)
    weights = np.empty(matrix.shape[1])
    for index in range(matrix.shape[1]):
        column = matrix[:, index]
        if column.min() == column.max():
            raise ConfigError(f"class {index} has only {int(column[0])}s; expected positives and negatives")
        weights[index] = compute_class_weight(class_weight=method, classes=np.array([0.0, 1.0]), y=column)[1]
    return weights


def compute_sample_weights(ohe_array: ArrayLike, method: str = "balanced") -> np.ndarray:
    """One weight per sample for a `DataGenerator`'s `sample_weights`."""
    return compute_sample_weight(class_weight=method, y=_matrix(ohe_array))
