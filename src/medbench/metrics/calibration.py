"""Calibration: the reliability diagram's bins and the expected calibration error (ECE) of predicted probabilities.

Probabilities of every unmasked (image, class) entry are put into `n_bins` equal-width bins of [0, 1] (the
last bin includes 1.0); a bin's confidence is its mean probability and its frequency the share of
positives in it. ECE = sum over bins of (entries in bin / entries) * |frequency - confidence|, Guo et al.
(2017) with the binary event "this class is present" per entry, the reading that fits multi-label output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medbench.errors import MetricInputError

__all__ = ["Reliability", "reliability"]

DEFAULT_BINS = 10


@dataclass(frozen=True)
class Reliability:
    """Per-bin counts, mean probability and positive share (None for empty bins), and the ECE."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    confidence: tuple[float | None, ...]
    frequency: tuple[float | None, ...]
    ece: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": list(self.edges),
            "counts": list(self.counts),
            "confidence": list(self.confidence),
            "frequency": list(self.frequency),
            "ece": self.ece,
        }


def reliability(y_true: ArrayLike, y_score: ArrayLike, n_bins: int = DEFAULT_BINS) -> Reliability:
    """The reliability bins and ECE of probabilities `y_score` against 0/1/NaN targets (any shape, same shape)."""
    targets = np.asarray(y_true, dtype=np.float64).reshape(-1)
    scores = np.asarray(y_score, dtype=np.float64).reshape(-1)
    if targets.shape != scores.shape or not 1 <= n_bins <= 1000:
        raise MetricInputError(
            f"targets {targets.shape}, scores {scores.shape}, n_bins {n_bins}: expected equal shapes and 1..1000 bins"
        )
    known = ~np.isnan(targets)
    targets, scores = targets[known], scores[known]
    if targets.size == 0:
        raise MetricInputError("no unmasked target: the calibration needs labelled entries")
    if np.any((scores < 0) | (scores > 1) | ~np.isfinite(scores)):
        raise MetricInputError("scores outside [0, 1]: calibration needs probabilities")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    sums = np.bincount(bins, weights=scores, minlength=n_bins)
    hits = np.bincount(bins, weights=targets, minlength=n_bins)
    filled = counts > 0
    confidence = np.divide(sums, counts, out=np.zeros(n_bins), where=filled)
    frequency = np.divide(hits, counts, out=np.zeros(n_bins), where=filled)
    ece = float(np.sum(counts / targets.size * np.abs(frequency - confidence)))
    return Reliability(
        tuple(float(edge) for edge in edges),
        tuple(int(count) for count in counts),
        tuple(float(value) if ok else None for value, ok in zip(confidence, filled)),
        tuple(float(value) if ok else None for value, ok in zip(frequency, filled)),
        ece,
    )
