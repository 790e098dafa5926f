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

__all__ = ["plot_confusion", "plot_curves", "plot_reliability"]

DPI = 110


def _figure(size: tuple[float, float] = (6.0, 5.0)):  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot, *pyplot.subplots(figsize=size)


def _save(pyplot, figure, path: Path) -> Path:  # type: ignore[no-untyped-def]
    import io

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    pyplot.close(figure)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def plot_curves(targets: np.ndarray, scores: np.ndarray, classes: Sequence[str], out: Path) -> list[Path]:
    """roc.png and precision_recall.png: one curve per class that has both labels (the others are named)."""
    written = []
    for kind in ("roc", "precision_recall"):
        pyplot, figure, axes = _figure()
        skipped = []
        for j, name in enumerate(classes):
            try:
                if kind == "roc":
                    curve = roc_points(targets[:, j], scores[:, j])
                    axes.plot(np.r_[0.0, curve.fpr], np.r_[0.0, curve.tpr], label=name, linewidth=1.2)
                else:
                    pr = precision_recall(targets[:, j], scores[:, j])
                    axes.step(pr.recall, pr.precision, where="post", label=name, linewidth=1.2)
            except UndefinedMetricError:
                skipped.append(name)
        if kind == "roc":
            axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
            axes.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC")
        else:
            axes.set(xlabel="recall", ylabel="precision", title="Precision-recall")
        axes.set(xlim=(0, 1), ylim=(0, 1.02))
        if skipped:
            axes.text(0.02, 0.02, "not drawn (one label only): " + ", ".join(skipped)[:120], fontsize=7)
        axes.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
        written.append(_save(pyplot, figure, out / f"{kind}.png"))
    return written


def plot_reliability(calibration: Reliability, out: Path) -> Path:
    """reliability.png: observed frequency against mean predicted probability per bin, with the ECE."""
    pyplot, figure, axes = _figure()
    edges = np.asarray(calibration.edges)
    centres = (edges[:-1] + edges[1:]) / 2
    frequency = np.array([np.nan if value is None else value for value in calibration.frequency])
    axes.bar(centres, np.nan_to_num(frequency), width=np.diff(edges), edgecolor="black", alpha=0.6, label="observed")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability", ylabel="share of positives")
    axes.set_title(f"Reliability (ECE {calibration.ece:.3f})")
    axes.legend(fontsize=8)
    return _save(pyplot, figure, out / "reliability.png")


def plot_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str], out: Path) -> Path:
    """confusion.png: rows are the true class, columns the predicted one."""
    matrix = np.asarray(confusion)
    side = max(4.0, 0.6 * len(classes) + 2)
    pyplot, figure, axes = _figure((side, side))
    axes.imshow(matrix, cmap="Blues")
    axes.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted", ylabel="true")
    axes.set_xticklabels(classes, rotation=45, ha="right", fontsize=8)
    axes.set_yticklabels(classes, fontsize=8)
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    axes.set_title("Confusion matrix")
    return _save(pyplot, figure, out / "confusion.png")
