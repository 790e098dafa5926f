"""Bootstrap confidence intervals of per-class AUROC and its macro mean, resampling patients when known.

A resample draws patients (or images, without patient ids) with replacement; an image's weight in it is
how often its patient was drawn, so all images of a patient go in and out together (images of one patient
are correlated, and resampling them one by one would make the interval too narrow). Each class's scores
are sorted once; a resample's AUROC is then one weighted pass over the sorted, tie-grouped scores,

    AUROC_w = sum_g P_g (N_<g + N_g / 2) / (P N)

with P_g and N_g the resample's positive and negative weight in tie group g and N_<g the negative weight
below it, done for all resamples at once as matrix sums. The interval is the percentile interval.
Masked (NaN) targets are dropped per class; a resample in which a class lacks positives or negatives has
no AUROC for it and is left out of that class's interval (the count used is reported).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medbench.errors import MetricInputError
from medbench.metrics.classification import as_matrix, check_class_names

__all__ = ["BootstrapInterval", "bootstrap_auroc"]

DEFAULT_RESAMPLES = 1000
LEVEL = 0.95
_CHUNK = 200
"""Resamples weighed at once (memory: chunk × images × 8 bytes)."""


@dataclass(frozen=True)
class BootstrapInterval:
    """A percentile interval: `low`..`high` at `level`, from `n_resamples` resamples where it was defined."""

    low: float | None
    high: float | None
    level: float
    n_resamples: int

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "level": self.level, "n_resamples": self.n_resamples}


def _patient_weights(patients: np.ndarray, n_resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(counts of each patient per resample, the patient index of each image)."""
    codes, index = np.unique(patients, return_inverse=True)
    counts = rng.multinomial(len(codes), np.full(len(codes), 1.0 / len(codes)), size=n_resamples)
    return counts.astype(np.float32), index  # small whole numbers: exact in float32, half the memory traffic


@dataclass(frozen=True)
class _SortedClass:
    """One class's unmasked images sorted by score: their patient index, labels and tie-group starts."""

    patients: np.ndarray
    positive: np.ndarray
    starts: np.ndarray | None
    """The first image of each tie group, or None when every score is distinct (no grouping needed)."""

    @classmethod
    def of(cls, positive: np.ndarray, scores: np.ndarray, patient_of: np.ndarray) -> _SortedClass:
        order = np.argsort(scores, kind="stable")
        sorted_scores = scores[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
        return cls(patient_of[order], positive[order], starts if len(starts) < len(order) else None)


def _class_aurocs(entry: _SortedClass, counts: np.ndarray) -> np.ndarray:
    """AUROC of every resample (rows of `counts`, one count per patient) for one class; NaN where undefined."""
    weights = counts[:, entry.patients]
    positive = weights * entry.positive
    if entry.starts is None:
        pos, neg = positive, weights - positive
    else:
        pos = np.add.reduceat(positive, entry.starts, axis=1)
        neg = np.add.reduceat(weights, entry.starts, axis=1) - pos
    below = np.cumsum(neg, axis=1) - neg  # whole numbers below 2**24: exact in float32
    total_pos, total_neg = pos.sum(axis=1, dtype=np.float64), neg.sum(axis=1, dtype=np.float64)
    area = np.sum(pos * (below + 0.5 * neg), axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((total_pos > 0) & (total_neg > 0), area / (total_pos * total_neg), np.nan)


def _interval(values: np.ndarray, level: float) -> BootstrapInterval:
    kept = values[np.isfinite(values)]
    if kept.size == 0:
        return BootstrapInterval(None, None, level, 0)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(kept, [tail, 100.0 - tail])
    return BootstrapInterval(float(low), float(high), level, int(kept.size))


def bootstrap_auroc(
    y_true: ArrayLike,
    y_score: ArrayLike,
    classes: Sequence[str],
    *,
    patient_ids: Sequence[str] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[dict[str, BootstrapInterval], BootstrapInterval]:
    """Percentile intervals of each class's AUROC and of their macro mean over `n_resamples` resamples.

    The macro mean of a resample averages the classes defined in it, as `evaluate_predictions` does.
    """
    names = check_class_names(classes)
    targets, scores = as_matrix(y_true, "y_true"), as_matrix(y_score, "y_score")
    if targets.shape != scores.shape or targets.shape[1] != len(names):
        raise MetricInputError(f"y_true {targets.shape} and y_score {scores.shape}: expected (n, {len(names)}) each")
    if not 1 <= n_resamples <= 100_000 or not 0.0 < level < 1.0:
        raise MetricInputError(f"n_resamples {n_resamples}, level {level}: expected 1..100000 and a level in (0, 1)")
    patients = np.asarray(patient_ids if patient_ids is not None else np.arange(len(targets)), dtype=object)
    if len(patients) != len(targets):
        raise MetricInputError(f"{len(patients)} patient ids for {len(targets)} images; expected one per image")
    rng = np.random.default_rng(seed)
    counts, patient_of = _patient_weights(patients.astype(str), n_resamples, rng)
    sorted_classes: dict[int, _SortedClass] = {}
    for column in range(len(names)):
        known = ~np.isnan(targets[:, column])
        if known.any():
            sorted_classes[column] = _SortedClass.of(
                targets[known, column] == 1.0, scores[known, column], patient_of[known]
            )
    per_class = np.full((n_resamples, len(names)), np.nan)
    for start in range(0, n_resamples, _CHUNK):
        chunk = counts[start : start + _CHUNK]
        for column, entry in sorted_classes.items():
            per_class[start : start + _CHUNK, column] = _class_aurocs(entry, chunk)
    with np.errstate(invalid="ignore"):
        defined = np.isfinite(per_class)
        macro = np.where(defined.any(axis=1), np.nansum(per_class, axis=1) / np.maximum(defined.sum(axis=1), 1), np.nan)
    return {name: _interval(per_class[:, j], level) for j, name in enumerate(names)}, _interval(macro, level)
