"""Aggregation of one model's test-time augmented predictions, AUCMEDI's aggregate functions in NumPy.

Every function takes a stack of shape (cycles, samples, classes) and returns (samples, classes), doing
per sample what AUCMEDI's ``Averaging_mean``, ``Averaging_median``, ``Majority_vote``, ``Softmax`` and
``Global_argmax`` do to the (cycles, classes) predictions of one image:

- mean / median over the cycles;
- vote: every cycle votes for its argmax class, the most voted class (ties: the first) becomes a one-hot
  row. Multi-label and binary predictions (a sigmoid per class) vote per class instead: 1 where more than
  half of the cycles predict at least 0.5, 0.5 on an exact tie, else 0;
- softmax: the softmax over classes of the predictions summed over the cycles (one class per image only);
- argmax: the whole prediction of the cycle that holds the largest single value (the first such cycle).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medbench.ensemble.options import AGGREGATES
from medbench.errors import ConfigError

ONE_CLASS_TASKS = ("multiclass",)
"""Tasks whose rows are one class per image: the vote is one-hot and the softmax applies."""


def _checked(stack: np.ndarray) -> np.ndarray:
    values = np.asarray(stack, dtype=np.float64)
    if values.ndim != 3 or values.shape[0] == 0:
        raise ConfigError(f"predictions of shape {values.shape}: expected (cycles ≥ 1, samples, classes)")
    return values


def mean(stack: np.ndarray) -> np.ndarray:
    """The mean over the cycles."""
    return _checked(stack).mean(axis=0)


def median(stack: np.ndarray) -> np.ndarray:
    """The median over the cycles."""
    return np.median(_checked(stack), axis=0)


def majority_vote(stack: np.ndarray, *, one_class_per_image: bool = True) -> np.ndarray:
    """The most voted class as a one-hot row, or per class the majority of ``p >= 0.5`` (see the module)."""
    values = _checked(stack)
    cycles, samples, classes = values.shape
    if not one_class_per_image:
        positive = (values >= 0.5).sum(axis=0)
        return np.where(2 * positive > cycles, 1.0, np.where(2 * positive == cycles, 0.5, 0.0))
    votes = values.argmax(axis=2)
    counts = (votes[..., np.newaxis] == np.arange(classes)).sum(axis=0)
    winner = counts.argmax(axis=1)
    result = np.zeros((samples, classes))
    result[np.arange(samples), winner] = 1.0
    return result


def softmax(stack: np.ndarray) -> np.ndarray:
    """The softmax over classes of the predictions summed over the cycles."""
    summed = _checked(stack).sum(axis=0)
    exponent = np.exp(summed - summed.max(axis=1, keepdims=True))
    return exponent / exponent.sum(axis=1, keepdims=True)


def global_argmax(stack: np.ndarray) -> np.ndarray:
    """Per sample, the prediction of the first cycle that holds its largest single value."""
    values = _checked(stack)
    cycle = values.max(axis=2).argmax(axis=0)
    return values[cycle, np.arange(values.shape[1])]


def check_aggregate(method: str, task: str) -> None:
    """ConfigError for an unknown method, or ``softmax`` for predictions that are not one class per image."""
    if method not in AGGREGATES:
        raise ConfigError(f"aggregate {method!r}: expected one of {', '.join(AGGREGATES)}")
    if method == "softmax" and task not in ONE_CLASS_TASKS:
        raise ConfigError(
            f"aggregate 'softmax' makes one class per image, but the task is {task} (a sigmoid per class); "
            "expected mean, median, vote or argmax"
        )


def aggregate(stack: np.ndarray, method: str, *, task: str = "multilabel") -> np.ndarray:
    """`stack` (cycles, samples, classes) aggregated by `method`, one of `AGGREGATES`, for the data's task.

    Raises:
        ConfigError: an unknown method, or ``softmax`` for predictions that are not one class per image.
    """
    check_aggregate(method, task)
    one_class = task in ONE_CLASS_TASKS
    functions: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "mean": mean,
        "median": median,
        "vote": lambda values: majority_vote(values, one_class_per_image=one_class),
        "softmax": softmax,
        "argmax": global_argmax,
    }
    return functions[method](stack)
