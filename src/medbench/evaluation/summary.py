"""The summary of one set of predictions: per class and macro/micro, AUROC with its bootstrap interval, AUPRC,
and sensitivity, specificity, precision, F1 and F2 at each class's threshold.

Thresholds are fixed (0.5 by default) or chosen on validation predictions (`choose_thresholds`) and then
applied here unchanged; this module never chooses a threshold on the predictions it summarises. A value
that is not defined (a class without positives has no AUROC, no prediction above threshold leaves
precision undefined) is None with its reason, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medbench.errors import UndefinedMetricError
from medbench.metrics.bootstrap import BootstrapInterval, bootstrap_auroc
from medbench.metrics.classification import auroc
from medbench.metrics.curves import average_precision

__all__ = ["SUMMARY_COLUMNS", "summarise", "summary_rows"]

SUMMARY_COLUMNS = (
    "class", "n_pos", "n_neg", "auroc", "auroc_low", "auroc_high", "auprc", "threshold",
    "sensitivity", "specificity", "precision", "f1", "f2",
)  # fmt: skip


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator > 0 else None


def _fbeta(precision: float | None, recall: float | None, beta: float) -> float | None:
    if precision is None or recall is None or precision + recall == 0:
        return None if precision is None or recall is None else 0.0
    return (1 + beta**2) * precision * recall / (beta**2 * precision + recall)


def _rates(positive: np.ndarray, called: np.ndarray) -> dict[str, Any]:
    """Confusion counts and the rates of entries called positive (`called`) against the truth (`positive`)."""
    tp = int(np.count_nonzero(called & positive))
    fp = int(np.count_nonzero(called & ~positive))
    fn = int(np.count_nonzero(~called & positive))
    tn = int(positive.size) - tp - fp - fn
    sensitivity, precision = _ratio(tp, tp + fn), _ratio(tp, tp + fp)
    return {
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "sensitivity": sensitivity,
        "specificity": _ratio(tn, tn + fp),
        "precision": precision,
        "f1": _fbeta(precision, sensitivity, 1.0),
        "f2": _fbeta(precision, sensitivity, 2.0),
    }


def _class_row(targets: np.ndarray, scores: np.ndarray, threshold: float, interval: BootstrapInterval | None) -> dict:
    known = ~np.isnan(targets)
    positive, kept = targets[known] == 1.0, scores[known]
    row: dict[str, Any] = {"n_pos": int(positive.sum()), "n_neg": int((~positive).sum()), "undefined": {}}
    for name, metric in (("auroc", auroc), ("auprc", average_precision)):
        try:
            row[name] = metric(targets, scores)
        except UndefinedMetricError as error:
            row[name], row["undefined"][name] = None, str(error)
    if interval is not None:
        row["auroc_ci"] = interval.to_dict()
    row.update({"threshold": float(threshold), **_rates(positive, kept >= threshold)})
    return row


def _mean(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return float(np.mean(values)) if values else None


def summarise(
    targets: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    thresholds: Mapping[str, float],
    *,
    patients: Sequence[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-class rows, their macro means (with the bootstrap interval of the macro AUROC) and the micro row."""
    intervals, macro_interval = (
        bootstrap_auroc(targets, scores, classes, patient_ids=patients, n_resamples=n_resamples, seed=seed)
        if n_resamples
        else ({}, None)
    )
    per_class = {
        name: _class_row(targets[:, j], scores[:, j], thresholds[name], intervals.get(name))
        for j, name in enumerate(classes)
    }
    rows = list(per_class.values())
    macro: dict[str, Any] = {key: _mean(rows, key) for key in ("auroc", "auprc", "sensitivity", "specificity")}
    macro.update({key: _mean(rows, key) for key in ("precision", "f1", "f2")})
    macro["n_classes_auroc"] = sum(row["auroc"] is not None for row in rows)
    if macro_interval is not None:
        macro["auroc_ci"] = macro_interval.to_dict()
    flat_thresholds = np.broadcast_to([thresholds[name] for name in classes], targets.shape)
    known = ~np.isnan(targets)
    micro: dict[str, Any] = {
        "threshold": None,
        **_rates(targets[known] == 1.0, scores[known] >= flat_thresholds[known]),
    }
    for name, metric in (("auroc", auroc), ("auprc", average_precision)):
        try:
            micro[name] = metric(targets.ravel(), scores.ravel())
        except UndefinedMetricError:
            micro[name] = None
    return {"n_images": int(len(targets)), "per_class": per_class, "macro": macro, "micro": micro}


def summary_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per class, then "macro" and "micro", with `SUMMARY_COLUMNS` (for summary.csv)."""
    rows = []
    for name, row in [*summary["per_class"].items(), ("macro", summary["macro"]), ("micro", summary["micro"])]:
        interval = row.get("auroc_ci") or {}
        flat = {column: row.get(column) for column in SUMMARY_COLUMNS}
        flat.update({"class": name, "auroc_low": interval.get("low"), "auroc_high": interval.get("high")})
        rows.append(flat)
    return rows
