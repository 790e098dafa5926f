"""CheXpert: the reader of ``train.csv``/``valid.csv`` and the format's class and column names."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from medbench.data.readers.cells import (
    categorical_column,
    fail_where,
    file_rows,
    parse_ages,
    parse_labels,
    parse_sex,
    relative_paths,
    require_columns,
)
from medbench.data.readers.label_csv import read_csv
from medbench.data.readers.table import finish_table, label_table

CHEXPERT_CLASSES: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
"""The 14 CheXpert observations in the official column order."""

CHEXPERT_METADATA_COLUMNS: tuple[str, ...] = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
"""The columns of a CheXpert label file before the 14 class columns."""

_RAW_LABELS = "1.0 (positive), 0.0 (negative), -1.0 (uncertain) or an empty cell (not mentioned)"
_PATIENT_PREFIX = "patient"


def _patient_folder(path: str) -> str | None:
    """The first component of `path` that is ``patient`` followed by digits, e.g. ``patient00001``."""
    if _PATIENT_PREFIX not in path:
        return None
    for part in path.split("/"):
        if part.startswith(_PATIENT_PREFIX) and part[len(_PATIENT_PREFIX) :].isdecimal():
            return part
    return None


# One match per line: the first '/'-separated component that is "patient" and decimal digits
# (`re`'s \d is Unicode category Nd, exactly what `str.isdecimal` accepts).
_PATIENT_FOLDER_PER_LINE = re.compile(r"^(?:[^\n/]*/)*?(patient\d+)(?=/|$)", re.MULTILINE)


def patient_folders(paths: pd.Series) -> pd.Series:
    """`_patient_folder` of every path (missing where a path has none).

    One regular-expression scan of all paths joined by newlines; when it does not find exactly one
    folder per path (a path without one, or a path holding a newline), each path is looked at alone.
    """
    values = paths.to_numpy(dtype=object)
    joined = "\n".join(values)
    if joined.count("\n") == len(values) - 1:
        found = _PATIENT_FOLDER_PER_LINE.findall(joined)
        if len(found) == len(values):
            return pd.Series(found, dtype="str", index=paths.index)
    return pd.Series([_patient_folder(value) for value in values], dtype="str", index=paths.index)


def read_chexpert_csv(
    csv_path: str | os.PathLike[str],
    dataset_root: str | os.PathLike[str],
    *,
    classes: Sequence[str] = CHEXPERT_CLASSES,
    check_images: bool = True,
) -> pd.DataFrame:
    """Read a CheXpert ``train.csv``/``valid.csv`` into a label table.

    ``Path`` is relative to `dataset_root`, the folder that contains ``CheXpert-v1.0-small``, and is
    used unchanged as the sample id. The patient id is the ``patientNNNNN`` folder of the path.
    """
    csv_path, root = Path(csv_path), Path(dataset_root)
    frame = read_csv(csv_path)
    require_columns(frame, (*CHEXPERT_METADATA_COLUMNS, *classes), csv_path)
    rows = file_rows(frame, csv_path)
    sample_ids = relative_paths(frame["Path"], csv_path, "Path", rows)
    patient_ids = patient_folders(sample_ids)
    fail_where(
        patient_ids.isna(),
        sample_ids,
        csv_path,
        "Path",
        rows,
        "has no 'patientNNNNN' folder; expected a path like "
        "'CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg'",
    )
    frontal = categorical_column(frame, "Frontal/Lateral", ("Frontal", "Lateral"), csv_path, rows) == "Frontal"
    categorical_column(frame, "AP/PA", ("", "AP", "PA", "LL", "RL"), csv_path, rows)
    sexes = categorical_column(frame, "Sex", ("Male", "Female", "Unknown", ""), csv_path, rows)
    sex = parse_sex(sexes, {"Male": "Male", "Female": "Female"})
    age = parse_ages(frame["Age"], csv_path, "Age", rows)
    labels = parse_labels(frame, classes, (1.0, 0.0, -1.0), _RAW_LABELS, csv_path, rows, blank_allowed=True)
    table = label_table(sample_ids, root, patient_ids, frontal, labels, sex=sex, age=age)
    finish_table(table, csv_path, "Path", rows, root, check_images)
    return table
