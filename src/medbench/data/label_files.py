"""Label files: the readers that turn each format's label file (or class folders) into a label table.

One reader per format a `medbench.data.datasets.DatasetSpec` can declare: `read_chexpert_csv`,
`read_chestxray14_csv`, `read_onehot_csv`, `read_generic_csv` and `read_class_folders`, plus the
constants that describe those formats (the CheXpert and ChestX-ray14 class and column names, the
image suffixes) and the private helpers that read and validate the files.

Every reader returns a *label table* (see the project's data contract): a `pandas.DataFrame` with the
leading columns ``sample_id, path, patient_id, frontal`` (plus ``sex, age`` where the format records
them) followed by one float64 column per class holding the raw labels 1.0 (positive), 0.0 (negative),
-1.0 (uncertain) or NaN (not mentioned). Readers validate as they read and raise `DatasetError`s that
name the file, the row (1-based, header = row 1), the column and what was expected.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.errors import DatasetError

logger = logging.getLogger(__name__)

__all__ = [
    "CHESTXRAY14_CLASSES",
    "CHESTXRAY14_COLUMNS",
    "CHEXPERT_CLASSES",
    "CHEXPERT_METADATA_COLUMNS",
    "IMAGE_EXTENSIONS",
    "read_chestxray14_csv",
    "read_chexpert_csv",
    "read_class_folders",
    "read_generic_csv",
    "read_onehot_csv",
]

CHEXPERT_CLASSES: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
"""The 14 CheXpert observations in the official column order."""

CHESTXRAY14_CLASSES: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
"""The 14 ChestX-ray14 findings in NIH's order."""

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
"""File suffixes (lower case) that class-per-folder datasets treat as images."""

CHEXPERT_METADATA_COLUMNS: tuple[str, ...] = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
"""The columns of a CheXpert label file before the 14 class columns."""

CHESTXRAY14_COLUMNS: tuple[str, ...] = (
    "Image Index",
    "Finding Labels",
    "Patient ID",
    "Patient Age",
    "Patient Gender",
    "View Position",
)
"""The columns of NIH's label file that the ChestX-ray14 loader reads."""

_NO_FINDING = "No Finding"
_RAW_LABELS = "1.0 (positive), 0.0 (negative), -1.0 (uncertain) or an empty cell (not mentioned)"
_BINARY_LABELS = "1 or 0 (also written 1.0 / 0.0)"
_SHOWN = 10


# --------------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------------


def read_chexpert_csv(
    csv_path: str | os.PathLike[str],
    dataset_root: str | os.PathLike[str],
    *,
    classes: Sequence[str] = CHEXPERT_CLASSES,
    check_images: bool = True,
) -> pd.DataFrame:
    """Read a CheXpert ``train.csv``/``valid.csv`` into a label table.

    ``Path`` is relative to `dataset_root`, the folder that contains ``CheXpert-v1.0-small``, and is
    used unchanged as the sample id. The patient id is the ``patientNNNNN`` folder of the path.
    """
    csv_path, root = Path(csv_path), Path(dataset_root)
    frame = _read_csv(csv_path)
    _require_columns(frame, (*CHEXPERT_METADATA_COLUMNS, *classes), csv_path)
    rows = _file_rows(frame)
    sample_ids = _relative_paths(frame["Path"], csv_path, "Path", rows)
    patient_ids = sample_ids.str.extract(r"(?:^|/)(patient\d+)(?:/|$)", expand=False)
    _fail_where(
        patient_ids.isna(),
        sample_ids,
        csv_path,
        "Path",
        rows,
        "has no 'patientNNNNN' folder; expected a path like "
        "'CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg'",
    )
    frontal = _checked(frame, "Frontal/Lateral", ("Frontal", "Lateral"), csv_path, rows) == "Frontal"
    _checked(frame, "AP/PA", ("", "AP", "PA", "LL", "RL"), csv_path, rows)
    sexes = _checked(frame, "Sex", ("Male", "Female", "Unknown", ""), csv_path, rows)
    sex = _sex(sexes, {"Male": "Male", "Female": "Female"})
    age = _ages(frame["Age"], csv_path, "Age", rows)
    labels = _labels(frame, classes, (1.0, 0.0, -1.0), _RAW_LABELS, csv_path, rows, blank_allowed=True)
    table = _label_table(sample_ids, root, patient_ids, frontal, labels, sex=sex, age=age)
    _finish(table, csv_path, "Path", rows, root, check_images)
    return table


