"""TIML's per-split statistics of a trained row: accuracy, specificity, sensitivity and AUROC.

One softmax per image (multi-class): the prediction is the argmax; with two classes the second is the
positive one (TIML's BEN;MAL order), so sensitivity and specificity are that class's; with more, they
are the macro means of the one-vs-rest rates. A sigmoid per class (multi-label): a label is called at
0.5, and accuracy, sensitivity and specificity are macro means over the classes of the unmasked labels.
AUROC is the mean over the classes where it is defined (one-vs-rest for multi-class). A rate that is not
defined (no positives) is left out of its mean; a mean of nothing is None.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medbench.metrics.classification import evaluate_predictions
from medbench.metrics.multiclass import evaluate_multiclass

__all__ = ["split_statistics"]

THRESHOLD = 0.5


def _mean(values: Sequence[float | None]) -> float | None:
    defined = [value for value in values if value is not None and np.isfinite(value)]
    return float(np.mean(defined)) if defined else None


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _rates(positive: np.ndarray, called: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """(accuracy, sensitivity, specificity) of boolean calls against boolean truth."""
    tp = int(np.count_nonzero(positive & called))
    tn = int(np.count_nonzero(~positive & ~called))
    return _rate(tp + tn, positive.size), _rate(tp, int(positive.sum())), _rate(tn, int((~positive).sum()))


def split_statistics(
    targets: np.ndarray, scores: np.ndarray, classes: Sequence[str], multiclass: bool
) -> dict[str, float | None]:
    """``{"acc", "spec", "sens", "auc"}`` of one split's targets (NaN = masked) and predicted probabilities."""
    targets, scores = np.asarray(targets, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if multiclass:
        labelled = ~np.isnan(targets).any(axis=1)
        truth, predicted = targets[labelled].argmax(axis=1), scores[labelled].argmax(axis=1)
        report = evaluate_multiclass(targets, scores, classes)
        per_class = [_rates(truth == c, predicted == c) for c in range(len(classes))]
        if len(classes) == 2:
            _, sensitivity, specificity = per_class[1]
        else:
            sensitivity = _mean([rates[1] for rates in per_class])
            specificity = _mean([rates[2] for rates in per_class])
        return {"acc": report.accuracy, "spec": specificity, "sens": sensitivity, "auc": report.macro_auroc}
    per_class = []
    for column in range(targets.shape[1]):
        known = ~np.isnan(targets[:, column])
        positive = targets[known, column] > 0.5
        per_class.append(_rates(positive, scores[known, column] >= THRESHOLD))
    auc = evaluate_predictions(targets, scores, classes).mean_auroc
    return {
        "acc": _mean([rates[0] for rates in per_class]),
        "spec": _mean([rates[2] for rates in per_class]),
        "sens": _mean([rates[1] for rates in per_class]),
        "auc": auc,
    }
