"""Datasets: where each one lives (`DatasetSpec` and the registry) and `load_dataset`, which reads one.

`DatasetSpec` names a dataset's folder, label-file format, classes and label sets; `register_dataset`,
`get_dataset` and `dataset_names` manage the registry, which starts with the predefined CheXpert,
ChestX-ray14 and demo specs. `FORMATS` maps each format a spec can declare to its `DatasetFormat`:
how to load it (with the format's reader from `medbench.data.readers`) and which spec fields it
needs. `load_dataset` looks the spec's format up, loads its training and official test label tables
(the contract is described in `medbench.data.readers`) and checks that train and test are disjoint.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.readers import (
    CHESTXRAY14_CLASSES,
    CHEXPERT_CLASSES,
    read_chestxray14_csv,
    read_chexpert_csv,
    read_class_folders,
    read_dicom_csv,
    read_generic_csv,
    read_onehot_csv,
    read_volume_csv,
)
from medbench.data.readers.chestxray14 import split_official_lists
from medbench.data.readers.table import compile_patient_pattern
from medbench.data.tasks import DECLARED_TASKS, task_for
from medbench.data.volumes import check_volume_settings
from medbench.errors import DatasetError
from medbench.registry import Registry

logger = logging.getLogger(__name__)

__all__ = [
    "CHEXPERT_COMPETITION_CLASSES",
    "CHEXPERT_PATHOLOGIES",
    "FORMATS",
    "DatasetFormat",
    "DatasetSpec",
    "dataset_names",
    "get_dataset",
    "load_dataset",
    "register_dataset",
]

CHEXPERT_PATHOLOGIES: tuple[str, ...] = tuple(
    name for name in CHEXPERT_CLASSES if name not in ("No Finding", "Support Devices")
)
"""The 12 CheXpert pathologies: all observations but No Finding and Support Devices."""

CHEXPERT_COMPETITION_CLASSES: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Pleural Effusion",
)
"""The five classes of the CheXpert competition, in the order the CheXpert paper lists them."""

# --------------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetFormat:
    """A label-file format a `DatasetSpec` can declare.

    Attributes:
        name: The value of ``DatasetSpec.format``.
        load: ``load(spec, root, check_images) -> (train, test)``: a spec's training table and
            official test table (None when the test set is split from train), class columns in the
            spec's order; `root` is the dataset folder, known to exist.
        required: `DatasetSpec` fields the format cannot do without (each needs an entry in
            `_FIELD_PURPOSES`, which the error message quotes).
        task: What a label row means unless the spec says otherwise (`medbench.data.tasks`): one-hot
            files and class folders hold one class per image.
        dimension: 2 for images, 3 for volumes (what a benchmark's ``3D`` token must match).
    """

    name: str
    load: Callable[[DatasetSpec, Path, bool], tuple[pd.DataFrame, pd.DataFrame | None]]
    required: tuple[str, ...] = ()
    task: str = "multilabel"
    dimension: int = 2


_FIELD_PURPOSES: Mapping[str, str] = {
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

_NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


# --------------------------------------------------------------------------------------------------
# Specification and registry
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """Where a dataset lives and how to read its labels.

    Attributes:
        name: Registry key: lowercase letters, digits and single hyphens (``"chexpert-dev"``).
        format: One of `FORMATS` (``"chexpert"``, ``"chestxray14"``, ``"onehot"``, ``"csv"``, ``"folder"``,
            ``"dicom"``, ``"volumes"``: 3D volume files or DICOM series folders).
        root: Dataset folder, relative to the data directory or absolute.
        train: Training label file relative to `root` (for ``"folder"``: the training subfolder).
        test: The official test labels relative to `root`, or None when the test set is split from
            train. For ``"chestxray14"`` this names NIH's image-name list (``test_list.txt``) and is
            optional on disk: when the file is absent the test set is None.
        classes: Class names in the dataset's canonical order (the order of the label columns).
        label_sets: Class subsets by size n (``{5: (...), 12: (...), 14: (...)}``); must include
            ``len(classes)``. Empty means only the full set.
        image_dir: Folder of the images, relative to `root` (``"chestxray14"``, ``"onehot"``, ``"dicom"``;
            ``"volumes"``: optional, default `root`).
        path_column: Column naming the image (``"csv"``; ``"onehot"`` defaults to ``"image"``; ``"dicom"``:
            a file path below `image_dir`, or ``"SOPInstanceUID"`` to key rows by that UID; ``"volumes"``: a
            volume file or DICOM series folder below `image_dir`).
        patient_column: Column holding the patient id (``"onehot"``, ``"csv"``, ``"volumes"``), if any.
        patient_pattern: Regular expression searched in each sample id whose first group (or whole
            match) is the patient id (``"onehot"``, ``"csv"``, ``"folder"``, ``"volumes"``), e.g.
            ``r"(\\d+)_\\d+\\.png$"``.
            Without a patient column or pattern every image counts as its own patient.
        image_extension: Suffix appended to the image names of a ``"onehot"`` file (``"jpg"``).
        train_list: ``"chestxray14"`` only: NIH's ``train_val_list.txt``; when present, images
            listed in neither list are dropped.
        channels: Colour channels the preprocessing cache keeps: 1 for grayscale modalities such as
            chest X-rays (a third of the memory and bandwidth), 3 for colour images such as dermoscopy.
        task: ``"multilabel"`` (any number of findings per image) or ``"multiclass"`` (exactly one);
            None takes the format's (``"onehot"`` and ``"folder"``: multi-class, the others multi-label).
            A one-class label set of a multi-label dataset is a binary task (`medbench.data.tasks`).
        volume_spacing: ``"volumes"`` only: the voxel size (z, y, x) in mm every volume is resampled to before
            it is fitted to the benchmark's shape, or None to keep each file's grid.
        volume_window: ``"volumes"`` only: the intensity (low, high) mapped onto 0..255, e.g. the HU window
            (-1000, 400) for CT; None maps each volume's own minimum..maximum.
        volume_resize: ``"volumes"`` only: how a volume is fitted to the benchmark's shape: ``"resample"``
            (linear interpolation of the whole volume, any size fits) or ``"pad_crop"`` (centre pad or crop,
            which keeps the voxel scale: with `volume_spacing`, a field of view of D × spacing mm).
        description: One line for humans.
    """

    name: str
    format: str
    root: str
    train: str
    classes: tuple[str, ...]
    test: str | None = None
    label_sets: Mapping[int, tuple[str, ...]] = field(default_factory=dict, hash=False)
    image_dir: str | None = None
    path_column: str | None = None
    patient_column: str | None = None
    patient_pattern: str | None = None
    image_extension: str | None = None
    train_list: str | None = None
    channels: int = 1
    task: str | None = None
    volume_spacing: tuple[float, float, float] | None = None
    volume_window: tuple[float, float] | None = None
    volume_resize: str = "resample"
    description: str = ""

    def __post_init__(self) -> None:
        where = f"dataset spec {self.name!r}"
        if self.channels not in (1, 3):
            raise DatasetError(f"{where}: channels {self.channels!r}; expected 1 (grayscale) or 3 (colour)")
        if not isinstance(self.name, str) or not _NAME_PATTERN.match(self.name):
            raise DatasetError(
                f"dataset name {self.name!r} is not allowed; expected lowercase letters, digits and "
                "single hyphens, e.g. 'chexpert-dev'"
            )
        if self.format not in FORMATS:
            raise DatasetError(f"{where}: format {self.format!r} is unknown; expected one of {', '.join(FORMATS)}")
        classes = tuple(self.classes)
        if not classes or any(not isinstance(c, str) or not c for c in classes):
            raise DatasetError(f"{where}: classes must be a non-empty sequence of non-empty names")
        if len(set(classes)) != len(classes):
            raise DatasetError(f"{where}: classes contain duplicates: {_duplicates(classes)}")
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "label_sets", self._checked_label_sets(where))
        for needed in FORMATS[self.format].required:
            if not getattr(self, needed):
                raise DatasetError(f"{where}: format {self.format!r} needs {needed} ({_FIELD_PURPOSES[needed]})")
        if self.patient_pattern is not None:
            compile_patient_pattern(self.patient_pattern)
        if self.task is not None and self.task not in DECLARED_TASKS:
            raise DatasetError(f"{where}: task {self.task!r}; expected one of {', '.join(DECLARED_TASKS)} or None")
        self._check_volume_fields(where)

    def _check_volume_fields(self, where: str) -> None:
        """The volume fields: only for a volume format, numbers of the right count and sign, one channel."""
        if self.dimension != 3:
            given = [name for name in ("volume_spacing", "volume_window") if getattr(self, name) is not None]
            if given or self.volume_resize != "resample":
                raise DatasetError(
                    f"{where}: {', '.join(given) or 'volume_resize'} set for format {self.format!r}; expected the "
                    "volume fields only with format 'volumes'"
                )
            return
        if self.channels != 1:
            raise DatasetError(f"{where}: channels {self.channels}; expected 1 for volumes (one value per voxel)")
        spacing, window = check_volume_settings(self.volume_spacing, self.volume_window, self.volume_resize, where)
        object.__setattr__(self, "volume_spacing", spacing)
        object.__setattr__(self, "volume_window", window)

    @property
    def dimension(self) -> int:
        """2 for images, 3 for volumes: the format's (a 3D benchmark needs a dataset of dimension 3)."""
        return FORMATS[self.format].dimension

    def _checked_label_sets(self, where: str) -> dict[int, tuple[str, ...]]:
        full = len(self.classes)
        sets = {int(n): tuple(names) for n, names in dict(self.label_sets).items()} or {full: self.classes}
        for n, names in sets.items():
            if len(names) != n or len(set(names)) != n:
                raise DatasetError(f"{where}: label set {n} must hold {n} distinct classes, got {list(names)}")
            unknown = [name for name in names if name not in self.classes]
            if unknown:
                raise DatasetError(
                    f"{where}: label set {n} names unknown classes {unknown}; expected names from {list(self.classes)}"
                )
        if full not in sets:
            raise DatasetError(
                f"{where}: label_sets must include the full set ({full} classes); got sizes {sorted(sets)}"
            )
        return dict(sorted(sets.items()))

    def classes_for(self, n: int) -> tuple[str, ...]:
        """The class subset used when training on `n` classes (the benchmark's ``N<n>`` field)."""
        try:
            return self.label_sets[n]
        except (KeyError, TypeError):
            valid = ", ".join(str(k) for k in self.label_sets)
            raise DatasetError(
                f"dataset {self.name!r} has no {n}-class label set; valid numbers of classes: {valid}"
            ) from None

    @property
    def declared_task(self) -> str:
        """``"multilabel"`` or ``"multiclass"``: the spec's task, else its format's."""
        return self.task or FORMATS[self.format].task

    def task_for(self, n: int) -> str:
        """The task of training the `n`-class label set: ``"binary"``, ``"multiclass"`` or ``"multilabel"``."""
        return task_for(self.declared_task, len(self.classes_for(n)), self.name)

    def root_path(self, data_dir: str | os.PathLike[str]) -> Path:
        """The dataset folder: `root` itself when absolute, else resolved under `data_dir`."""
        root = Path(self.root).expanduser()
        return root if root.is_absolute() else Path(data_dir) / root


DATASETS: Registry[DatasetSpec] = Registry("dataset", lambda spec: spec.name)
"""The registered datasets; lookup and registration follow the registry rule shared with architectures."""


def register_dataset(spec: DatasetSpec, *, replace: bool = False) -> DatasetSpec:
    """Add `spec` to the registry under ``spec.name``; re-registering a different spec needs `replace`."""
    return DATASETS.register(spec, replace=replace)


def get_dataset(name: str) -> DatasetSpec:
    """The registered spec called `name` (case-insensitive)."""
    return DATASETS.get(name)


def dataset_names() -> tuple[str, ...]:
    """Names of all registered datasets, sorted."""
    return tuple(sorted(DATASETS.names()))


def _chexpert_spec(name: str, description: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        format="chexpert",
        root=name,
        train="CheXpert-v1.0-small/train.csv",
        test="CheXpert-v1.0-small/valid.csv",
        classes=CHEXPERT_CLASSES,
        label_sets={5: CHEXPERT_COMPETITION_CLASSES, 12: CHEXPERT_PATHOLOGIES, 14: CHEXPERT_CLASSES},
        description=description,
    )


def _chestxray14_spec(size: int) -> DatasetSpec:
    return DatasetSpec(
        name=f"chestxray14-{size}",
        format="chestxray14",
        root=f"chestxray14-{size}",
        train="Data_Entry_2017_v2020.csv",
        test="test_list.txt",
        train_list="train_val_list.txt",
        image_dir="images",
        classes=CHESTXRAY14_CLASSES,
        description=f"NIH ChestX-ray14, images downsized to {size} px",
    )


for _spec in (
    _chexpert_spec("chexpert", "CheXpert-v1.0-small: about 224k training images, official validation set as test"),
    _chexpert_spec("chexpert-dev", "A ~15k-image subset of CheXpert-v1.0-small for development"),
    _chexpert_spec("demo", "Synthetic CheXpert-layout dataset written by medbench.demo"),
    _chestxray14_spec(256),
    _chestxray14_spec(512),
):
    register_dataset(_spec)


# --------------------------------------------------------------------------------------------------
# Loading a dataset
# --------------------------------------------------------------------------------------------------


def all_image_paths(train: pd.DataFrame, test: pd.DataFrame | None) -> list[str]:
    """Every image of a dataset's training and test tables, unique and sorted: what its preprocessing cache covers."""
    paths = set(train["path"].astype(str))
    if test is not None:
        paths.update(test["path"].astype(str))
    return sorted(paths)


def load_dataset(
    spec: DatasetSpec,
    data_dir: str | os.PathLike[str],
    *,
    check_images: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read the training table and the official test table (None when the test set is split off).

    Class columns follow ``spec.classes``. Train and test must not share images; shared patients
    are logged as a warning.
    """
    root = spec.root_path(data_dir)
    if not root.is_dir():
        raise DatasetError(
            f"dataset folder for {spec.name!r} does not exist; expected it under the data directory "
            f"{Path(data_dir)} (download it with download_dataset.sh or set MEDBENCH_DATA_DIR)",
            file=root,
        )
    train, test = FORMATS[spec.format].load(spec, root, check_images)
    if test is not None:
        _check_disjoint(train, test, root, spec)
    logger.info(
        "dataset %s: %d training rows, %s test rows", spec.name, len(train), "no" if test is None else len(test)
    )
    return train, test


def _check_disjoint(train: pd.DataFrame, test: pd.DataFrame, root: Path, spec: DatasetSpec) -> None:
    shared = test["sample_id"].isin(train["sample_id"]).to_numpy()
    if shared.any():
        raise DatasetError(
            f"{int(shared.sum())} image(s) are in both the training and the test labels of {spec.name!r}, "
            f"e.g. {test['sample_id'].iloc[int(np.argmax(shared))]!r}; expected disjoint sets",
            file=root / str(spec.test),
        )
    patients = int(test["patient_id"].isin(train["patient_id"]).sum())
    if patients:
        logger.warning(
            "%s: %d test image(s) belong to patients that also occur in the training set", spec.name, patients
        )


def _duplicates(values: Iterable[str]) -> list[str]:
    return sorted(name for name, count in Counter(values).items() if count > 1)
