"""NIH ChestX-ray14: the reader of ``Data_Entry_2017_v2020.csv``, the format's finding and column
names, and the split of its table by NIH's official ``train_val_list.txt``/``test_list.txt``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.readers.cells import (
    ASCII_WHITESPACE_BUT_BLANK_AND_NEWLINE,
    categorical_column,
    distinct,
    fail_where,
    file_rows,
    parse_ages,
    parse_sex,
    relative_folder,
    shown_names,
    stripped,
)
from medbench.data.readers.label_csv import read_csv
from medbench.data.readers.table import finish_table, label_table
from medbench.errors import DatasetError

logger = logging.getLogger(__name__)

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


def read_chestxray14_csv(
    csv_path: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    *,
    dataset_root: str | os.PathLike[str] | None = None,
    check_images: bool = True,
) -> pd.DataFrame:
    """Read NIH's ``Data_Entry_2017_v2020.csv`` (plain or gzipped) into a label table.

    The header's bracketed names (``OriginalImage[Width,Height]``) contain commas, so the header has
    as many fields as a data row (``OriginalImage[Width`` and ``Height]`` are two unused columns).
    ``Finding Labels`` holds findings joined by ``|`` or ``No Finding`` (all 14 zero). PA and AP views
    are both frontal. Sample ids are relative to `dataset_root` (default: the CSV's folder), e.g.
    ``images/00000075_000.png``; a relative `image_dir` is taken relative to `dataset_root`.
    """
    csv_path = Path(csv_path)
    root = Path(dataset_root) if dataset_root is not None else csv_path.parent
    images = Path(image_dir) if Path(image_dir).is_absolute() else root / image_dir
    prefix = relative_folder(images, root, csv_path)

    frame = read_csv(csv_path)
    missing = [name for name in CHESTXRAY14_COLUMNS if name not in frame.columns]
    if missing:
        raise DatasetError(
            f"missing column(s) {missing}; expected NIH's header with {list(CHESTXRAY14_COLUMNS)}, "
            f"found {shown_names(frame.columns)}",
            file=csv_path,
            row=1,
            column=missing[0],
        )
    rows = file_rows(frame, csv_path)

    file_names, bad = _file_names(frame["Image Index"])
    fail_where(
        bad,
        file_names,
        csv_path,
        "Image Index",
        rows,
        "is not a bare file name; expected a name like '00000001_000.png'",
    )
    sample_ids = (prefix + file_names) if prefix else file_names

    labels = _chestxray14_findings(frame["Finding Labels"], csv_path, rows)
    frontal = categorical_column(frame, "View Position", ("PA", "AP", "LL", "RL"), csv_path, rows).isin(["PA", "AP"])
    sexes = categorical_column(frame, "Patient Gender", ("M", "F", ""), csv_path, rows)
    sex = parse_sex(sexes, {"M": "Male", "F": "Female"})
    age = parse_ages(frame["Patient Age"], csv_path, "Patient Age", rows, units=True)
    patient_ids = stripped(frame["Patient ID"])
    fail_where(patient_ids == "", patient_ids, csv_path, "Patient ID", rows, "is empty; expected a patient number")
    table = label_table(sample_ids, root, patient_ids, frontal, labels, sex=sex, age=age)
    finish_table(table, csv_path, "Image Index", rows, root, check_images)
    return table


_NOT_IN_BARE_NAMES = "/\\ " + ASCII_WHITESPACE_BUT_BLANK_AND_NEWLINE


def _file_names(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """The stripped ``Image Index`` cells and where one is not a bare file name (empty, a path, '.' or '..').

    NIH's 112,120 names are plain ASCII: when one substring scan of all of them finds nothing that could
    need stripping or make a name bad, they are used as they are.
    """
    values = raw.to_numpy(dtype=object)
    joined = "\n".join(values)
    plain = joined.isascii() and not any(character in joined for character in _NOT_IN_BARE_NAMES)
    if plain and joined[:1] not in ("", "\n") and "\n\n" not in joined and not joined.endswith(("\n", ".")):
        if ".\n" not in joined:
            return raw, np.zeros(len(values), dtype=bool)
    names = [value.strip() for value in values]
    bad = np.fromiter(
        (not name or "/" in name or "\\" in name or name in (".", "..") for name in names), dtype=bool, count=len(names)
    )
    return pd.Series(names, dtype="str", index=raw.index), bad


def _chestxray14_findings(raw: pd.Series, file: Path, rows: np.ndarray) -> dict[str, np.ndarray]:
    """One 0/1 column per NIH finding from ``Finding Labels`` (``A|B`` or ``No Finding``).

    NIH's 112,120 rows hold under a thousand distinct finding lists, so each is parsed once.
    """
    column = "Finding Labels"
    codes, uniques = distinct(raw)
    findings = uniques.str.replace(r"\s*\|\s*", "|", regex=True).str.strip()
    shown = pd.Series(findings.to_numpy(dtype=object)[codes], dtype="str")
    expected = f"'{_NO_FINDING}' or findings joined by '|' from {list(CHESTXRAY14_CLASSES)}"
    fail_where((findings == "").to_numpy()[codes], shown, file, column, rows, f"is empty; expected {expected}")
    dummies = findings.str.get_dummies(sep="|")
    for token in dummies.columns:
        if token not in CHESTXRAY14_CLASSES and token != _NO_FINDING:
            fail_where(
                dummies[token].to_numpy()[codes] == 1,
                shown,
                file,
                column,
                rows,
                f"names the unknown finding {token!r}; expected {expected}",
            )
    if _NO_FINDING in dummies.columns:
        mixed = ((dummies[_NO_FINDING] == 1) & (dummies.sum(axis=1) > 1)).to_numpy()[codes]
        fail_where(
            mixed, shown, file, column, rows, f"combines '{_NO_FINDING}' with findings; expected one or the other"
        )
    present = dummies.reindex(columns=list(CHESTXRAY14_CLASSES), fill_value=0)
    return {name: present[name].to_numpy(dtype=np.float64)[codes] for name in CHESTXRAY14_CLASSES}


def split_official_lists(
    table: pd.DataFrame, test_file: Path | None, train_file: Path | None, *, dataset: str
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Split a ChestX-ray14 table by NIH's image-name lists, when the test list is present.

    `test_file` is NIH's ``test_list.txt``: when it is None or absent the whole table is training
    and the test set is None. `train_file` is ``train_val_list.txt``: when present, images in
    neither list are dropped; else every image not in the test list is training. `dataset` names
    the dataset in the log messages.
    """
    if test_file is None or not test_file.is_file():
        if test_file is not None:
            logger.info("%s: no official test list at %s; the test set will be split from train", dataset, test_file)
        return table, None
    names = table["sample_id"].str.rpartition("/")[2]
    test_names = set(_read_name_list(test_file))
    in_test = names.isin(test_names)
    if train_file is not None and train_file.is_file():
        train_names = set(_read_name_list(train_file))
        in_train = names.isin(train_names)
        both = (in_train & in_test).to_numpy()
        if both.any():
            raise DatasetError(
                f"image {names.iloc[int(np.argmax(both))]!r} is in both official lists "
                f"({int(both.sum())} such images); expected each image in exactly one",
                file=test_file,
            )
        unlisted = int((~in_train & ~in_test).sum())
        if unlisted:
            logger.warning(
                "%s: %d image(s) are in neither %s nor %s and are left out",
                dataset,
                unlisted,
                train_file.name,
                test_file.name,
            )
    else:
        in_train = ~in_test
    unknown = len(test_names - set(names))
    if unknown:
        logger.info("%s: %d image(s) of %s are not in the label file and are ignored", dataset, unknown, test_file.name)
    train = table.loc[in_train.to_numpy()].reset_index(drop=True)
    test = table.loc[in_test.to_numpy()].reset_index(drop=True)
    return train, test


def _read_name_list(path: Path) -> list[str]:
    """Image names, one per line (NIH's ``train_val_list.txt`` / ``test_list.txt``)."""
    with open(path, encoding="utf-8-sig") as handle:
        return [line.strip() for line in handle if line.strip()]
