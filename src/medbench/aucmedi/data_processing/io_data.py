"""AUCMEDI's first pillar, `input_interface`: a dataset's sample names, one-hot classes, class count and names.

Three layouts, as AUCMEDI reads them:

- ``"csv"``: a ``SAMPLE`` column (`col_sample`) and either one ``CLASS`` column of class names
  (`col_class`, ``ohe=False``) or one 0/1 column per class (``ohe=True``, all other columns or
  `ohe_range`);
- ``"directory"``: one subfolder per class (training), or the images themselves (``training=False``);
- ``"json"``: ``{"sample": "class"}`` (``ohe=False``) or ``{"sample": [0, 1, ...]}`` (``ohe=True``), an
  optional ``"legend"`` entry naming the classes.

Returns ``(index_list, class_ohe, class_n, class_names, image_format)``, the last four ``None`` for
``training=False`` except the image format. Unlike AUCMEDI, the class order of a sparse JSON follows its
legend (AUCMEDI's one-hot columns followed sorted values whatever the legend said), the class count of a
one-hot JSON without legend is its width (AUCMEDI returned None), and every problem is a `DatasetError`
naming the file, row or sample and what was expected.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medbench.data.readers.label_csv import read_csv
from medbench.errors import ConfigError, DatasetError

__all__ = ["ACCEPTABLE_IMAGE_FORMATS", "input_interface"]

ACCEPTABLE_IMAGE_FORMATS = ("jpeg", "jpg", "tif", "tiff", "png", "bmp", "gif", "npy", "nii", "gz", "mha", "dcm")
"""File suffixes the interfaces take for images or volumes (``gz`` for ``.nii.gz``)."""
INTERFACES = ("csv", "directory", "json")
_CSV_KEYWORDS = ("ohe_range", "col_sample", "col_class")

Parsed = tuple[list[str], np.ndarray | None, int | None, list[str] | None, str | None]


def input_interface(
    interface: str,
    path_imagedir: str | os.PathLike[str],
    path_data: str | os.PathLike[str] | None = None,
    training: bool = True,
    ohe: bool = False,
    image_format: str | None = None,
    **kwargs: Any,
) -> Parsed:
    """Read a dataset's samples and classes; see the module docstring for the layouts.

    `image_format` forces the suffix appended to sample names (default: found from the image folder).
    The csv interface takes `ohe_range`, `col_sample` and `col_class`; any other keyword is an error.
    """
    kind = str(interface).lower()
    if kind not in INTERFACES:
        raise ConfigError(f"input_interface: interface {interface!r}; expected one of {', '.join(INTERFACES)}")
    allowed = _CSV_KEYWORDS if kind == "csv" else ()
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) or "none"
        raise ConfigError(
            f"input_interface({kind!r}): unknown keyword {unknown}; the {kind} interface takes {accepted}"
        )
    images = Path(path_imagedir)
    if not images.is_dir():
        raise DatasetError(f"{images}: the image folder does not exist; expected path_imagedir to be a folder")
    if kind in ("csv", "json") and path_data is None:
        raise ConfigError(f"input_interface({kind!r}) needs path_data, the annotation file")
    formats = (image_format.lower().lstrip("."),) if image_format else ACCEPTABLE_IMAGE_FORMATS
    if kind == "csv":
        return _csv(Path(str(path_data)), images, formats, training, ohe, **kwargs)
    if kind == "json":
        return _json(Path(str(path_data)), images, formats, training, ohe)
    return _directory(images, formats, training)


def _suffix(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _image_format(images: Path, formats: Sequence[str]) -> str:
    """The suffix of the first image in the folder (AUCMEDI's rule), as written there."""
    for name in sorted(os.listdir(images)):
        if _suffix(name) in formats:
            return name.rsplit(".", 1)[-1]
    raise DatasetError(f"{images}: holds no image with a suffix in {', '.join(formats)}")


def _checked_samples(samples: list[str], images: Path, image_format: str | None, where: str) -> str | None:
    """The format to append to the sample names (None when the names carry it), every image checked to exist."""
    if not samples:
        raise DatasetError(f"{where}: lists no sample; expected at least one")
    if image_format is not None and samples[0].lower().endswith("." + image_format.lower()):
        image_format = None
    for index, sample in enumerate(samples):
        file = images / (f"{sample}.{image_format}" if image_format else sample)
        if not file.exists():
            raise DatasetError(f"{where}: sample {index + 1} {sample!r} has no image {file}")
    return image_format


def _class_order(values: Sequence[str]) -> list[str]:
    """Distinct class names sorted as AUCMEDI's one-hot encoding orders them: numbers by value, text by text."""
    distinct = set(values)
    if all(value.lstrip("-").isdigit() for value in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)


def _one_hot(classes: Sequence[Any], names: list[str], where: str) -> np.ndarray:
    index = {name: position for position, name in enumerate(names)}
    unknown = [value for value in classes if str(value) not in index]
    if unknown:
        raise DatasetError(f"{where}: class {str(unknown[0])!r} is not in the legend {names}")
    encoded = np.zeros((len(classes), len(names)), dtype=np.int64)
    encoded[np.arange(len(classes)), [index[str(value)] for value in classes]] = 1
    return encoded


def _binary_matrix(rows: list[list[Any]], where: str, names: Sequence[str]) -> np.ndarray:
    try:
        matrix = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: one-hot rows of unequal length or non-numbers; expected 0/1 per class") from None
    if matrix.ndim != 2 or not np.isin(matrix, (0.0, 1.0)).all():
        bad = np.argwhere(~np.isin(matrix, (0.0, 1.0)))[0] if matrix.ndim == 2 else (0, 0)
        column = names[int(bad[1])] if len(names) > int(bad[1]) else int(bad[1])
        raise DatasetError(f"{where}: row {int(bad[0]) + 1}, class {column!r} is not 0 or 1; expected one-hot rows")
    return matrix.astype(np.int64)


def _csv(
    path: Path,
    images: Path,
    formats: Sequence[str],
    training: bool,
    ohe: bool,
    ohe_range: Sequence[str] | None = None,
    col_sample: str = "SAMPLE",
    col_class: str = "CLASS",
) -> Parsed:
    frame = read_csv(path)
    if col_sample not in frame.columns:
        raise DatasetError(f"{path}: no sample column {col_sample!r}; its columns are {list(frame.columns)[:20]}")
    samples = [str(value) for value in frame[col_sample]]
    image_format = _checked_samples(samples, images, _image_format(images, formats), str(path))
    if not training:
        return samples, None, None, None, image_format
    if not ohe:
        if col_class not in frame.columns:
            raise DatasetError(f"{path}: no class column {col_class!r}; its columns are {list(frame.columns)[:20]}")
        values = [str(value) for value in frame[col_class]]
        names = _class_order(values)
        return samples, _one_hot(values, names, str(path)), len(names), names, image_format
    names = list(ohe_range) if ohe_range is not None else [name for name in frame.columns if name != col_sample]
    missing = [name for name in names if name not in frame.columns]
    if missing or not names:
        raise DatasetError(f"{path}: one-hot columns {missing or names} are not in the file; expected class columns")
    matrix = _binary_matrix(frame[names].to_numpy().tolist(), str(path), names)
    return samples, matrix, len(names), names, image_format


def _json(path: Path, images: Path, formats: Sequence[str], training: bool, ohe: bool) -> Parsed:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path}: cannot be read as JSON ({type(error).__name__}: {str(error)[:200]})") from None
    if not isinstance(content, dict):
        raise DatasetError(f"{path}: holds a JSON {type(content).__name__}; expected an object of sample: class")
    legend = content.pop("legend", None)
    if legend is not None and (not isinstance(legend, list) or not all(isinstance(n, str) for n in legend)):
        raise DatasetError(f"{path}: 'legend' is not a list of class names")
    samples = [str(key) for key in content]
    image_format = _checked_samples(samples, images, _image_format(images, formats), str(path))
    if not training:
        return samples, None, None, None, image_format
    values = list(content.values())
    if not ohe:
        names = list(legend) if legend is not None else _class_order([str(value) for value in values])
        return samples, _one_hot(values, names, str(path)), len(names), names, image_format
    matrix = _binary_matrix(values, str(path), legend or ())
    if legend is not None and len(legend) != matrix.shape[1]:
        raise DatasetError(f"{path}: the legend names {len(legend)} classes but the rows hold {matrix.shape[1]}")
    return samples, matrix, matrix.shape[1], list(legend) if legend is not None else None, image_format


def _directory(images: Path, formats: Sequence[str], training: bool) -> Parsed:
    if not training:
        image_format = _image_format(images, formats)
        names = sorted(name for name in os.listdir(images) if _suffix(name) == image_format.lower())
        return [name[: -len(image_format) - 1] for name in names], None, None, None, image_format
    classes = sorted(entry.name for entry in images.iterdir() if entry.is_dir())
    if not classes:
        raise DatasetError(f"{images}: has no class subfolders; expected one folder of images per class")
    samples, labels = [], []
    for position, name in enumerate(classes):
        files = sorted(entry.name for entry in (images / name).iterdir() if entry.is_file())
        samples += [f"{name}/{file}" for file in files]
        labels += [position] * len(files)
    if not samples:
        raise DatasetError(f"{images}: the class subfolders {classes} hold no files")
    encoded = np.zeros((len(samples), len(classes)), dtype=np.int64)
    encoded[np.arange(len(samples)), labels] = 1
    return samples, encoded, len(classes), classes, None
