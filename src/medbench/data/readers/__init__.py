"""Readers: one per label-file format, each turning a dataset's labels into a *label table*.

A label table (the project's data contract) is a `pandas.DataFrame` with the leading columns
``sample_id, path, patient_id, frontal`` (plus ``sex, age`` where the format records them) followed
by one float64 column per class holding the raw labels 1.0 (positive), 0.0 (negative), -1.0
(uncertain) or NaN (not mentioned). Readers validate as they read and raise `DatasetError`s that
name the file, the row (1-based, header = row 1), the column and what was expected.

Modules: `chexpert`, `chestxray14` (also NIH's official train/test lists), `onehot`, `generic_csv`,
`class_folders`, `dicom_csv` (DICOM files, patient and view from their headers) and `volume_csv` (3D
volume files and DICOM series folders), one per format;
`label_csv` (reading a CSV: each header name once, every row as long as the header), `cells` (column
and cell checks) and `table` (patient ids, table assembly, duplicate and missing-image checks) hold
what they share.
"""

from medbench.data.readers.chestxray14 import CHESTXRAY14_CLASSES, CHESTXRAY14_COLUMNS, read_chestxray14_csv
from medbench.data.readers.chexpert import CHEXPERT_CLASSES, CHEXPERT_METADATA_COLUMNS, read_chexpert_csv
from medbench.data.readers.class_folders import read_class_folders
from medbench.data.readers.dicom_csv import read_dicom_csv
from medbench.data.readers.generic_csv import read_generic_csv
from medbench.data.readers.onehot import read_onehot_csv
from medbench.data.readers.table import IMAGE_EXTENSIONS
from medbench.data.readers.volume_csv import read_volume_csv

__all__ = [
    "CHESTXRAY14_CLASSES",
    "CHESTXRAY14_COLUMNS",
    "CHEXPERT_CLASSES",
    "CHEXPERT_METADATA_COLUMNS",
    "IMAGE_EXTENSIONS",
    "read_chestxray14_csv",
    "read_chexpert_csv",
    "read_class_folders",
    "read_dicom_csv",
    "read_generic_csv",
    "read_onehot_csv",
    "read_volume_csv",
]
