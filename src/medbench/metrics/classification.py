"""NaN-masked multi-label classification metrics: exact AUROC, precision, recall, F2 and accuracy.

Targets are float arrays of shape ``(n, c)`` holding ``1.0`` (positive), ``0.0`` (negative) or
``NaN`` (masked: unknown, unmentioned or ignored by the uncertainty policy). Masked entries are
dropped before anything is counted; they are never read as negatives.

A metric that is not defined for a class (AUROC without both labels, precision without a single
predicted positive, ...) is reported as ``None`` together with the reason, never as ``0`` or
``NaN``. Averages are taken over the classes where the metric is defined and say how many that
was. Everything here is plain numpy so stored predictions can be re-evaluated without TensorFlow.

A prediction counts as positive when ``p >= threshold``, the convention of
:func:`sklearn.metrics.roc_curve`, so a threshold read off an ROC curve reproduces its point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medbench.errors import MetricInputError, UndefinedMetricError

__all__ = [
    "BETA",
    "METRIC_NAMES",
    "ClassMetrics",
    "MacroMetrics",
    "MetricInputError",
    "MetricsReport",
    "UndefinedMetricError",
    "auroc",
    "evaluate_predictions",
]

BETA = 2.0
"""The beta of the reported F-beta score: recall weighs four times as much as precision."""

METRIC_NAMES: tuple[str, ...] = ("auroc", "precision", "recall", "f2", "accuracy")
"""The metrics computed per class, averaged (macro) and pooled (micro)."""


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassMetrics:
    """Metrics of one class (or of all entries pooled, for the micro average).

    ``n_pos``/``n_neg`` count the unmasked positive/negative targets, ``n_masked`` the NaN ones.
    A metric is ``None`` when undefined; ``undefined_reasons`` maps its name to the reason.
    ``threshold`` is ``None`` for a pooled report whose classes used different thresholds.
    """

    name: str
    n_pos: int
    n_neg: int
    n_masked: int
    auroc: float | None
    precision: float | None
    recall: float | None
    f2: float | None
    accuracy: float | None
    threshold: float | None
    undefined_reasons: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "undefined_reasons", MappingProxyType(dict(self.undefined_reasons)))

    @property
    def undefined_reason(self) -> str | None:
        """Every undefined metric with its reason, e.g. ``"auroc: no positive labels (n_pos=0, n_neg=37)"``."""
        if not self.undefined_reasons:
            return None
        return "; ".join(f"{metric}: {reason}" for metric, reason in self.undefined_reasons.items())

    def value(self, metric: str) -> float | None:
        """The value of ``metric`` (one of :data:`METRIC_NAMES`)."""
        if metric not in METRIC_NAMES:
            raise MetricInputError(f"unknown metric {metric!r}; expected one of {', '.join(METRIC_NAMES)}")
        return getattr(self, metric)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``None`` for undefined metrics, no NaN); the name is the caller's key."""
        return {
            "n_pos": self.n_pos,
            "n_neg": self.n_neg,
            "n_masked": self.n_masked,
            **{metric: getattr(self, metric) for metric in METRIC_NAMES},
            "threshold": self.threshold,
            "undefined": dict(self.undefined_reasons),
        }

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> ClassMetrics:
        """Inverse of :meth:`to_dict`."""
        _require_keys(data, ("n_pos", "n_neg", "n_masked", *METRIC_NAMES, "threshold"), where=f"class {name!r}")
        return cls(
            name=name,
            n_pos=int(data["n_pos"]),
            n_neg=int(data["n_neg"]),
            n_masked=int(data["n_masked"]),
            **{metric: _optional_float(data[metric]) for metric in METRIC_NAMES},
            threshold=_optional_float(data["threshold"]),
            undefined_reasons={str(k): str(v) for k, v in (data.get("undefined") or {}).items()},
        )


