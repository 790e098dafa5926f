"""The two files `medbench evaluate` reads: a truth table and a predictions table, joined by image id.

Any predictions file works, not only medbench's: its first column (or one named ``image``, ``image_name``,
``image_id``, ``sample_id``, ``Image Index``, ``Path`` or ``filename``) holds the image id, and every
other column is one class's probability; medbench's own ``pred:<class>`` columns (``true:<class>`` ones
are ignored) are read by their class name; a medbench predictions file's ``true:<class>`` columns serve
as truth, so a run's ``predictions/test.csv`` can be both files. The truth file holds the same id column
and 0/1 class columns of at least the predicted classes (columns are matched by name; others, such as
age or sex, are left alone); a blank or ``-1`` (uncertain) cell is masked. An image in one file and not
the other, an id twice, a cell that is not a label or a probability is an error naming the file, the row
or the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.readers.label_csv import read_csv
from medbench.errors import DatasetError, shown

__all__ = ["ID_COLUMNS", "Joined", "join_files"]

ID_COLUMNS = ("image", "image_name", "image_id", "sample_id", "Image Index", "Path", "filename")
_POSITIVE, _NEGATIVE = frozenset({"1", "1.0"}), frozenset({"0", "0.0"})
_MASKED = frozenset({"", "-1", "-1.0", "nan", "NaN"})
_SHOWN = 10


@dataclass(frozen=True)
class Joined:
    """Row-aligned truth (1.0 / 0.0 / NaN) and scores of the classes, in the predictions file's order."""

    ids: tuple[str, ...]
    classes: tuple[str, ...]
    targets: np.ndarray
    scores: np.ndarray
    patients: tuple[str, ...] | None


def _id_column(frame: pd.DataFrame, path: Path) -> str:
    for name in ID_COLUMNS:
        if name in frame.columns:
            return name
    if len(frame.columns) < 2:
        raise DatasetError(f"{path}: has {len(frame.columns)} column(s); expected an image id column and class columns")
    return str(frame.columns[0])


def _ids(frame: pd.DataFrame, column: str, path: Path) -> list[str]:
    ids = [str(value) for value in frame[column]]
    seen: dict[str, int] = {}
    for row, value in zip(frame.index, ids):
        if value == "":
            raise DatasetError(f"{path}, row {row + 2}, column {column!r}: empty image id")
        if value in seen:
            raise DatasetError(f"{path}, row {row + 2}: image {shown(value)} is also on row {seen[value] + 2}")
        seen[value] = row
    return ids


def _scores(frame: pd.DataFrame, classes: list[str], columns: list[str], path: Path) -> np.ndarray:
    out = np.empty((len(frame), len(classes)))
    for j, column in enumerate(columns):
        for position, (row, cell) in enumerate(zip(frame.index, frame[column])):
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not 0.0 <= value <= 1.0:
                raise DatasetError(
                    f"{path}, row {row + 2}, column {column!r}: value {shown(cell)}; expected a probability in 0..1"
                )
            out[position, j] = value
    return out


def _labels(frame: pd.DataFrame, classes: list[str], path: Path) -> np.ndarray:
    out = np.empty((len(frame), len(classes)))
    for j, column in enumerate(classes):
        for position, (row, cell) in enumerate(zip(frame.index, frame[column])):
            text = str(cell).strip()
            if text in _POSITIVE:
                out[position, j] = 1.0
            elif text in _NEGATIVE:
                out[position, j] = 0.0
            elif text in _MASKED:
                out[position, j] = math.nan
            else:
                raise DatasetError(
                    f"{path}, row {row + 2}, column {column!r}: value {shown(cell)}; expected 1 or 0 (blank or -1 "
                    "for an unknown label)"
                )
    return out


def _listed(ids: list[str]) -> str:
    more = f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
    return ", ".join(shown(value) for value in ids[:_SHOWN]) + more


def join_files(truth: str | Path, predictions: str | Path, *, patient_column: str | None = None) -> Joined:
    """The truth and predictions of the same images, in the predictions file's order (see the module docstring)."""
    truth, predictions = Path(truth), Path(predictions)
    scores_frame = read_csv(predictions)
    score_id = _id_column(scores_frame, predictions)
    columns = [name for name in scores_frame.columns if name != score_id and not name.startswith("true:")]
    classes = [name.removeprefix("pred:") for name in columns]
    if not classes:
        raise DatasetError(f"{predictions}: has no class column besides the image id {score_id!r}")
    truth_frame = read_csv(truth)
    truth_id = _id_column(truth_frame, truth)
    medbench_truth = {name.removeprefix("true:"): name for name in truth_frame.columns if name.startswith("true:")}
    truth_frame = truth_frame.rename(columns={column: name for name, column in medbench_truth.items()})
    missing_columns = [name for name in classes if name not in truth_frame.columns]
    if missing_columns:
        raise DatasetError(
            f"{truth}: has no column for the predicted classes {missing_columns[:_SHOWN]}; expected a 0/1 column per "
            f"class of {predictions} (its columns: {list(truth_frame.columns)[:20]})"
        )
    if patient_column is not None and patient_column not in truth_frame.columns:
        raise DatasetError(f"{truth}: has no patient column {patient_column!r}")
    score_ids, truth_ids = _ids(scores_frame, score_id, predictions), _ids(truth_frame, truth_id, truth)
    known = set(truth_ids)
    extra = [value for value in score_ids if value not in known]
    if extra:
        raise DatasetError(f"{predictions}: images not in {truth.name}: {_listed(extra)}; expected the same images")
    scored = set(score_ids)
    unscored = [value for value in truth_ids if value not in scored]
    if unscored:
        raise DatasetError(f"{truth}: images without a prediction in {predictions.name}: {_listed(unscored)}")
    position = {value: index for index, value in enumerate(truth_ids)}
    order = [position[value] for value in score_ids]
    aligned = truth_frame.iloc[order]
    patients = tuple(str(value) for value in aligned[patient_column]) if patient_column else None
    return Joined(
        tuple(score_ids),
        tuple(classes),
        _labels(aligned, classes, truth),
        _scores(scores_frame, classes, columns, predictions),
        patients,
    )
