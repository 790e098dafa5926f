"""Class-per-folder datasets: the reader of ``<folder>/<class>/<image>`` trees (one-hot labels)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.readers.cells import relative_folder
from medbench.data.readers.table import IMAGE_EXTENSIONS, find_patient_ids, label_table
from medbench.errors import DatasetError

logger = logging.getLogger(__name__)


def read_class_folders(
    folder: str | os.PathLike[str],
    *,
    classes: Sequence[str] | None = None,
    dataset_root: str | os.PathLike[str] | None = None,
    patient_pattern: str | None = None,
) -> pd.DataFrame:
    """Read a class-per-folder dataset (``<folder>/<class>/<image>``) into a one-hot label table.

    Classes are the subfolder names, sorted; images may sit in nested folders below their class
    folder. With `classes`, every subfolder must be one of them, missing ones simply have no images,
    and the columns follow that order. Sample ids are relative to `dataset_root` (default: `folder`).
    Files without an image suffix (`IMAGE_EXTENSIONS`) are skipped with a warning.
    """
    folder = Path(folder)
    root = Path(dataset_root) if dataset_root is not None else folder
    if not folder.is_dir():
        raise DatasetError("folder does not exist; expected one subfolder per class holding its images", file=folder)
    prefix = relative_folder(folder, root, folder)
    found = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))
    if not found:
        raise DatasetError("has no class subfolders; expected <folder>/<class>/<image> files", file=folder)
    if classes is None:
        classes = tuple(found)
    else:
        classes = tuple(classes)
        unknown = [name for name in found if name not in classes]
        if unknown:
            raise DatasetError(
                f"class folder(s) {unknown} are not classes of this dataset; expected folders among {list(classes)}",
                file=folder,
            )

    sample_ids: list[str] = []
    label_index: list[int] = []
    skipped: list[str] = []
    for index, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(class_dir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            relative_dir = Path(dirpath).relative_to(folder).as_posix()
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                if Path(filename).suffix.lower() not in IMAGE_EXTENSIONS:
                    skipped.append(f"{relative_dir}/{filename}")
                    continue
                sample_ids.append(f"{prefix}{relative_dir}/{filename}")
                label_index.append(index)
    if skipped:
        logger.warning("%s: skipped %d file(s) without an image suffix, e.g. %s", folder, len(skipped), skipped[:3])
    used = set(label_index)
    empty = [name for index, name in enumerate(classes) if index not in used]
    if empty:
        logger.warning("%s: no images for class(es) %s", folder, empty)
    if not sample_ids:
        raise DatasetError(
            f"holds no images; expected files ending in {sorted(IMAGE_EXTENSIONS)} in class subfolders", file=folder
        )

    labels = np.zeros((len(sample_ids), len(classes)), dtype=np.float64)
    labels[np.arange(len(sample_ids)), label_index] = 1.0
    ids = pd.Series(sample_ids, dtype="str")
    patient_ids = find_patient_ids(None, ids, None, patient_pattern, folder, None, None)
    return label_table(ids, root, patient_ids, True, dict(zip(classes, labels.T, strict=True)))