def read_chestxray14_csv(
    csv_path: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    *,
    dataset_root: str | os.PathLike[str] | None = None,
    check_images: bool = True,
) -> pd.DataFrame:
    """Read NIH's ``Data_Entry_2017_v2020.csv`` (plain or gzipped) into a label table.

    The header's bracketed names (``OriginalImage[Width,Height]``) contain commas, so the header is
    split like a data row and the needed columns are taken by position. ``Finding Labels`` holds
    findings joined by ``|`` or ``No Finding`` (all 14 zero). PA and AP views are both frontal.
    Sample ids are relative to `dataset_root` (default: the CSV's folder), e.g.
    ``images/00000075_000.png``; a relative `image_dir` is taken relative to `dataset_root`.
    """
    csv_path = Path(csv_path)
    root = Path(dataset_root) if dataset_root is not None else csv_path.parent
    images = Path(image_dir) if Path(image_dir).is_absolute() else root / image_dir
    prefix = _relative_folder(images, root, csv_path)

    header = _read_csv(csv_path, header=False, nrows=1)
    names = [str(name).strip() for name in header.iloc[0]] if len(header) else []
    missing = [name for name in CHESTXRAY14_COLUMNS if name not in names]
    if missing:
        raise DatasetError(
            f"missing column(s) {missing}; expected NIH's header with {list(CHESTXRAY14_COLUMNS)}, found {names}",
            file=csv_path,
            row=1,
            column=missing[0],
        )
    positions = {names.index(name): name for name in CHESTXRAY14_COLUMNS}
    frame = _read_csv(csv_path, header=False, skiprows=1, usecols=sorted(positions)).rename(columns=positions)
    rows = _file_rows(frame)

    file_names = frame["Image Index"].str.strip()
    bad = (file_names == "") | file_names.str.contains(r"[/\\]", regex=True) | file_names.isin([".", ".."])
    _fail_where(
        bad,
        file_names,
        csv_path,
        "Image Index",
        rows,
        "is not a bare file name; expected a name like '00000001_000.png'",
    )
    sample_ids = (prefix + file_names) if prefix else file_names

    labels = _chestxray14_findings(frame["Finding Labels"], csv_path, rows)
    frontal = _checked(frame, "View Position", ("PA", "AP", "LL", "RL"), csv_path, rows).isin(["PA", "AP"])
    sexes = _checked(frame, "Patient Gender", ("M", "F", ""), csv_path, rows)
    sex = _sex(sexes, {"M": "Male", "F": "Female"})
    age = _ages(frame["Patient Age"], csv_path, "Patient Age", rows, units=True)
    patient_ids = frame["Patient ID"].str.strip()
    _fail_where(patient_ids == "", patient_ids, csv_path, "Patient ID", rows, "is empty; expected a patient number")
    table = _label_table(sample_ids, root, patient_ids, frontal, labels, sex=sex, age=age)
    _finish(table, csv_path, "Image Index", rows, root, check_images)
    return table


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
    prefix = _relative_folder(images, root, csv_path)
    frame = _read_csv(csv_path)
    classes = _label_columns(frame, classes, (image_column, patient_column), csv_path)
    _require_columns(frame, (image_column, *([patient_column] if patient_column else []), *classes), csv_path)
    rows = _file_rows(frame)
    names = _relative_paths(frame[image_column], csv_path, image_column, rows)
    names = _with_extension(names, images, extension)
    sample_ids = (prefix + names) if prefix else names
    labels = _labels(frame, classes, (1.0, 0.0), _BINARY_LABELS, csv_path, rows, blank_allowed=False)
    patient_ids = _patient_ids(frame, sample_ids, patient_column, patient_pattern, csv_path, image_column, rows)
    table = _label_table(sample_ids, root, patient_ids, True, labels)
    _finish(table, csv_path, image_column, rows, root, check_images)
    return table


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
    frame = _read_csv(csv_path)
    classes = _label_columns(frame, label_columns, (path_column, patient_column), csv_path)
    _require_columns(frame, (path_column, *([patient_column] if patient_column else []), *classes), csv_path)
    rows = _file_rows(frame)
    sample_ids = _relative_paths(frame[path_column], csv_path, path_column, rows)
    labels = _labels(frame, classes, (1.0, 0.0, -1.0), "1, 0, -1 or an empty cell", csv_path, rows, blank_allowed=True)
    patient_ids = _patient_ids(frame, sample_ids, patient_column, patient_pattern, csv_path, path_column, rows)
    table = _label_table(sample_ids, root, patient_ids, True, labels)
    _finish(table, csv_path, path_column, rows, root, check_images)
    return table


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
    prefix = _relative_folder(folder, root, folder)
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
    patient_ids = _patient_ids(None, ids, None, patient_pattern, folder, None, None)
    return _label_table(ids, root, patient_ids, True, dict(zip(classes, labels.T, strict=True)))


