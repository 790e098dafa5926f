"""The predictions file of a run split: one row per sample id, its masked targets and predicted probabilities.

``predictions/{val,test}.csv`` holds ``sample_id``, then ``true:<class>`` (blank = masked) and
``pred:<class>`` columns. Reading it needs pandas only, so a notebook can load predictions without
TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.atomic import write_bytes_atomic


def write_predictions(
    path: Path, classes: Sequence[str], ids: Sequence[str], targets: np.ndarray, predictions: np.ndarray
) -> None:
    """Write a predictions CSV atomically."""
    frame = pd.DataFrame({"sample_id": list(ids)})
    for index, name in enumerate(classes):
        frame[f"true:{name}"] = targets[:, index]
    for index, name in enumerate(classes):
        frame[f"pred:{name}"] = predictions[:, index]
    write_bytes_atomic(path, frame.to_csv(index=False, float_format="%.9g").encode("utf-8"))


def read_predictions(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, tuple[str, ...]]:
    """Inverse of `write_predictions`: (ids, targets, predictions, classes)."""
    frame = pd.read_csv(path, dtype={"sample_id": str})
    classes = tuple(column.removeprefix("true:") for column in frame.columns if column.startswith("true:"))
    targets = frame[[f"true:{name}" for name in classes]].to_numpy(dtype=np.float64)
    predictions = frame[[f"pred:{name}" for name in classes]].to_numpy(dtype=np.float64)
    return list(frame["sample_id"]), targets, predictions, classes
