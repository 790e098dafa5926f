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
    return frame.sort_values("val_mean_auroc", ascending=False, na_position="last", kind="stable").reset_index(
        drop=True
    )


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
            "best epoch": frame["best_epoch"],
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
