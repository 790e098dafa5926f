"""The files TIML writes for each row of a table: its one-row result CSV, the model, the training results
and the plots of loss, accuracy and ROC (matplotlib's Agg backend, written atomically)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medbench.atomic import copy_atomic, write_bytes_atomic
from medbench.evaluation.plots import draw_roc, new_figure, save_figure
from medbench.runs.run_dir import RunDir

__all__ = ["table_csv", "write_row_artefacts"]

DPI = 100


def table_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> bytes:
    """The rows as CSV text in `columns` order (None written empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue().encode("utf-8")


def _val_accuracy(report: Mapping[str, Any]) -> float | None:
    value = report.get("accuracy", (report.get("macro") or {}).get("accuracy"))
    return float(value) if isinstance(value, int | float) else None


def history_rows(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per epoch: training loss, learning rate, validation accuracy and mean AUROC (TIML's training results)."""
    return [
        {
            "epoch": row.get("epoch"),
            "loss": row.get("loss"),
            "learning_rate": row.get("learning_rate"),
            "val_accuracy": _val_accuracy(row.get("val") or {}),
            "val_mean_auroc": row.get("val_mean_auroc"),
        }
        for row in history
    ]


def _curve(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], title: str, path: Path) -> Path:
    pyplot, figure, axis = new_figure((5.5, 4.0))
    epochs = [row["epoch"] for row in rows]
    for key in keys:
        values = [np.nan if row.get(key) is None else float(row[key]) for row in rows]
        axis.plot(epochs, values, marker="o", markersize=3, label=key)
    axis.set(title=title, xlabel="epoch")
    axis.legend(fontsize=8)
    return save_figure(pyplot, figure, path, DPI)


def _roc(targets: np.ndarray, scores: np.ndarray, classes: Sequence[str], title: str, path: Path) -> Path:
    pyplot, figure, axis = new_figure((5.5, 5.0))
    skipped = draw_roc(axis, targets, scores, classes)
    axis.set(title=title, xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.02))
    if skipped:
        axis.text(0.02, 0.02, "not drawn (one label only): " + ", ".join(skipped)[:100], fontsize=7)
    if len(skipped) < len(classes):
        axis.legend(fontsize=7, loc="lower right")
    return save_figure(pyplot, figure, path, DPI)


def write_row_artefacts(out: Path, index: int, stamp: str, run_dir: RunDir) -> list[Path]:
    """The model, training results and plots of row `index` (TIML's ``<i>-`` files) from its run folder."""
    written = [out / f"{index}-keras_model-{stamp}.keras"]
    copy_atomic(run_dir.model_path, written[0])
    history = history_rows(run_dir.completed_history())
    written.append(out / f"{index}-training_results.csv")
    write_bytes_atomic(
        written[-1], table_csv(history, ("epoch", "loss", "learning_rate", "val_accuracy", "val_mean_auroc"))
    )
    written.append(_curve(history, ("loss",), f"model {index}: training loss", out / f"{index}-loss.png"))
    written.append(
        _curve(history, ("val_accuracy", "val_mean_auroc"), f"model {index}: validation", out / f"{index}-accuracy.png")
    )
    for part in ("val", "test"):
        _, targets, scores, classes = run_dir.read_predictions(part)
        written.append(_roc(targets, scores, classes, f"model {index}: ROC ({part})", out / f"{index}-roc-{part}.png"))
    return written