# --------------------------------------------------------------------------------------------------
# Reading and validation helpers
# --------------------------------------------------------------------------------------------------


def _read_csv(path: Path, *, header: bool = True, **options: object) -> pd.DataFrame:
    """Read every cell as a string (no NA guessing); fully blank lines are dropped, row numbers kept."""
    if not path.is_file():
        raise DatasetError("label file does not exist; expected a CSV file at this path", file=path)
    try:
        frame = pd.read_csv(
            path,
            header=0 if header else None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
            **options,  # type: ignore[arg-type]
        )
    except pd.errors.EmptyDataError:
        raise DatasetError("file is empty; expected a header row and one row per image", file=path) from None
    except pd.errors.ParserError as err:
        raise DatasetError(
            f"is not a well-formed CSV file ({err}); expected the same number of fields on every row", file=path
        ) from err
    except UnicodeDecodeError as err:
        raise DatasetError(f"is not UTF-8 text ({err}); expected a UTF-8 CSV file", file=path) from err
    if header:
        frame.columns = [str(name).strip() for name in frame.columns]
    blank = (frame == "").all(axis=1)
    return frame.loc[~blank] if blank.any() else frame


def _file_rows(frame: pd.DataFrame) -> np.ndarray:
    """1-based file row of each frame row (the header is row 1)."""
    return frame.index.to_numpy(dtype=np.int64) + 2


def _require_columns(frame: pd.DataFrame, expected: Iterable[str], file: Path) -> None:
    expected = list(dict.fromkeys(expected))
    missing = [name for name in expected if name not in frame.columns]
    if missing:
        raise DatasetError(
            f"missing column(s) {missing}; expected columns {expected}, found {list(frame.columns)}",
            file=file,
            row=1,
            column=missing[0],
        )


def _label_columns(
    frame: pd.DataFrame, chosen: Sequence[str] | None, exclude: Iterable[str | None], file: Path
) -> tuple[str, ...]:
    if chosen is not None:
        return tuple(chosen)
    excluded = {name for name in exclude if name}
    columns = tuple(name for name in frame.columns if name not in excluded)
    if not columns:
        raise DatasetError(
            f"has no label columns; expected numeric class columns besides {sorted(excluded)}", file=file, row=1
        )
    return columns


