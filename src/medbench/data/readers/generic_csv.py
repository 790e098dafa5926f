"""Generic CSVs: the reader of files with an image-path column and numeric label columns."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from medbench.data.readers.cells import (
    choose_label_columns,
    file_rows,
    parse_labels,
    relative_paths,
    require_columns,
)
from medbench.data.readers.label_csv import read_csv
from medbench.data.readers.table import find_patient_ids, finish_table, label_table


def read_generic_csv(
    csv_path: str | os.PathLike[str],
    root: str | os.PathLike[str],
    path_column: str,
    label_columns: Sequence[str] | None = None,
    *,
    patient_column: str | None = None,
    patient_pattern: str | None = None,
    check_images: bool = True,
) -> pd.DataFrame:
    """Read a CSV with an image-path column and numeric label columns (1, 0, -1 or empty).

    Paths are relative to `root` and become the sample ids. `label_columns` picks and orders the
    classes (default: every column but the path and patient columns, in file order).
    """
    csv_path, root = Path(csv_path), Path(root)
    frame = read_csv(csv_path)
    classes = choose_label_columns(frame, label_columns, (path_column, patient_column), csv_path)
    require_columns(frame, (path_column, *([patient_column] if patient_column else []), *classes), csv_path)
    rows = file_rows(frame, csv_path)
    sample_ids = relative_paths(frame[path_column], csv_path, path_column, rows)
    labels = parse_labels(
        frame, classes, (1.0, 0.0, -1.0), "1, 0, -1 or an empty cell", csv_path, rows, blank_allowed=True
    )
    patient_ids = find_patient_ids(frame, sample_ids, patient_column, patient_pattern, csv_path, path_column, rows)
    table = label_table(sample_ids, root, patient_ids, True, labels)
    finish_table(table, csv_path, path_column, rows, root, check_images)
    return table
