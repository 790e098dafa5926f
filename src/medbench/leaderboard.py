"""The leaderboard: completed runs ranked by validation mean AUROC, with per-class AUROC."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

UNDEFINED = "undefined"


def _auroc(metrics: dict[str, Any] | None, name: str | None) -> float | None:
    if not metrics:
        return None
    if name is None:
        return metrics.get("macro", {}).get("auroc")
    return metrics.get("per_class", {}).get(name, {}).get("auroc")


def leaderboard(entries: Iterable[dict[str, Any]], *, per_class: bool = True) -> pd.DataFrame:
    """One row per completed run: experiment, run id, best epoch, mean (and per-class) val/test AUROC."""
    rows = []
    for entry in entries:
        if entry.get("status", "completed") != "completed":
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
    return frame.sort_values("val_mean_auroc", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def format_leaderboard(frame: pd.DataFrame) -> str:
    """Text table; an undefined AUROC prints as 'undefined', never as a number."""
    if frame.empty:
        return "no completed experiments"
    shown = frame.astype(object).where(frame.notna(), UNDEFINED)
    numeric = [c for c in frame.columns if "auroc" in c or ":" in c]
    for column in numeric:
        shown[column] = [value if value == UNDEFINED else f"{value:.4f}" for value in shown[column]]
    return shown.to_string(index=False)
