"""The PNGs of an evaluation: ROC and precision-recall curves (one line per class), the reliability diagram
with its ECE, and the confusion matrix of a one-class-per-image task. matplotlib's Agg backend, no display."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medbench.atomic import write_bytes_atomic
from medbench.errors import UndefinedMetricError
from medbench.metrics.calibration import Reliability
from medbench.metrics.curves import precision_recall
from medbench.metrics.thresholds import roc_points

__all__ = ["draw_roc", "new_figure", "plot_confusion", "plot_curves", "plot_reliability", "save_figure"]

DPI = 110


def new_figure(size: tuple[float, float] = (6.0, 5.0)):  # type: ignore[no-untyped-def]
    """pyplot (on the Agg backend), and a new figure with one axes of `size` inches."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot, *pyplot.subplots(figsize=size)


def save_figure(pyplot, figure, path: Path, dpi: int = DPI) -> Path:  # type: ignore[no-untyped-def]
    """Write `figure` to `path` as a PNG, atomically, and close it."""
    import io

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=dpi)
    pyplot.close(figure)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def draw_roc(axes, targets: np.ndarray, scores: np.ndarray, classes: Sequence[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """One ROC line per class that has both labels, then the chance diagonal; returns the classes not drawn."""
    skipped = []
    for j, name in enumerate(classes):
        try:
            curve = roc_points(targets[:, j], scores[:, j])
        except UndefinedMetricError:
            skipped.append(name)
            continue
        axes.plot(np.r_[0.0, curve.fpr], np.r_[0.0, curve.tpr], label=name, linewidth=1.2)
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    return skipped


def plot_curves(targets: np.ndarray, scores: np.ndarray, classes: Sequence[str], out: Path) -> list[Path]:
    """roc.png and precision_recall.png: one curve per class that has both labels (the others are named)."""
    written = []
    for kind in ("roc", "precision_recall"):
        pyplot, figure, axes = new_figure()
        if kind == "roc":
            skipped = draw_roc(axes, targets, scores, classes)
            axes.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC")
        else:
            skipped = _draw_precision_recall(axes, targets, scores, classes)
            axes.set(xlabel="recall", ylabel="precision", title="Precision-recall")
        axes.set(xlim=(0, 1), ylim=(0, 1.02))
        if skipped:
            axes.text(0.02, 0.02, "not drawn (one label only): " + ", ".join(skipped)[:120], fontsize=7)
        axes.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
        written.append(save_figure(pyplot, figure, out / f"{kind}.png"))
    return written


def _draw_precision_recall(axes, targets: np.ndarray, scores: np.ndarray, classes: Sequence[str]) -> list[str]:  # type: ignore[no-untyped-def]
    skipped = []
    for j, name in enumerate(classes):
        try:
            pr = precision_recall(targets[:, j], scores[:, j])
        except UndefinedMetricError:
            skipped.append(name)
            continue
        axes.step(pr.recall, pr.precision, where="post", label=name, linewidth=1.2)
    return skipped


def plot_reliability(calibration: Reliability, out: Path) -> Path:
    """reliability.png: observed frequency against mean predicted probability per bin, with the ECE."""
    pyplot, figure, axes = new_figure()
    edges = np.asarray(calibration.edges)
    centres = (edges[:-1] + edges[1:]) / 2
    frequency = np.array([np.nan if value is None else value for value in calibration.frequency])
    axes.bar(centres, np.nan_to_num(frequency), width=np.diff(edges), edgecolor="black", alpha=0.6, label="observed")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability", ylabel="share of positives")
    axes.set_title(f"Reliability (ECE {calibration.ece:.3f})")
    axes.legend(fontsize=8)
    return save_figure(pyplot, figure, out / "reliability.png")


def plot_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str], out: Path) -> Path:
    """confusion.png: rows are the true class, columns the predicted one."""
    matrix = np.asarray(confusion)
    side = max(4.0, 0.6 * len(classes) + 2)
    pyplot, figure, axes = new_figure((side, side))
    axes.imshow(matrix, cmap="Blues")
    axes.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted", ylabel="true")
    axes.set_xticklabels(classes, rotation=45, ha="right", fontsize=8)
    axes.set_yticklabels(classes, fontsize=8)
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    axes.set_title("Confusion matrix")
    return save_figure(pyplot, figure, out / "confusion.png")