@dataclass(frozen=True)
class MacroMetrics:
    """Unweighted means over the classes where each metric is defined.

    ``n_classes[metric]`` is how many classes entered the mean; a metric defined for no class is ``None``.
    """

    auroc: float | None
    precision: float | None
    recall: float | None
    f2: float | None
    accuracy: float | None
    n_classes: Mapping[str, int] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        counts = {metric: int(self.n_classes.get(metric, 0)) for metric in METRIC_NAMES}
        object.__setattr__(self, "n_classes", MappingProxyType(counts))

    @classmethod
    def from_classes(cls, per_class: Iterable[ClassMetrics]) -> MacroMetrics:
        """Average ``per_class`` metric by metric, skipping the classes where a metric is undefined."""
        per_class = tuple(per_class)
        means: dict[str, float | None] = {}
        counts: dict[str, int] = {}
        for metric in METRIC_NAMES:
            values = [v for v in (getattr(c, metric) for c in per_class) if v is not None]
            counts[metric] = len(values)
            means[metric] = math.fsum(values) / len(values) if values else None
        return cls(**means, n_classes=counts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: the means plus ``"n_classes": {metric: count}``."""
        return {**{metric: getattr(self, metric) for metric in METRIC_NAMES}, "n_classes": dict(self.n_classes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MacroMetrics:
        """Inverse of :meth:`to_dict`."""
        _require_keys(data, (*METRIC_NAMES, "n_classes"), where="macro")
        return cls(
            **{metric: _optional_float(data[metric]) for metric in METRIC_NAMES},
            n_classes={str(k): int(v) for k, v in data["n_classes"].items()},
        )


@dataclass(frozen=True)
class MetricsReport:
    """Per-class, macro-averaged and micro-pooled metrics of one set of predictions."""

    per_class: tuple[ClassMetrics, ...]
    macro: MacroMetrics
    micro: ClassMetrics
    n_samples: int

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in report order."""
        return tuple(c.name for c in self.per_class)

    @property
    def mean_auroc(self) -> float | None:
        """Macro AUROC: the mean over classes with both labels present (``None`` if there is none)."""
        return self.macro.auroc

    def __getitem__(self, name: str) -> ClassMetrics:
        for metrics in self.per_class:
            if metrics.name == name:
                return metrics
        raise KeyError(f"no class {name!r} in this report; classes are {', '.join(self.classes)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (no NaN, ``None`` where undefined); :meth:`from_dict` reads it back."""
        return {
            "per_class": {c.name: c.to_dict() for c in self.per_class},
            "macro": self.macro.to_dict(),
            "micro": self.micro.to_dict(),
            "n_samples": self.n_samples,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricsReport:
        """Inverse of :meth:`to_dict` (e.g. for a report read back from an experiment log)."""
        _require_keys(data, ("per_class", "macro", "micro", "n_samples"), where="metrics report")
        return cls(
            per_class=tuple(ClassMetrics.from_dict(str(name), d) for name, d in data["per_class"].items()),
            macro=MacroMetrics.from_dict(data["macro"]),
            micro=ClassMetrics.from_dict("micro", data["micro"]),
            n_samples=int(data["n_samples"]),
        )


# --------------------------------------------------------------------------------------------
# Computation
# --------------------------------------------------------------------------------------------


def unmasked(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The checked, unmasked entries of one class: (positive as booleans, scores).

    ``y_true`` holds 1.0/0.0 with NaN for masked entries (dropped); ``y_score`` finite scores of
    the same length. Anything else is a :class:`MetricInputError` naming the first bad index.
    """
    labels = _as_1d(y_true, "y_true")
    scores = _as_1d(y_score, "y_score")
    if labels.shape != scores.shape:
        raise MetricInputError(
            f"y_true has {labels.size} entries but y_score has {scores.size}; expected equal lengths"
        )
    bad = ~(np.isnan(labels) | (labels == 0.0) | (labels == 1.0))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise MetricInputError(f"y_true[{index}] is {float(labels[index])}; expected 1.0, 0.0 or NaN (masked)")
    keep = ~np.isnan(labels)
    if not np.all(np.isfinite(scores[keep])):
        index = int(np.flatnonzero(keep & ~np.isfinite(scores))[0])
        raise MetricInputError(f"y_score[{index}] is {float(scores[index])}; expected a finite score")
    return labels[keep] == 1.0, scores[keep]


def auroc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Exact area under the ROC curve of one class (Mann-Whitney U with average ranks for ties).

    Masked (NaN) labels are dropped (see :func:`unmasked`). Equals
    :func:`sklearn.metrics.roc_auc_score` on the unmasked entries. Raises
    :class:`UndefinedMetricError` unless both labels occur.
    """
    positive, scores = unmasked(y_true, y_score)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise UndefinedMetricError(f"AUROC is undefined: {_missing_label_reason(n_pos, n_neg)}")
    return _auroc(positive, scores)


def evaluate_predictions(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    classes: Sequence[str],
    threshold: float | ArrayLike = 0.5,
) -> MetricsReport:
    """Evaluate probabilities ``y_pred`` against masked targets ``y_true`` (both shape ``(n, c)``).

    ``classes`` names the ``c`` columns; ``threshold`` is one probability for all classes or one
    per class (shape ``(c,)``). Returns per-class metrics, their macro means over the classes
    where each is defined, and micro metrics pooled over every unmasked entry.
    """
    names = check_class_names(classes)
    targets = as_matrix(y_true, "y_true")
    scores = as_matrix(y_pred, "y_pred")
    if targets.shape != scores.shape:
        raise MetricInputError(f"y_true has shape {targets.shape} but y_pred has {scores.shape}; expected equal shapes")
    n_samples, n_classes = targets.shape
    if n_samples == 0:
        raise MetricInputError("y_true and y_pred have no rows; expected at least one sample")
    if n_classes != len(names):
        raise MetricInputError(
            f"y_true and y_pred have {n_classes} columns but {len(names)} class names were given "
            f"({', '.join(names)}); expected one name per column"
        )
    _check_targets(targets, names)
    check_probabilities(scores, names)
    thresholds = _check_thresholds(threshold, names)

    per_class = tuple(
        _binary_metrics(name, targets[:, j], scores[:, j], np.full(n_samples, thresholds[j]), float(thresholds[j]))
        for j, name in enumerate(names)
    )
    shared = float(thresholds[0]) if np.all(thresholds == thresholds[0]) else None
    micro = _binary_metrics(
        "micro", targets.ravel(), scores.ravel(), np.broadcast_to(thresholds, targets.shape).ravel(), shared
    )
    return MetricsReport(
        per_class=per_class, macro=MacroMetrics.from_classes(per_class), micro=micro, n_samples=n_samples
    )


def _binary_metrics(
    name: str, targets: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, threshold: float | None
) -> ClassMetrics:
    """All metrics of one column (or of pooled entries) with per-entry ``thresholds``."""
    keep = ~np.isnan(targets)
    positive = targets[keep] == 1.0
    scores = scores[keep]
    predicted = scores >= thresholds[keep]
    n_pos = int(positive.sum())
    n_neg = int(positive.size - n_pos)
    tp = int(np.count_nonzero(predicted & positive))
    fp = int(np.count_nonzero(predicted & ~positive))
    fn = n_pos - tp
    tn = n_neg - fp
    n_masked = int(targets.size - positive.size)

    reasons: dict[str, str] = {}
    counts = f"(n_pos={n_pos}, n_neg={n_neg}, n_masked={n_masked})"
    if n_pos + n_neg == 0:
        for metric in METRIC_NAMES:
            reasons[metric] = f"no unmasked labels {counts}"
        return ClassMetrics(name, n_pos, n_neg, n_masked, None, None, None, None, None, threshold, reasons)

    auc: float | None = None
    if n_pos and n_neg:
        auc = _auroc(positive, scores)
    else:
        reasons["auroc"] = _missing_label_reason(n_pos, n_neg)

    precision: float | None = None
    if tp + fp:
        precision = tp / (tp + fp)
    else:
        at = f"at threshold {threshold:g}" if threshold is not None else "at the class thresholds"
        reasons["precision"] = f"no predicted positives {at} (n_pos={n_pos}, n_neg={n_neg})"

    recall: float | None = None
    f_beta: float | None = None
    if n_pos:
        recall = tp / n_pos
        beta2 = BETA * BETA
        f_beta = (1.0 + beta2) * tp / ((1.0 + beta2) * tp + beta2 * fn + fp)
    else:
        reasons["recall"] = _missing_label_reason(n_pos, n_neg)
        reasons["f2"] = f"recall is undefined: {_missing_label_reason(n_pos, n_neg)}"

    accuracy = (tp + tn) / (n_pos + n_neg)
    return ClassMetrics(name, n_pos, n_neg, n_masked, auc, precision, recall, f_beta, accuracy, threshold, reasons)


def _auroc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUROC in integer arithmetic: twice every average rank is an integer."""
    _, group, group_size = np.unique(scores, return_inverse=True, return_counts=True)
    group_end = np.cumsum(group_size)
    twice_rank = (2 * group_end - group_size + 1)[group.ravel()]
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    twice_u = int(twice_rank[positive].sum()) - n_pos * (n_pos + 1)
    return twice_u / (2 * n_pos * n_neg)


def _missing_label_reason(n_pos: int, n_neg: int) -> str:
    which = "positive" if n_pos == 0 else "negative"
    if n_pos == 0 and n_neg == 0:
        which = "unmasked"
    return f"no {which} labels (n_pos={n_pos}, n_neg={n_neg})"


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _as_1d(values: ArrayLike, what: str) -> np.ndarray:
    array = _as_float(values, what)
    if array.ndim != 1:
        raise MetricInputError(f"{what} has shape {array.shape}; expected a 1-D array for one class")
    return array


def as_matrix(values: ArrayLike, what: str) -> np.ndarray:
    """`values` as a float (n_samples, n_classes) array; MetricInputError naming `what` otherwise."""
    array = _as_float(values, what)
    if array.ndim != 2:
        raise MetricInputError(
            f"{what} has shape {array.shape}; expected (n_samples, n_classes) (use .reshape(-1, 1) for a single class)"
        )
    return array


def _as_float(values: ArrayLike, what: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricInputError(f"{what} cannot be read as a float array ({exc}); expected numbers") from exc


def check_class_names(classes: Sequence[str]) -> tuple[str, ...]:
    """The class names as a tuple: non-empty, unique strings, at least one."""
    if isinstance(classes, str):
        raise MetricInputError(f"classes is the string {classes!r}; expected a sequence of class names")
    names = tuple(classes)
    for name in names:
        if not isinstance(name, str) or not name:
            raise MetricInputError(f"class name {name!r} is not a non-empty string; expected class names")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MetricInputError(f"class names {duplicates} occur more than once; expected unique names")
    if not names:
        raise MetricInputError("no class names given; expected one name per column")
    return names


def _check_targets(targets: np.ndarray, names: Sequence[str]) -> None:
    bad = ~(np.isnan(targets) | (targets == 0.0) | (targets == 1.0))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise MetricInputError(
            f"y_true[{row}, {col}] (sample {row}, class {names[col]!r}) is {float(targets[row, col])}; expected 1.0, "
            f"0.0 or NaN (masked) — uncertain labels (-1) must be resolved by the uncertainty policy first"
        )


def check_probabilities(scores: np.ndarray, names: Sequence[str]) -> None:
    """Every score a probability in [0, 1]; MetricInputError naming the first sample and class otherwise."""
    bad = ~((scores >= 0.0) & (scores <= 1.0))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise MetricInputError(
            f"y_pred[{row}, {col}] (sample {row}, class {names[col]!r}) is {float(scores[row, col])}; "
            "expected a probability in [0, 1] (apply the sigmoid to logits first)"
        )


def _check_thresholds(threshold: float | ArrayLike, names: Sequence[str]) -> np.ndarray:
    values = _as_float(threshold, "threshold")
    if values.ndim == 0:
        values = np.full(len(names), float(values))
    elif values.shape != (len(names),):
        raise MetricInputError(
            f"threshold has shape {values.shape}; expected a single number or one per class ({len(names)},)"
        )
    bad = ~((values >= 0.0) & (values <= 1.0))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise MetricInputError(
            f"threshold for class {names[j]!r} is {float(values[j])}; expected a probability in [0, 1]"
        )
    return values


def _optional_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if math.isnan(number):
        raise MetricInputError("a stored metric is NaN; expected a number or None (null) for undefined metrics")
    return number


def _require_keys(data: Mapping[str, Any], keys: Iterable[str], *, where: str) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise MetricInputError(f"{where}: missing keys {missing}; expected the layout written by to_dict()")
