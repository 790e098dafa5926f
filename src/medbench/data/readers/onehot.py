"""One-hot CSVs (ISIC style): the reader of ``image,MEL,NV,...`` files with 0/1 label cells."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from medbench.data.readers.cells import (
    choose_label_columns,
    file_rows,
    parse_labels,
    relative_folder,
    relative_paths,
    require_columns,
)
from medbench.data.readers.label_csv import read_csv
from medbench.data.readers.table import DirectoryListing, find_patient_ids, finish_table, label_table

_BINARY_LABELS = "1 or 0 (also written 1.0 / 0.0)"


def read_onehot_csv(
    csv_path: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    image_column: str = "image",
    extension: str | None = None,
    *,
    dataset_root: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | None = None,
    patient_column: str | None = None,
    patient_pattern: str | None = None,
    check_images: bool = True,
) -> pd.DataFrame:
    """Read an ISIC-style one-hot CSV (``image,MEL,NV,...`` with 0/1 cells) into a label table.

    `extension` (``"jpg"`` or ``".jpg"``) is appended to image names that lack it. Without it, a
    name that is not a file in `image_dir` is matched to the one image there with that stem.
    `classes` picks and orders the label columns (default: every other column, in file order).
    Sample ids are relative to `dataset_root` (default: the CSV's folder).
    """
    csv_path = Path(csv_path)
    root = Path(dataset_root) if dataset_root is not None else csv_path.parent
    images = Path(image_dir) if Path(image_dir).is_absolute() else root / image_dir
    prefix = relative_folder(images, root, csv_path)
    frame = read_csv(csv_path)
    classes = choose_label_columns(frame, classes, (image_column, patient_column), csv_path)
    require_columns(frame, (image_column, *([patient_column] if patient_column else []), *classes), csv_path)
    rows = file_rows(frame, csv_path)
    names = relative_paths(frame[image_column], csv_path, image_column, rows)
    names = _with_extension(names, images, extension)
    sample_ids = (prefix + names) if prefix else names
    labels = parse_labels(frame, classes, (1.0, 0.0), _BINARY_LABELS, csv_path, rows, blank_allowed=False)
    patient_ids = find_patient_ids(frame, sample_ids, patient_column, patient_pattern, csv_path, image_column, rows)
    table = label_table(sample_ids, root, patient_ids, True, labels)
    finish_table(table, csv_path, image_column, rows, root, check_images)
    return table


def _with_extension(names: pd.Series, images: Path, extension: str | None) -> pd.Series:
    """Append `extension` to names lacking it; without one, resolve suffix-less names by their stem."""
    if extension:
        suffix = extension if extension.startswith(".") else f".{extension}"
        lowered, values = suffix.lower(), names.to_numpy(dtype=object)
        if lowered not in "\n".join(values).lower():  # no name has it yet (ISIC's files name none)
            return pd.Series([name + suffix for name in values], dtype="str", index=names.index)
        completed = [name if name.lower().endswith(lowered) else name + suffix for name in values]
        return pd.Series(completed, dtype="str", index=names.index)
    listing = DirectoryListing()
    resolved = []
    for name in names:
        parent, _, base = name.rpartition("/")
        directory = os.path.join(images, parent) if parent else str(images)
        if base not in listing.names(directory):
            candidates = listing.stems(directory).get(base, ())
            if len(candidates) == 1:
                base = candidates[0]
        resolved.append(f"{parent}/{base}" if parent else base)
    return pd.Series(resolved, dtype="str", index=names.index)
