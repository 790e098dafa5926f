"""The precision-recall curve and average precision (AUPRC) of one class, over its unmasked entries.

Average precision is scikit-learn's: the sum over distinct score thresholds, highest first, of
(recall gain) × precision at that threshold, which neither interpolates nor smooths; tied scores form
one threshold. It is defined when the class has a positive label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from medbench.errors import UndefinedMetricError
from medbench.metrics.classification import unmasked

__all__ = ["PrecisionRecall", "average_precision", "precision_recall"]


@dataclass(frozen=True)
class PrecisionRecall:
    """One point per distinct score (thresholds decreasing): precision and recall when scores >= threshold."""

    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray


def precision_recall(y_true: ArrayLike, y_score: ArrayLike) -> PrecisionRecall:
    """The precision-recall points of one class; UndefinedMetricError without a positive label."""
    positive, scores = unmasked(y_true, y_score)
    n_pos = int(positive.sum())
    if n_pos == 0:
        raise UndefinedMetricError(f"precision-recall needs a positive label (n_pos=0, n_neg={positive.size})")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, hits = scores[order], positive[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    tp = np.cumsum(hits)[last_of_group]
    called = last_of_group + 1
    return PrecisionRecall(tp / called, tp / n_pos, sorted_scores[last_of_group])


def average_precision(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """AUPRC as scikit-learn's `average_precision_score` computes it."""
    curve = precision_recall(y_true, y_score)
    gains = np.diff(np.r_[0.0, curve.recall])
    return float(np.sum(gains * curve.precision))
