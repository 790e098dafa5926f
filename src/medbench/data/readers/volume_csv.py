"""Volume datasets: a label CSV whose path column names 3D volume files or DICOM series folders.

Each row names one volume below the image folder: a NIfTI (``.nii``, ``.nii.gz``), MetaImage (``.mha``,
``.mhd``) or NumPy (``.npy``) file, or a folder holding one DICOM series (`medbench.data.volumes`).
Label cells hold 1, 0, -1 or nothing, as in the generic CSV; patient ids come from a column, from a
pattern searched in the sample ids, or else each volume is its own patient. A path ending in a 2D image
suffix (``.png``, ``.dcm``, …) is refused: it names one slice or picture, not a volume. Only the names are
checked here; the voxels are read when the preprocessing cache is built.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.readers.cells import (
    choose_label_columns,
    fail_where,
    file_rows,
    parse_labels,
    relative_folder,
    relative_paths,
    require_columns,
)
from medbench.data.readers.label_csv import read_csv
from medbench.data.readers.table import IMAGE_EXTENSIONS, find_patient_ids, finish_table, label_table
from medbench.data.volumes import VOLUME_SUFFIXES

__all__ = ["read_volume_csv"]

_SLICE_SUFFIXES = tuple(sorted(IMAGE_EXTENSIONS | {".dcm", ".dicom"}))
_EXPECTED = f"expected a volume file ({', '.join(VOLUME_SUFFIXES)}) or a DICOM series folder"


def read_volume_csv(
    csv_path: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    path_column: str,
    classes: Sequence[str] | None = None,
    *,
    dataset_root: str | os.PathLike[str] | None = None,
    patient_column: str | None = None,
    patient_pattern: str | None = None,
    check_images: bool = True,
) -> pd.DataFrame:
    """Read a label CSV whose `path_column` names volumes below `image_dir`.

    `classes` picks and orders the label columns (default: every column but the path and patient columns,
    in file order). Sample ids are the volumes' paths relative to `dataset_root` (default: the CSV's
    folder). With `check_images`, every listed volume must exist, and a name without a volume suffix must
    be a folder (a DICOM series).
    """
    csv_path = Path(csv_path)
    root = Path(dataset_root) if dataset_root is not None else csv_path.parent
    images = Path(image_dir) if Path(image_dir).is_absolute() else root / image_dir
    prefix = relative_folder(images, root, csv_path)
    frame = read_csv(csv_path)
    classes = choose_label_columns(frame, classes, (path_column, patient_column), csv_path)
    require_columns(frame, (path_column, *([patient_column] if patient_column else []), *classes), csv_path)
    rows = file_rows(frame, csv_path)
    names = relative_paths(frame[path_column], csv_path, path_column, rows)
    lower = names.str.lower()
    fail_where(
        lower.str.endswith(_SLICE_SUFFIXES).to_numpy(),
        names,
        csv_path,
        path_column,
        rows,
        f"names a 2D image or a single DICOM slice; {_EXPECTED}",
    )
    labels = parse_labels(
        frame, classes, (1.0, 0.0, -1.0), "1, 0, -1 or an empty cell", csv_path, rows, blank_allowed=True
    )
    sample_ids = pd.Series([prefix + name for name in names], dtype="str", index=names.index)
    patient_ids = find_patient_ids(frame, sample_ids, patient_column, patient_pattern, csv_path, path_column, rows)
    table = label_table(sample_ids, root, patient_ids, True, labels)
    finish_table(table, csv_path, path_column, rows, root, check_images)
    if check_images:
        series = ~lower.str.endswith(VOLUME_SUFFIXES).to_numpy()
        not_folders = np.array([flag and not os.path.isdir(path) for flag, path in zip(series, table["path"])])
        fail_where(
            not_folders,
            names,
            csv_path,
            path_column,
            rows,
            f"is a file without a volume suffix; {_EXPECTED} (a folder holding the slices of one series)",
        )
    return table