def _fail_where(
    mask: pd.Series | np.ndarray,
    values: pd.Series,
    file: Path,
    column: str | None,
    rows: np.ndarray | None,
    problem: str,
) -> None:
    """Raise for the first True position of `mask`, counting all of them."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return
    first = int(np.argmax(mask))
    count = int(mask.sum())
    more = f" ({count} rows have this problem; the first is shown)" if count > 1 else ""
    raise DatasetError(
        f"value {values.iloc[first]!r} {problem}{more}",
        file=file,
        row=None if rows is None else int(rows[first]),
        column=column,
    )


def _relative_paths(raw: pd.Series, file: Path, column: str, rows: np.ndarray) -> pd.Series:
    """Validate image paths relative to the dataset root and normalize them to POSIX form."""
    paths = raw.str.strip().str.replace("\\", "/", regex=False)
    _fail_where(paths == "", paths, file, column, rows, "is empty; expected an image path")
    absolute = paths.str.startswith("/") | paths.str.match(r"^[A-Za-z]:")
    _fail_where(
        absolute, paths, file, column, rows, "is an absolute path; expected a path relative to the dataset folder"
    )
    escaping = paths.str.contains(r"(?:^|/)\.\.(?:/|$)", regex=True)
    _fail_where(
        escaping,
        paths,
        file,
        column,
        rows,
        "leaves the dataset folder ('..'); expected a path inside the dataset folder",
    )
    untidy = paths.str.contains(r"//|(?:^|/)\.(?:/|$)|/$", regex=True)
    if untidy.any():
        paths = paths.copy()
        paths[untidy] = [
            "/".join(part for part in value.split("/") if part not in ("", ".")) for value in paths[untidy]
        ]
        _fail_where(paths == "", raw.str.strip(), file, column, rows, "names no file; expected an image path")
    return paths


def _relative_folder(folder: Path, root: Path, file: Path) -> str:
    """The POSIX prefix (``"images/"`` or ``""``) of `folder` inside `root`."""
    relative = os.path.relpath(os.path.abspath(folder), os.path.abspath(root))
    if relative == os.curdir:
        return ""
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        raise DatasetError(f"image folder {folder} is outside the dataset folder {root}; expected it inside", file=file)
    return Path(relative).as_posix() + "/"


def _checked(frame: pd.DataFrame, column: str, allowed: Iterable[str], file: Path, rows: np.ndarray) -> pd.Series:
    """The stripped cells of a categorical column, failing on any value outside `allowed`."""
    allowed = list(allowed)
    values = frame[column].str.strip()
    shown = ", ".join(repr(value) if value else "empty" for value in allowed)
    _fail_where(~values.isin(allowed), values, file, column, rows, f"is not allowed; expected one of {shown}")
    return values


def _sex(values: pd.Series, names: Mapping[str, str]) -> pd.Series:
    """Sex as 'Male'/'Female' (object dtype), None where unknown."""
    return pd.Series([names.get(value) for value in values], dtype=object, index=values.index)


_AGE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[YyMmDd]?)$")


def _ages(raw: pd.Series, file: Path, column: str, rows: np.ndarray, *, units: bool = False) -> pd.Series:
    """Ages in years (NaN when empty); with `units`, NIH's old ``058Y``/``006M``/``010D`` form is read too."""
    values = raw.str.strip()
    blank = values == ""
    parts = values.str.extract(_AGE)
    bad = ~blank & parts["number"].isna()
    if not units:
        bad |= ~blank & (parts["unit"] != "")
    _fail_where(
        bad, values, file, column, rows, "is not an age; expected a non-negative number of years or an empty cell"
    )
    years = pd.to_numeric(parts["number"], errors="coerce").astype(np.float64)
    if units:
        divisor = parts["unit"].str.upper().map({"": 1.0, "Y": 1.0, "M": 12.0, "D": 365.25}).astype(np.float64)
        years = years / divisor
    return years


def _labels(
    frame: pd.DataFrame,
    classes: Sequence[str],
    allowed: tuple[float, ...],
    expected: str,
    file: Path,
    rows: np.ndarray,
    *,
    blank_allowed: bool,
) -> dict[str, np.ndarray]:
    """Parse label cells to float64 (empty → NaN), failing on any value outside `allowed`."""
    labels: dict[str, np.ndarray] = {}
    for name in classes:
        cells = frame[name].str.strip()
        blank = (cells == "").to_numpy()
        values = pd.to_numeric(cells.where(~blank, None), errors="coerce").to_numpy(dtype=np.float64)
        parsed = ~np.isnan(values)
        bad = (~blank & ~parsed) | (parsed & ~np.isin(values, allowed))
        if not blank_allowed:
            bad |= blank
        _fail_where(bad, cells, file, name, rows, f"is not a label; expected {expected}")
        labels[name] = values
    return labels


def _chestxray14_findings(raw: pd.Series, file: Path, rows: np.ndarray) -> dict[str, np.ndarray]:
    """One 0/1 column per NIH finding from ``Finding Labels`` (``A|B`` or ``No Finding``)."""
    column = "Finding Labels"
    findings = raw.str.replace(r"\s*\|\s*", "|", regex=True).str.strip()
    expected = f"'{_NO_FINDING}' or findings joined by '|' from {list(CHESTXRAY14_CLASSES)}"
    _fail_where(findings == "", findings, file, column, rows, f"is empty; expected {expected}")
    dummies = findings.str.get_dummies(sep="|")
    for token in dummies.columns:
        if token not in CHESTXRAY14_CLASSES and token != _NO_FINDING:
            _fail_where(
                dummies[token].to_numpy() == 1,
                findings,
                file,
                column,
                rows,
                f"names the unknown finding {token!r}; expected {expected}",
            )
    if _NO_FINDING in dummies.columns:
        mixed = (dummies[_NO_FINDING] == 1) & (dummies.sum(axis=1) > 1)
        _fail_where(
            mixed, findings, file, column, rows, f"combines '{_NO_FINDING}' with findings; expected one or the other"
        )
    present = dummies.reindex(columns=list(CHESTXRAY14_CLASSES), fill_value=0)
    return {name: present[name].to_numpy(dtype=np.float64) for name in CHESTXRAY14_CLASSES}


