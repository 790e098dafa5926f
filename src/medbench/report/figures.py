"""The PNGs of a report, as bytes: training curves, the evaluation plots of a split, and the comparison plots.

Training curves follow AUCMEDI's `evaluate_fitting`: one panel per logged quantity over the epochs, the
training value beside its validation counterpart (``loss`` with ``val_loss``, …), plus the learning
rate and each class's validation AUROC, with the best epoch marked. The ROC, precision-recall,
reliability and confusion plots are `medbench.evaluation.plots`' own; the comparison plots follow
AUCMEDI's `evaluate_comparison` (per-class AUROC of each run side by side, with its bootstrap interval).
matplotlib's Agg backend, no display.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medbench.errors import MetricInputError
from medbench.evaluation.plots import plot_confusion, plot_curves, plot_reliability
from medbench.metrics.calibration import reliability
from medbench.metrics.multiclass import evaluate_multiclass
from medbench.report.evidence import RunEvidence, SplitScores

__all__ = ["comparison_auroc", "comparison_curves", "split_plots", "training_curves"]

DPI = 100
PANEL = (4.2, 3.0)
COLUMNS = 3
SKIPPED_KEYS = frozenset({"epoch", "checkpoint", "val", "learning_rate"})


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _png(pyplot: Any, figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    pyplot.close(figure)
    return buffer.getvalue()


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def _series(history: Sequence[Mapping[str, Any]]) -> list[tuple[str, dict[str, list[float]]]]:
    """(panel title, label → values per epoch) for every logged quantity, train and val paired."""
    keys: list[str] = []
    for row in history:
        keys += [
            key
            for key, value in row.items()
            if key not in keys and key not in SKIPPED_KEYS and _number(value) == _number(value)
        ]
    panels: list[tuple[str, dict[str, list[float]]]] = []
    for key in [key for key in keys if not key.startswith("val_")]:
        lines = {"train": [_number(row.get(key)) for row in history]}
        if f"val_{key}" in keys:
            lines["val"] = [_number(row.get(f"val_{key}")) for row in history]
        panels.append((key, lines))
    paired = {f"val_{title}" for title, _ in panels}
    for key in [key for key in keys if key.startswith("val_") and key not in paired]:
        panels.append((key, {"val": [_number(row.get(key)) for row in history]}))
    val_rows = [row.get("val") if isinstance(row.get("val"), dict) else {} for row in history]
    for key in ("accuracy", "balanced_accuracy"):  # a multi-class run's exact validation scores
        if any(key in row for row in val_rows):
            values = [_number(row.get(key)) for row in val_rows]
            panel = next((lines for title, lines in panels if title == key), None)
            if panel is None:
                panels.append((key, {"val": values}))
            else:
                panel.setdefault("val", values)
    classes: list[str] = []
    for row in val_rows:
        classes += [name for name in (row.get("per_class") or {}) if name not in classes]
    if classes:
        per_class = {
            name: [_number(((row.get("per_class") or {}).get(name) or {}).get("auroc")) for row in val_rows]
            for name in classes
        }
        panels.append(("val AUROC per class", per_class))
    if any("learning_rate" in row for row in history):
        panels.append(("learning_rate", {"": [_number(row.get("learning_rate")) for row in history]}))
    return panels


def _epoch_ticks(axis: Any, epochs: Sequence[int]) -> None:
    """A tick per epoch for short runs, whole-number ticks otherwise."""
    if len(epochs) <= 15:
        axis.set_xticks(list(epochs))
    else:
        axis.xaxis.get_major_locator().set_params(integer=True)


def training_curves(history: Sequence[Mapping[str, Any]], best_epoch: int | None = None) -> bytes | None:
    """One panel per logged quantity over the epochs (None without history)."""
    panels = _series(history)
    if not history or not panels:
        return None
    pyplot = _pyplot()
    rows = math.ceil(len(panels) / COLUMNS)
    columns = min(COLUMNS, len(panels))
    figure, axes = pyplot.subplots(rows, columns, figsize=(PANEL[0] * columns, PANEL[1] * rows), squeeze=False)
    epochs = [int(row.get("epoch", number + 1)) for number, row in enumerate(history)]
    for axis, (title, lines) in zip(axes.ravel(), panels):
        for label, values in lines.items():
            style = {"linestyle": "--"} if label == "val" else {}
            axis.plot(epochs, values, marker="o", markersize=3, linewidth=1.3, label=label or None, **style)
        if best_epoch is not None:
            axis.axvline(best_epoch, color="grey", linestyle=":", linewidth=1)
        if title == "learning_rate":
            axis.set_yscale("log")
        axis.set(title=title, xlabel="epoch")
        _epoch_ticks(axis, epochs)
        if any(label for label in lines):
            axis.legend(fontsize=7)
    for axis in axes.ravel()[len(panels) :]:
        axis.axis("off")
    return _png(pyplot, figure)


def _confusion(split: SplitScores, evidence: RunEvidence) -> tuple[list[list[int]], tuple[str, ...]] | None:
    """The confusion matrix of a single-label run: argmax for several classes, the threshold for one."""
    if not evidence.single_label:
        return None
    if len(evidence.classes) == 1:
        name = evidence.classes[0]
        row = split.summary["per_class"][name]
        return [[row["tn"], row["fp"]], [row["fn"], row["tp"]]], (f"not {name}", name)
    try:
        report = evaluate_multiclass(split.targets, split.scores, evidence.classes)
    except MetricInputError:
        return None
    return [list(counts) for counts in report.confusion], evidence.classes


def split_plots(split: SplitScores, evidence: RunEvidence) -> dict[str, bytes]:
    """ROC, precision-recall, reliability (and, single-label, confusion) PNGs of one split, by name."""
    with tempfile.TemporaryDirectory(prefix="medbench-report-") as folder:
        out = Path(folder)
        written = list(plot_curves(split.targets, split.scores, evidence.classes, out))
        try:
            written.append(plot_reliability(reliability(split.targets, split.scores), out))
        except MetricInputError:
            pass
        confusion = _confusion(split, evidence)
        if confusion is not None:
            written.append(plot_confusion(confusion[0], confusion[1], out))
        return {path.stem: path.read_bytes() for path in written}


def comparison_auroc(evidences: Sequence[RunEvidence], part: str, labels: Sequence[str]) -> bytes:
    """Per-class (and macro) AUROC of each run side by side, with the bootstrap interval as an error bar."""
    classes: list[str] = []
    for evidence in evidences:
        classes += [name for name in evidence.classes if name not in classes]
    groups = [*classes, "macro"]
    pyplot = _pyplot()
    figure, axis = pyplot.subplots(figsize=(max(6.0, 0.9 * len(groups) * max(1, len(evidences)) / 2 + 3), 4.2))
    width = 0.8 / max(1, len(evidences))
    for number, (evidence, label) in enumerate(zip(evidences, labels)):
        summary = evidence.splits[part].summary
        rows = [summary["per_class"].get(name) or {} for name in classes] + [summary["macro"]]
        values = np.array([_number(row.get("auroc")) for row in rows])
        low = np.array([_number((row.get("auroc_ci") or {}).get("low")) for row in rows])
        high = np.array([_number((row.get("auroc_ci") or {}).get("high")) for row in rows])
        where = np.arange(len(groups)) - 0.4 + width * (number + 0.5)
        errors = np.vstack([np.nan_to_num(values - low), np.nan_to_num(high - values)])
        axis.bar(where, np.nan_to_num(values), width=width * 0.9, label=label)
        axis.errorbar(where, values, yerr=errors, fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
    axis.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axis.set_xticks(np.arange(len(groups)))
    axis.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    axis.set(ylim=(0, 1.02), ylabel=f"AUROC, {part} (95% CI)")
    axis.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(3, len(evidences)), frameon=False)
    return _png(pyplot, figure)


def comparison_curves(evidences: Sequence[RunEvidence], labels: Sequence[str]) -> bytes | None:
    """Training loss and validation mean AUROC of each run over the epochs (None when no run has a history)."""
    if not any(evidence.history for evidence in evidences):
        return None
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(1, 2, figsize=(PANEL[0] * 2, PANEL[1]))
    for evidence, label in zip(evidences, labels):
        epochs = [int(row.get("epoch", number + 1)) for number, row in enumerate(evidence.history)]
        axes[0].plot(epochs, [_number(row.get("loss")) for row in evidence.history], marker="o", markersize=3)
        auroc = [_number(row.get("val_mean_auroc")) for row in evidence.history]
        axes[1].plot(epochs, auroc, marker="o", markersize=3, label=label)
    axes[0].set(title="training loss", xlabel="epoch")
    axes[1].set(title="validation mean AUROC", xlabel="epoch")
    longest = max((evidence.history for evidence in evidences), key=len)
    for axis in axes:
        _epoch_ticks(axis, [int(row.get("epoch", number + 1)) for number, row in enumerate(longest)])
    axes[1].legend(fontsize=7)
    return _png(pyplot, figure)
