"""Multi-class metrics (one class per image, softmax outputs): accuracy, balanced accuracy, the confusion
matrix and one-vs-rest AUROC per class.

Targets are one-hot float rows ``(n, c)``: ``1.0`` at the image's class and ``0.0`` elsewhere, or a
row of ``NaN`` for an image without a label, which is dropped before anything is counted. A row with
no class, several classes or a partly masked row is an error naming the sample: for one class per
image there is no other honest reading of it. The predicted class is the most probable one (the
first of equals). A metric that is not defined (AUROC of a class that never or always occurs) is
``None`` with its reason, never ``0`` or ``NaN``, as in `medbench.metrics.classification`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medbench.errors import MetricInputError, UndefinedMetricError
from medbench.metrics.classification import (
    MetricsReport,
    as_matrix,
    auroc,
    check_class_names,
    check_probabilities,
    evaluate_predictions,
)

__all__ = ["MulticlassReport", "SplitReport", "class_indices", "evaluate_for_task", "evaluate_multiclass"]

ROW_SUM_TOLERANCE = 1e-3
"""How far a row of predicted probabilities may sum from 1 (float32 softmax rounding is ~1e-7 a class)."""


@dataclass(frozen=True)
class MulticlassReport:
    """Metrics of one multi-class split.

    Attributes:
        classes: Class names, in the columns' order.
        n_samples: Labelled samples counted (unlabelled rows are dropped).
        accuracy: Top-1 accuracy.
        balanced_accuracy: Mean recall over the classes that occur in the targets.
        confusion: Counts, row = true class, column = predicted class, both in `classes` order.
        auroc: One-vs-rest AUROC per class (None where undefined).
        auroc_reasons: Why a class's AUROC is undefined, for the classes where it is.
        macro_auroc: Mean of the defined per-class AUROCs (None when none is defined).
    """

    classes: tuple[str, ...]
    n_samples: int
    accuracy: float
    balanced_accuracy: float
    confusion: tuple[tuple[int, ...], ...]
    auroc: Mapping[str, float | None]
    auroc_reasons: Mapping[str, str]
    macro_auroc: float | None

    @property
    def mean_auroc(self) -> float | None:
        """The macro one-vs-rest AUROC: what training monitors and runs are ranked by, as for multi-label."""
        return self.macro_auroc

    @property
    def n_auroc_classes(self) -> int:
        """How many classes the macro AUROC averages."""
        return sum(value is not None for value in self.auroc.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": "multiclass",
            "classes": list(self.classes),
            "n_samples": self.n_samples,
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "confusion": [list(row) for row in self.confusion],
            "per_class": {
                name: {
                    "auroc": self.auroc[name],
                    **({"undefined": self.auroc_reasons[name]} if name in self.auroc_reasons else {}),
                }
                for name in self.classes
            },
            "macro": {"auroc": self.macro_auroc, "n_classes": self.n_auroc_classes},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MulticlassReport:
        classes = tuple(data["classes"])
        per_class = data["per_class"]
        return cls(
            classes=classes,
            n_samples=int(data["n_samples"]),
            accuracy=float(data["accuracy"]),
            balanced_accuracy=float(data["balanced_accuracy"]),
            confusion=tuple(tuple(int(count) for count in row) for row in data["confusion"]),
            auroc={name: per_class[name]["auroc"] for name in classes},
            auroc_reasons={name: per_class[name]["undefined"] for name in classes if "undefined" in per_class[name]},
            macro_auroc=data["macro"]["auroc"],
        )


def class_indices(y_true: ArrayLike, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(labelled rows as a boolean mask, the class index of each labelled row) from one-hot targets.

    A row of NaN is unlabelled; any other row must hold exactly one 1.0 and 0.0 elsewhere.
    """
    names = check_class_names(classes)
    targets = as_matrix(y_true, "y_true")
    if targets.shape[1] != len(names):
        raise MetricInputError(
            f"y_true has {targets.shape[1]} columns but {len(names)} class names were given; expected one per column"
        )
    masked = np.isnan(targets)
    labelled = ~masked.all(axis=1)
    partly = labelled & masked.any(axis=1)
    if partly.any():
        row = int(np.flatnonzero(partly)[0])
        raise MetricInputError(
            f"y_true[{row}] (sample {row}) is partly masked; expected one class per image: a one-hot row, "
            "or a row of NaN for an unlabelled image"
        )
    rows = targets[labelled]
    valid = ((rows == 0.0) | (rows == 1.0)).all(axis=1) & (rows.sum(axis=1) == 1.0)
    if not valid.all():
        row = int(np.flatnonzero(labelled)[np.flatnonzero(~valid)[0]])
        marked = [names[j] for j in np.flatnonzero(targets[row] != 0.0)]
        raise MetricInputError(
            f"y_true[{row}] (sample {row}) marks {len(marked)} classes {marked[:10]}; expected exactly one class "
            "per image (1.0 at its class, 0.0 elsewhere): multi-label data needs the multi-label metrics"
        )
    return labelled, rows.argmax(axis=1)


def evaluate_multiclass(y_true: ArrayLike, y_pred: ArrayLike, classes: Sequence[str]) -> MulticlassReport:
    """Evaluate softmax probabilities ``y_pred`` against one-hot targets ``y_true`` (both shape ``(n, c)``)."""
    names = check_class_names(classes)
    labelled, truth = class_indices(y_true, names)
    scores = as_matrix(y_pred, "y_pred")
    if scores.shape != labelled.shape + (len(names),):
        raise MetricInputError(f"y_pred has shape {scores.shape}; expected {(labelled.size, len(names))} like y_true")
    check_probabilities(scores, names)
    sums = scores.sum(axis=1)
    off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise MetricInputError(
            f"y_pred[{row}] (sample {row}) sums to {float(sums[row]):.6g}; expected probabilities of one class per "
            "image that sum to 1 (apply the softmax, not the sigmoid)"
        )
    if not labelled.any():
        raise MetricInputError("y_true has no labelled rows; expected at least one image with its class")
    scores = scores[labelled]
    predicted = scores.argmax(axis=1)
    count = len(names)
    confusion = np.bincount(truth * count + predicted, minlength=count * count).reshape(count, count)
    support = confusion.sum(axis=1)
    present = support > 0
    recall = np.diag(confusion)[present] / support[present]
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for index, name in enumerate(names):
        try:
            values[name] = auroc((truth == index).astype(np.float64), scores[:, index])
        except UndefinedMetricError as error:
            values[name], reasons[name] = None, str(error)
    defined = [value for value in values.values() if value is not None]
    return MulticlassReport(
        classes=names,
        n_samples=int(truth.size),
        accuracy=float(np.mean(predicted == truth)),
        balanced_accuracy=float(recall.mean()),
        confusion=tuple(tuple(int(value) for value in row) for row in confusion),
        auroc=values,
        auroc_reasons=reasons,
        macro_auroc=float(np.mean(defined)) if defined else None,
    )


SplitReport = MetricsReport | MulticlassReport
"""The metrics of one split, of whichever task."""


def evaluate_for_task(task: str, y_true: ArrayLike, y_pred: ArrayLike, classes: Sequence[str]) -> SplitReport:
    """The metrics of a split for its task: `evaluate_multiclass` for ``"multiclass"``, else the multi-label
    `evaluate_predictions` (a binary task is its one-class case)."""
    if task == "multiclass":
        return evaluate_multiclass(y_true, y_pred, classes)
    if task not in ("binary", "multilabel"):
        raise MetricInputError(f"task {task!r}; expected binary, multiclass or multilabel")
    return evaluate_predictions(y_true, y_pred, classes)