def _compile_patient_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as err:
        raise DatasetError(f"patient_pattern {pattern!r} is not a valid regular expression ({err})") from err


def _patient_ids(
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
        _fail_where(ids == "", ids, file, column, rows, "is empty; expected a patient id")
        return ids
    if pattern is None:
        return sample_ids
    regex = _compile_patient_pattern(pattern)
    matches = [regex.search(value) for value in sample_ids]
    _fail_where(
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


def _with_extension(names: pd.Series, images: Path, extension: str | None) -> pd.Series:
    """Append `extension` to names lacking it; without one, resolve suffix-less names by their stem."""
    if extension:
        suffix = extension if extension.startswith(".") else f".{extension}"
        lacking = ~names.str.lower().str.endswith(suffix.lower())
        return names.where(~lacking, names + suffix)
    listing = _DirectoryListing()
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


def _label_table(
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
    columns: dict[str, object] = {
        "sample_id": pd.array(sample, dtype="str"),
        "path": pd.array((base + sample_ids.str.replace("/", os.sep, regex=False)).to_numpy(dtype=object), dtype="str"),
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


def _finish(table: pd.DataFrame, file: Path, column: str, rows: np.ndarray, root: Path, check_images: bool) -> None:
    """Shared final checks: unique images and, optionally, that every image exists."""
    _check_unique(table["sample_id"], file, column, rows)
    if check_images:
        _check_images_exist(table, file, column, rows, root)


def _check_unique(sample_ids: pd.Series, file: Path, column: str, rows: np.ndarray) -> None:
    repeated = sample_ids.duplicated(keep="first").to_numpy()
    if not repeated.any():
        return
    later = int(np.argmax(repeated))
    value = sample_ids.iloc[later]
    first = int(np.argmax((sample_ids == value).to_numpy()))
    count = int(repeated.sum())
    raise DatasetError(
        f"image {value!r} is listed twice (rows {rows[first]} and {rows[later]}); expected each image once"
        + (f" ({count} repeated rows in all)" if count > 1 else ""),
        file=file,
        row=int(rows[later]),
        column=column,
    )


class _DirectoryListing:
    """Caches one directory listing per folder, so existence checks cost one scan per folder."""

    def __init__(self) -> None:
        self._names: dict[str, frozenset[str]] = {}
        self._stems: dict[str, dict[str, tuple[str, ...]]] = {}

    def names(self, directory: str) -> frozenset[str]:
        if directory not in self._names:
            try:
                self._names[directory] = frozenset(os.listdir(directory))
            except (FileNotFoundError, NotADirectoryError):
                self._names[directory] = frozenset()
        return self._names[directory]

    def stems(self, directory: str) -> dict[str, tuple[str, ...]]:
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
    listing = _DirectoryListing()
    split = table["path"].str.rpartition(os.sep)
    missing = [
        index
        for index, (directory, name) in enumerate(zip(split[0], split[2], strict=True))
        if name not in listing.names(directory)
    ]
    if not missing:
        return
    shown = ", ".join(f"row {rows[i]} {table['sample_id'].iloc[i]!r}" for i in missing[:_SHOWN])
    total = len(table)
    if len(missing) == total:
        summary = f"none of the {total} listed image files exist under {root}"
    else:
        summary = f"{len(missing)} of {total} listed image files are missing under {root}"
    raise DatasetError(
        f"{summary} (first {min(len(missing), _SHOWN)}: {shown}); expected every listed image to exist "
        "(were the images downloaded and unpacked into the dataset folder?)",
        file=file,
        row=int(rows[missing[0]]),
        column=column,
    )
