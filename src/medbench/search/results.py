"""A study's results on disk: the leaderboard of its trials, the optimisation history, the per-epoch values
the pruner saw and the fANOVA parameter importances (matplotlib's Agg backend, files written atomically)."""

from __future__ import annotations

import io
import logging
import math
import warnings
from pathlib import Path
from typing import Any

from medbench.atomic import write_bytes_atomic
from medbench.evaluation.plots import new_figure, save_figure

__all__ = ["best_trial", "leaderboard_rows", "write_results"]

logger = logging.getLogger(__name__)

DPI = 100
ORDER = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "WAITING": 3, "FAIL": 4}


def leaderboard_rows(study: Any) -> list[dict[str, Any]]:
    """Every trial, complete ones by value (best first), then pruned (by their last value), running, failed."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        last = trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None
        value = trial.value if trial.value is not None else last
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name,
                "value": value,
                "epochs_reported": len(trial.intermediate_values),
                "pruned_at_epoch": trial.user_attrs.get("pruned_at_epoch"),
                "run_ids": " ".join(trial.user_attrs.get("run_ids", [])),
                **{f"param:{name}": param for name, param in trial.params.items()},
            }
        )
    rows.sort(key=lambda row: (ORDER.get(row["state"], 9), -(row["value"] if row["value"] is not None else -math.inf)))
    return rows


def best_trial(study: Any) -> dict[str, Any] | None:
    """The best complete trial: number, value, params and runs (None before one completes)."""
    complete = [trial for trial in study.get_trials(deepcopy=False) if trial.state.name == "COMPLETE"]
    if not complete:
        return None
    best = max(complete, key=lambda trial: trial.value)
    return {
        "number": best.number,
        "value": best.value,
        "params": best.params,
        "run_ids": best.user_attrs.get("run_ids", []),
    }


def _csv(rows: list[dict[str, Any]]) -> bytes:
    import csv

    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows([{key: "" if value is None else value for key, value in row.items()} for row in rows])
    return buffer.getvalue().encode("utf-8")


def _png(axes: Any, path: Path) -> Path:
    """An Optuna plot's figure as a 7 × 4.5 inch PNG."""
    from matplotlib import pyplot

    figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
    figure.set_size_inches(7, 4.5)
    return save_figure(pyplot, figure, path, DPI)


def _importances_png(importances: dict[str, float], path: Path) -> Path:
    """A bar per parameter of the importances already computed (Optuna's own plot would fit fANOVA again)."""
    pyplot, figure, axes = new_figure((7, 4.5))
    names = list(importances)[::-1]  # the most important on top
    axes.barh(names, [importances[name] for name in names])
    axes.set(xlabel="fANOVA importance", title="Hyperparameter importances")
    return save_figure(pyplot, figure, path, DPI)


def write_results(study: Any, folder: Path) -> list[Path]:
    """leaderboard.csv, history.png, intermediate.png and (when defined) importances.png/.csv under `folder`."""
    import matplotlib

    matplotlib.use("Agg")
    import optuna
    from optuna.visualization import matplotlib as plots

    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "leaderboard.csv"]
    write_bytes_atomic(written[0], _csv(leaderboard_rows(study)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if any(trial.state.name == "COMPLETE" for trial in study.get_trials(deepcopy=False)):
            written.append(_png(plots.plot_optimization_history(study), folder / "history.png"))
        if any(trial.intermediate_values for trial in study.get_trials(deepcopy=False)):
            written.append(_png(plots.plot_intermediate_values(study), folder / "intermediate.png"))
        try:
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (RuntimeError, ValueError) as error:
            logger.info("no parameter importances yet: %s", error)
        else:
            if importances:
                written.append(folder / "importances.csv")
                rows = [{"parameter": name, "fanova_importance": value} for name, value in importances.items()]
                write_bytes_atomic(written[-1], _csv(rows))
                written.append(_importances_png(importances, folder / "importances.png"))
    return written
