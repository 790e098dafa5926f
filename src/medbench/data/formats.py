"""Label-file formats: what `DatasetSpec.format` may name and how each one's label files are read.

`FORMATS` maps each format to its `DatasetFormat`: the loader (built on the format's reader from
`medbench.data.readers`), the spec fields it needs, the task a label row means by default and its
dimension (2 for images, 3 for volumes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from medbench.data.readers import (
    CHESTXRAY14_CLASSES,
    read_chestxray14_csv,
    read_chexpert_csv,
    read_class_folders,
    read_dicom_csv,
    read_generic_csv,
    read_onehot_csv,
    read_volume_csv,
)
from medbench.data.readers.chestxray14 import split_official_lists
from medbench.errors import DatasetError

if TYPE_CHECKING:
    from medbench.data.datasets import DatasetSpec

__all__ = ["FIELD_PURPOSES", "FORMATS", "DatasetFormat"]


@dataclass(frozen=True)
class DatasetFormat:
    """A label-file format a `DatasetSpec` can declare.

    Attributes:
        name: The value of ``DatasetSpec.format``.
        load: ``load(spec, root, check_images) -> (train, test)``: a spec's training table and
            official test table (None when the test set is split from train), class columns in the
            spec's order; `root` is the dataset folder, known to exist.
        required: `DatasetSpec` fields the format cannot do without (each needs an entry in
            `FIELD_PURPOSES`, which the error message quotes).
        task: What a label row means unless the spec says otherwise (`medbench.data.tasks`): one-hot
            files and class folders hold one class per image.
        dimension: 2 for images, 3 for volumes (what a benchmark's ``3D`` token must match).
    """

    name: str
    load: Callable[[DatasetSpec, Path, bool], tuple[pd.DataFrame, pd.DataFrame | None]]
    required: tuple[str, ...] = ()
    task: str = "multilabel"
    dimension: int = 2


FIELD_PURPOSES: Mapping[str, str] = {
    "image_dir": "the image folder under root",
    "path_column": "the column naming each image",
}
"""What each field a format may require holds, for the message when a spec lacks it."""


def _load_parts(
    read_part: Callable[[DatasetSpec, Path, str, bool], pd.DataFrame], spec: DatasetSpec, root: Path, check_images: bool
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The loader of formats with one label file (or folder) per part: ``spec.train`` and ``spec.test``."""
    train = read_part(spec, root, spec.train, check_images)
    test = read_part(spec, root, spec.test, check_images) if spec.test else None
    return train, test


def _chexpert_part(spec: DatasetSpec, root: Path, name: str, check_images: bool) -> pd.DataFrame:
    """One CheXpert label file (``train.csv`` or ``valid.csv``)."""
    return read_chexpert_csv(root / name, root, classes=spec.classes, check_images=check_images)


def _onehot_part(spec: DatasetSpec, root: Path, name: str, check_images: bool) -> pd.DataFrame:
    """One one-hot label file; images under ``spec.image_dir``."""
    return read_onehot_csv(
        root / name,
        root / str(spec.image_dir),
        spec.path_column or "image",
        spec.image_extension,
        dataset_root=root,
        classes=spec.classes,
        patient_column=spec.patient_column,
        patient_pattern=spec.patient_pattern,
        check_images=check_images,
    )


def _csv_part(spec: DatasetSpec, root: Path, name: str, check_images: bool) -> pd.DataFrame:
    """One generic label file; image paths in ``spec.path_column``."""
    return read_generic_csv(
        root / name,
        root,
        str(spec.path_column),
        spec.classes,
        patient_column=spec.patient_column,
        patient_pattern=spec.patient_pattern,
        check_images=check_images,
    )


def _dicom_part(spec: DatasetSpec, root: Path, name: str, check_images: bool) -> pd.DataFrame:
    """One label file over the DICOM files under ``spec.image_dir``, keyed by ``spec.path_column``."""
    return read_dicom_csv(
        root / name,
        root / str(spec.image_dir),
        str(spec.path_column),
        spec.classes,
        dataset_root=root,
        check_images=check_images,
    )


def _volume_part(spec: DatasetSpec, root: Path, name: str, check_images: bool) -> pd.DataFrame:
    """One label file over volume files or DICOM series folders below ``spec.image_dir`` (default: `root`)."""
    return read_volume_csv(
        root / name,
        root / (spec.image_dir or ""),
        str(spec.path_column),
        spec.classes,
        dataset_root=root,
        patient_column=spec.patient_column,
        patient_pattern=spec.patient_pattern,
        check_images=check_images,
    )


def _folder_part(spec: DatasetSpec, root: Path, name: str, check_images: bool) -> pd.DataFrame:
    """One folder of class subfolders (`check_images` is moot: the images are what is listed)."""
    return read_class_folders(
        root / name, classes=spec.classes, dataset_root=root, patient_pattern=spec.patient_pattern
    )


def _load_chestxray14(spec: DatasetSpec, root: Path, check_images: bool) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """NIH's label file, class columns in the spec's order, split by the official lists when present."""
    unknown = [name for name in spec.classes if name not in CHESTXRAY14_CLASSES]
    if unknown:
        raise DatasetError(
            f"dataset {spec.name!r} declares classes {unknown} that ChestX-ray14 does not have; "
            f"expected names from {list(CHESTXRAY14_CLASSES)}"
        )
    table = read_chestxray14_csv(
        root / spec.train, root / str(spec.image_dir), dataset_root=root, check_images=check_images
    )
    table = table[[*table.columns[: -len(CHESTXRAY14_CLASSES)], *spec.classes]]
    test_list = root / spec.test if spec.test else None
    train_list = root / spec.train_list if spec.train_list else None
    return split_official_lists(table, test_list, train_list, dataset=spec.name)


FORMATS: Mapping[str, DatasetFormat] = {
    entry.name: entry
    for entry in (
        DatasetFormat("chexpert", partial(_load_parts, _chexpert_part)),
        DatasetFormat("chestxray14", _load_chestxray14, required=("image_dir",)),
        DatasetFormat("onehot", partial(_load_parts, _onehot_part), required=("image_dir",), task="multiclass"),
        DatasetFormat("csv", partial(_load_parts, _csv_part), required=("path_column",)),
        DatasetFormat("folder", partial(_load_parts, _folder_part), task="multiclass"),
        DatasetFormat("dicom", partial(_load_parts, _dicom_part), required=("image_dir", "path_column")),
        DatasetFormat("volumes", partial(_load_parts, _volume_part), required=("path_column",), dimension=3),
    )
}
"""Label-file formats a `DatasetSpec` can declare, by name."""
