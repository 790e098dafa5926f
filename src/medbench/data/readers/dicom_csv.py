"""DICOM datasets: a label CSV keyed by file name or SOP Instance UID over a folder of DICOM files.

Each image's patient id (PatientID) and view (ViewPosition) come from its own header, never from the
CSV, so patient-level splits and the frontal-only option use what the modality wrote. The folder is
scanned once (headers only, no pixel data); every file with the DICOM marker is indexed, other files
are ignored. A row is keyed by its file's path relative to the image folder or, when the key column is
``SOPInstanceUID``, by that UID. Label cells hold 1, 0, -1 or nothing, as in the generic CSV.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.dicom import is_dicom
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
from medbench.data.readers.table import finish_table, label_table
from medbench.errors import DatasetError

__all__ = ["SOP_INSTANCE_UID", "DicomHeader", "read_dicom_csv", "scan_dicom_folder"]

SOP_INSTANCE_UID = "SOPInstanceUID"
FRONTAL_VIEWS = frozenset({"PA", "AP"})
"""ViewPosition values of frontal projections; an image without a ViewPosition counts as frontal too
(nothing says it is not), every other value (LL, RL, LLD, …) as not frontal."""
_TAGS = ("SOPInstanceUID", "PatientID", "ViewPosition")


@dataclass(frozen=True)
class DicomHeader:
    """What a DICOM dataset needs of one file: its path below the image folder, its UID, patient and view."""

    path: str
    uid: str
    patient_id: str
    view: str


def scan_dicom_folder(folder: Path) -> list[DicomHeader]:
    """The header of every DICOM file below `folder` (sorted by path); an unreadable header names its file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    headers = []
    for path in sorted(item for item in folder.rglob("*") if item.is_file()):
        if not is_dicom(path):
            continue
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_TAGS))
        except (InvalidDicomError, OSError, ValueError, KeyError, EOFError) as error:
            raise DatasetError(
                f"is a DICOM file whose header cannot be read ({type(error).__name__}: {str(error)[:200]}); "
                "expected a complete DICOM file",
                file=path,
            ) from None
        values = {tag: str(dataset.get(tag, "") or "").strip() for tag in _TAGS}
        headers.append(
            DicomHeader(
                path.relative_to(folder).as_posix(),
                values["SOPInstanceUID"],
                values["PatientID"],
                values["ViewPosition"].upper(),
            )
        )
    if not headers:
        raise DatasetError(f"image folder {folder} holds no DICOM file; expected the dataset's DICOM images")
    return headers


def read_dicom_csv(
    csv_path: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    key_column: str,
    classes: Sequence[str] | None = None,
    *,
    dataset_root: str | os.PathLike[str] | None = None,
    check_images: bool = True,
) -> pd.DataFrame:
    """Read a label CSV whose `key_column` names each DICOM file (or holds its SOP Instance UID).

    `classes` picks and orders the label columns (default: every other column, in file order). Sample
    ids are the files' paths relative to `dataset_root` (default: the CSV's folder). Every listed file
    must be in the folder whatever `check_images` says: its header is where its patient id comes from.
    """
    csv_path = Path(csv_path)
    root = Path(dataset_root) if dataset_root is not None else csv_path.parent
    images = Path(image_dir) if Path(image_dir).is_absolute() else root / image_dir
    prefix = relative_folder(images, root, csv_path)
    frame = read_csv(csv_path)
    classes = choose_label_columns(frame, classes, (key_column,), csv_path)
    require_columns(frame, (key_column, *classes), csv_path)
    rows = file_rows(frame, csv_path)
    labels = parse_labels(
        frame, classes, (1.0, 0.0, -1.0), "1, 0, -1 or an empty cell", csv_path, rows, blank_allowed=True
    )
    headers = scan_dicom_folder(images)  # the folder's headers are read once the CSV itself is known good
    if key_column == SOP_INSTANCE_UID:
        keys, by_key, kind = frame[key_column].str.strip(), _index(headers, "uid", images), "SOP Instance UID"
    else:
        keys, by_key, kind = (
            relative_paths(frame[key_column], csv_path, key_column, rows),
            _index(headers, "path", images),
            "file",
        )
    found = [by_key.get(key) for key in keys]
    fail_where(
        np.array([header is None for header in found], dtype=bool),
        keys,
        csv_path,
        key_column,
        rows,
        f"names no DICOM {kind} under {images}; expected a DICOM file of the image folder",
    )
    listed = [header for header in found if header is not None]
    sample_ids = pd.Series([prefix + header.path for header in listed], dtype="str")
    patient_ids = pd.Series([header.patient_id for header in listed], dtype="str")
    fail_where(
        (patient_ids == "").to_numpy(),
        sample_ids,
        csv_path,
        key_column,
        rows,
        "has no PatientID in its DICOM header; expected one (patient-level splits need it)",
    )
    frontal = pd.Series([header.view in FRONTAL_VIEWS or header.view == "" for header in listed], dtype=bool)
    table = label_table(sample_ids, root, patient_ids, frontal, labels)
    finish_table(table, csv_path, key_column, rows, root, check_images)
    return table


def _index(headers: list[DicomHeader], field: str, folder: Path) -> dict[str, DicomHeader]:
    """The headers by `field` ("path" or "uid"); a UID shared by two files is refused naming both."""
    index: dict[str, DicomHeader] = {}
    for header in headers:
        key = getattr(header, field)
        if field == "uid" and not key:
            raise DatasetError(
                "has no SOPInstanceUID; expected one in every file of the folder", file=folder / header.path
            )
        if key in index:
            raise DatasetError(
                f"has the SOP Instance UID {key} of {folder / index[key].path}; expected each UID once "
                "(a copied file?)",
                file=folder / header.path,
            )
        index[key] = header
    return index
