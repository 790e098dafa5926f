"""Assembling a label table, shared by every reader: patient ids, the columns, the final checks.

`label_table` builds the contract's table from validated columns; `finish_table` then checks that
each image is listed once and, optionally, that every image is on disk (one `DirectoryListing`
scan per folder). `compile_patient_pattern` is also what `DatasetSpec` checks its pattern with.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.readers.cells import fail_where
from medbench.errors import DatasetError, shown

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
"""File suffixes (lower case) that class-per-folder datasets treat as images (and one-hot names resolve to)."""

_SHOWN = 10


def compile_patient_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled `patient_pattern`, or a `DatasetError` saying why it is not a regular expression."""
    try:
        return re.compile(pattern)
    except re.error as err:
        raise DatasetError(f"patient_pattern {pattern!r} is not a valid regular expression ({err})") from err


def find_patient_ids(
    frame: pd.DataFrame | None,
    sample_ids: pd.Series,
    column: str | None,
    pattern: str | None,
    file: Path,
    path_column: str | None,
    rows: np.ndarray | None,
) -> pd.Series:
    """Patient ids from a column, from a regex over the sample ids, or else the sample ids themselves."""
    if column is not None and frame is not None:
        ids = frame[column].str.strip()
        fail_where(ids == "", ids, file, column, rows, "is empty; expected a patient id")
        return ids
    if pattern is None:
        return sample_ids
    regex = compile_patient_pattern(pattern)
    matches = [regex.search(value) for value in sample_ids]
    fail_where(
        np.array([match is None for match in matches], dtype=bool),
        sample_ids,
        file,
        path_column,
        rows,
        f"does not match patient_pattern {pattern!r}; expected every image name to contain its patient id",
    )
    return pd.Series(
        [m.group(1) if m.re.groups else m.group(0) for m in matches if m is not None],
        dtype="str",
        index=sample_ids.index,
    )


def label_table(
    sample_ids: pd.Series,
    root: Path,
    patient_ids: pd.Series,
    frontal: pd.Series | bool,
    labels: Mapping[str, np.ndarray],
    *,
    sex: pd.Series | None = None,
    age: pd.Series | None = None,
) -> pd.DataFrame:
    """Assemble the contract's label table (fresh RangeIndex)."""
    base = os.path.abspath(root) + os.sep
    sample = sample_ids.to_numpy(dtype=object)
    count = len(sample)
    native = sample if os.sep == "/" else [value.replace("/", os.sep) for value in sample]
    columns: dict[str, object] = {
        "sample_id": pd.array(sample, dtype="str"),
        "path": pd.array([base + value for value in native], dtype="str"),
        "patient_id": pd.array(patient_ids.to_numpy(dtype=object), dtype="str"),
        "frontal": np.full(count, frontal, dtype=bool) if isinstance(frontal, bool) else frontal.to_numpy(dtype=bool),
    }
    if sex is not None:
        columns["sex"] = pd.Series(sex.to_numpy(dtype=object), dtype=object, index=pd.RangeIndex(count))
    if age is not None:
        columns["age"] = age.to_numpy(dtype=np.float64)
    for name, values in labels.items():
        columns[name] = np.asarray(values, dtype=np.float64)
    return pd.DataFrame(columns, index=pd.RangeIndex(count))


def finish_table(
    table: pd.DataFrame, file: Path, column: str, rows: np.ndarray, root: Path, check_images: bool
) -> None:
    """Shared final checks: unique images and, optionally, that every image exists."""
    _check_unique(table["sample_id"], file, column, rows)
    if check_images:
        _check_images_exist(table, file, column, rows, root)


def _check_unique(sample_ids: pd.Series, file: Path, column: str, rows: np.ndarray) -> None:
    """Fail on the first image listed twice, naming both rows."""
    if pd.Index(sample_ids).is_unique:
        return
    repeated = sample_ids.duplicated(keep="first").to_numpy()
    if not repeated.any():
        return
    later = int(np.argmax(repeated))
    value = sample_ids.iloc[later]
    first = int(np.argmax((sample_ids == value).to_numpy()))
    count = int(repeated.sum())
    raise DatasetError(
        f"image {shown(str(value))} is listed twice (rows {rows[first]} and {rows[later]}); expected each image once"
        + (f" ({count} repeated rows in all)" if count > 1 else ""),
        file=file,
        row=int(rows[later]),
        column=column,
    )


class DirectoryListing:
    """Caches one directory listing per folder, so existence checks cost one scan per folder."""

    def __init__(self) -> None:
        self._names: dict[str, frozenset[str]] = {}
        self._stems: dict[str, dict[str, tuple[str, ...]]] = {}

    def names(self, directory: str) -> frozenset[str]:
        """The entries of `directory` (empty when it does not exist)."""
        if directory not in self._names:
            try:
                self._names[directory] = frozenset(os.listdir(directory))
            except (FileNotFoundError, NotADirectoryError):
                self._names[directory] = frozenset()
        return self._names[directory]

    def stems(self, directory: str) -> dict[str, tuple[str, ...]]:
        """The image files of `directory` by stem (``"a"`` → ``("a.png",)``)."""
        if directory not in self._stems:
            stems: dict[str, list[str]] = {}
            for name in sorted(self.names(directory)):
                stem, suffix = os.path.splitext(name)
                if suffix.lower() in IMAGE_EXTENSIONS:
                    stems.setdefault(stem, []).append(name)
            self._stems[directory] = {stem: tuple(names) for stem, names in stems.items()}
        return self._stems[directory]


def _check_images_exist(table: pd.DataFrame, file: Path, column: str, rows: np.ndarray, root: Path) -> None:
    """Report every listed image that is not on disk, all at once."""
    listing = DirectoryListing()
    split = table["path"].str.rpartition(os.sep)
    missing = [
        index
        for index, (directory, name) in enumerate(zip(split[0], split[2], strict=True))
        if name not in listing.names(directory)
    ]
    if not missing:
        return
    listed = ", ".join(f"row {rows[i]} {shown(str(table['sample_id'].iloc[i]))}" for i in missing[:_SHOWN])
    total = len(table)
    if len(missing) == total:
        summary = f"none of the {total} listed image files exist under {root}"
    else:
        summary = f"{len(missing)} of {total} listed image files are missing under {root}"
    raise DatasetError(
        f"{summary} (first {min(len(missing), _SHOWN)}: {listed}); expected every listed image to exist "
        "(were the images downloaded and unpacked into the dataset folder?)",
        file=file,
        row=int(rows[missing[0]]),
        column=column,
    )
