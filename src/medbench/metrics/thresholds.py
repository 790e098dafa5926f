"""Operating thresholds: ROC points of one class and a threshold chosen on validation predictions.

A threshold is chosen on one set of predictions (validation) and then applied, unchanged, to
another (test); choosing it on the set it is reported on would overstate sensitivity and
specificity. Targets use the convention of :mod:`medbench.metrics.classification`: ``1.0``,
``0.0`` or ``NaN`` (masked, dropped); a score counts as positive when ``score >= threshold``,
so a threshold taken from :func:`roc_points` reproduces its point exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medbench.errors import MetricInputError, UndefinedMetricError
from medbench.metrics.classification import unmasked

__all__ = [
    "METHODS",
    "OperatingPoint",
    "RocPoints",
    "choose_threshold",
    "choose_thresholds",
    "operating_point",
    "roc_points",
]

METHODS: tuple[str, ...] = ("youden", "sensitivity", "fbeta")
"""``youden``: maximise sensitivity + specificity - 1; ``sensitivity``: the highest threshold that
reaches a target sensitivity (fewest false positives among those that do); ``fbeta``: maximise the
F-beta score (beta 2 by default: recall weighs four times as much as precision)."""


@dataclass(frozen=True)
class RocPoints:
    """The ROC curve of one class: one point per distinct score, thresholds in decreasing order.

    ``fpr[i]``/``tpr[i]`` are the rates when every score ``>= thresholds[i]`` is called positive.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    n_pos: int
    n_neg: int


@dataclass(frozen=True)
class OperatingPoint:
    """Confusion counts, sensitivity and specificity of one class at one threshold."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n_pos(self) -> int:
        return self.tp + self.fn

    @property
    def n_neg(self) -> int:
        return self.tn + self.fp

    @property
    def sensitivity(self) -> float | None:
        """Recall of positives; ``None`` without positive labels."""
        return self.tp / self.n_pos if self.n_pos else None

    @property
    def specificity(self) -> float | None:
        """Recall of negatives; ``None`` without negative labels."""
        return self.tn / self.n_neg if self.n_neg else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sensitivity": self.sensitivity, "specificity": self.specificity}


def roc_points(y_true: ArrayLike, y_score: ArrayLike) -> RocPoints:
    """Every ROC point of one class over its unmasked entries.

    Equals :func:`sklearn.metrics.roc_curve` with ``drop_intermediate=False`` without sklearn's
    leading ``(0, 0)`` point at an infinite threshold. Raises :class:`UndefinedMetricError`
    unless both labels occur.
    """
    positive, scores = unmasked(y_true, y_score)
    n_pos = int(positive.sum())
    n_neg = int(positive.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise UndefinedMetricError(f"the ROC curve needs both labels (n_pos={n_pos}, n_neg={n_neg})")
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    hits = positive[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    tp = np.cumsum(hits)[last_of_group]
    fp = (last_of_group + 1) - tp
    return RocPoints(fp / n_neg, tp / n_pos, sorted_scores[last_of_group], n_pos, n_neg)


def operating_point(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> OperatingPoint:
    """Counts of one class when every unmasked score ``>= threshold`` is called positive."""
    positive, scores = unmasked(y_true, y_score)
    predicted = scores >= threshold
    tp = int(np.count_nonzero(predicted & positive))
    fp = int(np.count_nonzero(predicted & ~positive))
    return OperatingPoint(
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=int(positive.size - positive.sum()) - fp,
        fn=int(positive.sum()) - tp,
    )


def choose_threshold(
    y_true: ArrayLike,
    y_score: ArrayLike,
    method: str = "youden",
    *,
    target_sensitivity: float = 0.9,
    beta: float = 2.0,
) -> OperatingPoint:
    """Choose one class's threshold on these (validation) predictions; returns its operating point there.

    ``youden`` takes the ROC point with the largest sensitivity + specificity - 1 (the highest
    threshold among ties); ``sensitivity`` the highest threshold whose sensitivity reaches
    ``target_sensitivity``. Raises :class:`UndefinedMetricError` unless both labels occur.
    """
    if method not in METHODS:
        raise MetricInputError(f"threshold method {method!r}: expected one of {', '.join(METHODS)}")
    if not 0.0 < target_sensitivity <= 1.0:
        raise MetricInputError(f"target_sensitivity is {target_sensitivity}; expected a number in (0, 1]")
    roc = roc_points(y_true, y_score)
    if method == "youden":
        index = int(np.argmax(roc.tpr - roc.fpr))
    elif method == "fbeta":
        if not beta > 0:
            raise MetricInputError(f"beta is {beta}; expected a positive number")
        tp, fp = roc.tpr * roc.n_pos, roc.fpr * roc.n_neg
        fn = roc.n_pos - tp
        index = int(np.argmax((1 + beta**2) * tp / ((1 + beta**2) * tp + beta**2 * fn + fp)))
    else:
        index = int(np.flatnonzero(roc.tpr >= target_sensitivity)[0])
    return operating_point(y_true, y_score, float(roc.thresholds[index]))


def choose_thresholds(
    y_true: ArrayLike,
    y_score: ArrayLike,
    classes: Sequence[str],
    method: str = "youden",
    *,
    target_sensitivity: float = 0.9,
    beta: float = 2.0,
) -> dict[str, OperatingPoint | str]:
    """:func:`choose_threshold` for every column of ``(n, c)`` arrays.

    A class whose threshold cannot be chosen (no positive or no negative label) maps to the
    reason as a string instead of an operating point, so it is reported as undefined, not skipped.
    """
    targets = np.asarray(y_true, dtype=np.float64)
    scores = np.asarray(y_score, dtype=np.float64)
    if targets.ndim != 2 or targets.shape != scores.shape or targets.shape[1] != len(classes):
        raise MetricInputError(
            f"y_true {targets.shape} and y_score {scores.shape} must both be (n_samples, {len(classes)}) "
            f"for classes {list(classes)}"
        )
    chosen: dict[str, OperatingPoint | str] = {}
    for column, name in enumerate(classes):
        try:
            chosen[name] = choose_threshold(
                targets[:, column], scores[:, column], method, target_sensitivity=target_sensitivity, beta=beta
            )
        except UndefinedMetricError as error:
            chosen[name] = str(error)
    return chosen


def threshold_table(
    y_true: ArrayLike,
    y_score: ArrayLike,
    classes: Sequence[str],
    method: str = "youden",
    *,
    fixed: float = 0.5,
    target_sensitivity: float = 0.9,
) -> dict[str, dict[str, Any]]:
    """Each class's threshold chosen on these (validation) predictions and where it came from, as JSON.

    A class whose threshold cannot be chosen keeps `fixed`, with the reason in its source.
    """
    chosen = choose_thresholds(y_true, y_score, classes, method, target_sensitivity=target_sensitivity)
    table: dict[str, dict[str, Any]] = {}
    for name, point in chosen.items():
        if isinstance(point, OperatingPoint):
            table[name] = {"value": point.threshold, "source": f"validation ({method})"}
        else:
            table[name] = {"value": fixed, "source": f"fixed {fixed}: no {method} threshold on validation ({point})"}
    return table
