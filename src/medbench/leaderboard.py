"""The leaderboard: completed runs ranked by validation mean AUROC, with per-class AUROC.

Ensembles (`medbench.ensemble`) are listed beside the runs they combine: their experiment is
``Ensemble_<method>_<benchmark>`` and their best epoch ``-`` (they have none).

One bad log entry (not an object, no id or name, metrics of the wrong shape) or one run folder whose
config.json is damaged leaves out that one item: `board` lists the others and names what it skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any

import pandas as pd

from medbench.runs.saved_run import scan_runs
from medbench.tracking.logs import ENTRY_EXPECTED, entry_problem, scan_entries

logger = logging.getLogger(__name__)

UNDEFINED = "undefined"
PARTS = ("val", "test")


def _auroc_problem(value: Any, where: str) -> str | None:
    if value is None or (isinstance(value, Real) and not isinstance(value, bool)):
        return None
    return f"{where} is {str(value)[:40]!r}, not a number"


def _metrics_problem(metrics: Any, part: str) -> str | None:
    """What keeps `metrics` (an entry's "val" or "test") from being read for AUROC, or None."""
    if metrics is None:
        return None
    if not isinstance(metrics, dict):
        return f"{part!r} is a JSON {type(metrics).__name__}, not an object"
    macro, per_class = metrics.get("macro", {}), metrics.get("per_class", {})
    if not isinstance(macro, dict) or not isinstance(per_class, dict):
        return f"{part!r} has 'macro' or 'per_class' that is not an object"
    problem = _auroc_problem(macro.get("auroc"), f"{part}.macro.auroc")
    for name, values in per_class.items():
        if problem is not None:
            break
        if not isinstance(values, dict):
            return f"{part}.per_class[{str(name)[:40]!r}] is not an object"
        problem = _auroc_problem(values.get("auroc"), f"{part}.per_class[{str(name)[:40]!r}].auroc")
    return problem


def board_entry_problem(entry: Any) -> str | None:
    """What keeps a log entry off the leaderboard (besides not being completed), or None when it can be listed."""
    problem = entry_problem(entry)
    if problem is not None:
        return problem
    if not isinstance(entry.get("name"), str):
        return "has no 'name' (a string)"
    classes = entry.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(name, str) for name in classes):
        return "'classes' is not a list of names"
    best = entry.get("best_epoch")
    if best is not None and (not isinstance(best, int) or isinstance(best, bool)):
        return f"'best_epoch' is {str(best)[:40]!r}, not a whole number"
    if "val" not in entry:
        return "has no 'val' metrics (a completed run always has them)"
    for part in PARTS:
        problem = _metrics_problem(entry.get(part), part)
        if problem is not None:
            return problem
    return None


def _auroc(metrics: dict[str, Any] | None, name: str | None) -> float | None:
    if not metrics:
        return None
    if name is None:
        return metrics.get("macro", {}).get("auroc")
    return metrics.get("per_class", {}).get(name, {}).get("auroc")


def leaderboard(entries: Iterable[dict[str, Any]], *, per_class: bool = True) -> pd.DataFrame:
    """One row per completed run: experiment, run id, best epoch, mean (and per-class) val/test AUROC.

    An entry whose fields cannot be read (`board_entry_problem`) is left out with a warning.
    """
    rows = []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("status", "completed") != "completed":
            continue
        problem = board_entry_problem(entry)
        if problem is not None:
            logger.warning("leaderboard: skipped an entry that %s", problem)
            continue
        row: dict[str, Any] = {
            "experiment": entry["name"],
            "run": entry["id"],
            "best_epoch": entry.get("best_epoch"),
            "val_mean_auroc": _auroc(entry.get("val"), None),
            "test_mean_auroc": _auroc(entry.get("test"), None),
        }
        if per_class:
            for name in entry.get("classes", []):
                row[f"val:{name}"] = _auroc(entry.get("val"), name)
                row[f"test:{name}"] = _auroc(entry.get("test"), name)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values("val_mean_auroc", ascending=False, na_position="last", kind="stable").reset_index(
        drop=True
    )


@dataclass
class Board:
    """The leaderboard of the logs and one line per item it left out (where and what is wrong)."""

    frame: pd.DataFrame
    skipped: list[str] = field(default_factory=list)


def board(logs_dir: Path, models_dir: Path, *, per_class: bool = True) -> Board:
    """The leaderboard of every logged run; bad log entries and damaged run folders are listed as skipped.

    A run folder under `models_dir` whose config.json is damaged is named unless a log entry lists
    that run anyway. A log that is not a JSON list still raises LogCorruptError.
    """
    scan = scan_entries(logs_dir)
    skipped = list(scan.problems)
    good = []
    for logged in scan.entries:
        if logged.entry.get("status", "completed") != "completed":
            continue
        problem = board_entry_problem(logged.entry)
        if problem is None:
            good.append(logged.entry)
        else:
            skipped.append(f"{logged.where}: {problem}; {ENTRY_EXPECTED}")
    listed = {entry["id"] for entry in good}
    skipped += [str(item) for item in scan_runs(models_dir).damaged if item.run_dir.run_id not in listed]
    return Board(leaderboard(good, per_class=per_class), skipped)


def _epoch(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else str(int(value))


def _text(value: Any) -> str:
    return UNDEFINED if value is None or pd.isna(value) else f"{value:.4f}"


def format_leaderboard(frame: pd.DataFrame) -> str:
    """A ranking table, then per-class 'val / test' AUROC with one column per rank.

    An undefined AUROC prints as 'undefined', never as a number.
    """
    if frame.empty:
        return "no completed experiments"
    ranking = pd.DataFrame(
        {
            "#": range(1, len(frame) + 1),
            "experiment": frame["experiment"],
            "run": frame["run"],
            "best epoch": [_epoch(value) for value in frame["best_epoch"]],
            "val mean AUROC": [_text(v) for v in frame["val_mean_auroc"]],
            "test mean AUROC": [_text(v) for v in frame["test_mean_auroc"]],
        }
    )
    text = ranking.to_string(index=False)
    classes = list(dict.fromkeys(c.removeprefix("val:") for c in frame.columns if c.startswith("val:")))
    if classes:
        per_class = pd.DataFrame(
            {
                f"#{rank} val / test": [
                    f"{_text(row.get(f'val:{name}'))} / {_text(row.get(f'test:{name}'))}" for name in classes
                ]
                for rank, (_, row) in enumerate(frame.iterrows(), start=1)
            },
            index=classes,
        )
        text += "\n\nAUROC per class\n" + per_class.to_string()
    return text
