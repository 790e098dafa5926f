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
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medbench.data.formats import FIELD_PURPOSES, FORMATS, DatasetFormat
from medbench.data.readers import CHESTXRAY14_CLASSES, CHEXPERT_CLASSES
from medbench.data.readers.table import compile_patient_pattern
from medbench.data.tasks import DECLARED_TASKS, task_for
from medbench.data.volumes import check_volume_settings
from medbench.errors import DatasetError
from medbench.registry import Registry

logger = logging.getLogger(__name__)

_NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

__all__ = [
    "CHEXPERT_COMPETITION_CLASSES",
    "CHEXPERT_PATHOLOGIES",
    "FORMATS",
    "DatasetFormat",
    "DatasetSpec",
    "dataset_names",
    "get_dataset",
    "load_dataset",
    "load_validation",
    "register_dataset",
    "register_stored_dataset",
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
        val: The official validation labels relative to `root` (with `test`: the dataset is split by its
            files, as TIML's ``pre`` and ``list`` splits are, and a benchmark of it names no split), or None
            when validation is split from train by patient. Not for ``"chestxray14"``.
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
    val: str | None = None
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
                raise DatasetError(f"{where}: format {self.format!r} needs {needed} ({FIELD_PURPOSES[needed]})")
        if self.patient_pattern is not None:
            compile_patient_pattern(self.patient_pattern)
        if self.val is not None and (self.test is None or self.format == "chestxray14"):
            raise DatasetError(
                f"{where}: val {self.val!r} needs a test file beside it and a format other than 'chestxray14'; "
                "expected val and test label files (or neither: validation split from train by patient)"
            )
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

    def to_dict(self) -> dict[str, Any]:
        """The spec, JSON-friendly (what a run's config.json keeps, so the run outlives the registration)."""
        data = asdict(self)
        data["label_sets"] = {str(n): list(names) for n, names in self.label_sets.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetSpec:
        known = {item.name for item in fields(cls)}
        values = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items() if key in known
        }
        values["label_sets"] = {int(n): tuple(names) for n, names in dict(data.get("label_sets") or {}).items()}
        return cls(**values)

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


def register_stored_dataset(data: Any) -> None:
    """Register the dataset spec a run's config.json keeps, unless a dataset of its name is registered.

    A run made on a dataset registered at run time (a TIML table's CSV) is re-evaluated, predicted and
    served in later processes through this; a registered spec of the same name wins over the stored one.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        return
    if data["name"].lower() in {name.lower() for name in DATASETS.names()}:
        return
    register_dataset(DatasetSpec.from_dict(data))


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


def all_image_paths(train: pd.DataFrame, *others: pd.DataFrame | None) -> list[str]:
    """Every image of a dataset's training, test (and validation) tables, unique and sorted: what its
    preprocessing cache covers."""
    paths = set(train["path"].astype(str))
    for table in others:
        if table is not None:
            paths.update(table["path"].astype(str))
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
        check_disjoint(train, test, spec, root)
    logger.info(
        "dataset %s: %d training rows, %s test rows", spec.name, len(train), "no" if test is None else len(test)
    )
    return train, test


def load_validation(spec: DatasetSpec, data_dir: str | os.PathLike[str], *, check_images: bool = True) -> pd.DataFrame:
    """The official validation table of a spec with `val` (class columns in the spec's order)."""
    if spec.val is None:
        raise DatasetError(f"dataset {spec.name!r} has no official validation file (its spec's val is None)")
    root = spec.root_path(data_dir)
    val, _ = FORMATS[spec.format].load(replace(spec, train=spec.val, test=None, val=None), root, check_images)
    logger.info("dataset %s: %d official validation rows", spec.name, len(val))
    return val


def check_disjoint(
    first: pd.DataFrame,
    second: pd.DataFrame,
    spec: DatasetSpec,
    root: Path,
    parts: tuple[str, str] = ("training", "test"),
) -> None:
    """Two parts of a dataset share no image (an error naming one) and, preferably, no patient (a warning)."""
    shared = second["sample_id"].isin(first["sample_id"]).to_numpy()
    where = root / str(spec.test if parts[1] == "test" else spec.val)
    if shared.any():
        raise DatasetError(
            f"{int(shared.sum())} image(s) are in both the {parts[0]} and the {parts[1]} labels of {spec.name!r}, "
            f"e.g. {second['sample_id'].iloc[int(np.argmax(shared))]!r}; expected disjoint sets",
            file=where,
        )
    patients = int(second["patient_id"].isin(first["patient_id"]).sum())
    if patients:
        logger.warning(
            "%s: %d %s image(s) belong to patients that also occur in the %s set", spec.name, patients, *reversed(parts)
        )


def _duplicates(values: Iterable[str]) -> list[str]:
    return sorted(name for name, count in Counter(values).items() if count > 1)
