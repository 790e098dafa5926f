"""`medbench evaluate`: any predictions file against its truth, written up as summary.json/.csv, per-image
results and plots; thresholds fixed or chosen on validation predictions, never on the evaluated ones."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medbench.atomic import write_bytes_atomic, write_json_atomic
from medbench.errors import ConfigError, DatasetError, MetricInputError
from medbench.evaluation.plots import plot_confusion, plot_curves, plot_reliability
from medbench.evaluation.summary import SUMMARY_COLUMNS, summarise, summary_rows
from medbench.evaluation.tables import Joined, join_files
from medbench.metrics.calibration import reliability
from medbench.metrics.multiclass import evaluate_multiclass
from medbench.metrics.thresholds import METHODS, threshold_table

logger = logging.getLogger(__name__)

__all__ = ["TASKS", "evaluate_files"]

TASKS = ("auto", "multilabel", "multiclass")
FIXED_THRESHOLD = 0.5


def _is_multiclass(joined: Joined) -> bool:
    """True when every labelled row marks one class and every score row sums to 1 (softmax outputs)."""
    labelled = ~np.isnan(joined.targets).all(axis=1)
    rows = joined.targets[labelled]
    one_hot = len(joined.classes) > 1 and not np.isnan(rows).any() and bool((rows.sum(axis=1) == 1).all())
    return one_hot and bool(np.allclose(joined.scores.sum(axis=1), 1.0, atol=1e-3))


def _thresholds(
    joined: Joined, validation: Joined | None, method: str, fixed: float, target_sensitivity: float
) -> dict[str, dict[str, Any]]:
    """Each class's threshold and where it came from."""
    if validation is None:
        return {name: {"value": fixed, "source": "fixed"} for name in joined.classes}
    if validation.classes != joined.classes:
        raise DatasetError(
            f"the validation predictions have classes {list(validation.classes)} but the evaluated ones "
            f"{list(joined.classes)}; expected the same classes in the same order"
        )
    return threshold_table(
        validation.targets,
        validation.scores,
        joined.classes,
        method,
        fixed=fixed,
        target_sensitivity=target_sensitivity,
    )


def _per_image(joined: Joined, thresholds: Mapping[str, dict[str, Any]], multiclass: bool) -> bytes:
    frame = pd.DataFrame({"image": list(joined.ids)})
    if joined.patients is not None:
        frame["patient"] = list(joined.patients)
    for j, name in enumerate(joined.classes):
        frame[f"true:{name}"] = joined.targets[:, j]
        frame[f"score:{name}"] = joined.scores[:, j]
        frame[f"called:{name}"] = (joined.scores[:, j] >= thresholds[name]["value"]).astype(int)
    if multiclass:
        frame["predicted"] = [joined.classes[index] for index in joined.scores.argmax(axis=1)]
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.9g")
    return buffer.getvalue().encode("utf-8")


def evaluate_files(
    truth: str | os.PathLike[str],
    predictions: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    val_truth: str | os.PathLike[str] | None = None,
    val_predictions: str | os.PathLike[str] | None = None,
    threshold_method: str = "youden",
    threshold: float = FIXED_THRESHOLD,
    target_sensitivity: float = 0.9,
    patient_column: str | None = None,
    task: str = "auto",
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate `predictions` against `truth` into folder `out`; returns the summary written to summary.json."""
    if task not in TASKS:
        raise ConfigError(f"task {task!r}; expected one of {', '.join(TASKS)}")
    if threshold_method not in METHODS:
        raise ConfigError(f"threshold method {threshold_method!r}; expected one of {', '.join(METHODS)}")
    if (val_truth is None) != (val_predictions is None):
        raise ConfigError("thresholds chosen on validation need both --val-truth and --val-predictions")
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold {threshold}: expected a probability in 0..1")
    joined = join_files(truth, predictions, patient_column=patient_column)
    validation = join_files(val_truth, val_predictions, patient_column=None) if val_truth is not None else None
    thresholds = _thresholds(joined, validation, threshold_method, threshold, target_sensitivity)
    multiclass = _is_multiclass(joined) if task == "auto" else task == "multiclass"
    summary = summarise(
        joined.targets,
        joined.scores,
        joined.classes,
        {name: entry["value"] for name, entry in thresholds.items()},
        patients=joined.patients,
        n_resamples=n_resamples,
        seed=seed,
    )
    summary = {
        "truth": str(truth),
        "predictions": str(predictions),
        "task": "multiclass" if multiclass else "multilabel",
        "classes": list(joined.classes),
        "thresholds": thresholds,
        "bootstrap": {"n_resamples": n_resamples, "by": "patient" if joined.patients else "image", "seed": seed},
        **summary,
    }
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        calibration = reliability(joined.targets, joined.scores)
        summary["calibration"] = calibration.to_dict()
        plot_reliability(calibration, folder)
    except MetricInputError as error:
        summary["calibration"] = {"undefined": str(error)}
    if multiclass:
        report = evaluate_multiclass(joined.targets, joined.scores, joined.classes)
        summary["multiclass"] = {key: value for key, value in report.to_dict().items() if key != "per_class"}
        plot_confusion(report.confusion, joined.classes, folder)
    plot_curves(joined.targets, joined.scores, joined.classes, folder)
    write_json_atomic(folder / "summary.json", summary)
    table = pd.DataFrame(summary_rows(summary), columns=list(SUMMARY_COLUMNS))
    write_bytes_atomic(folder / "summary.csv", table.to_csv(index=False, float_format="%.6g").encode("utf-8"))
    write_bytes_atomic(folder / "per_image_results.csv", _per_image(joined, thresholds, multiclass))
    logger.info("evaluated %d images of %d classes into %s", len(joined.ids), len(joined.classes), folder)
    return summary
