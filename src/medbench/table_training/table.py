"""TIML's training table: one row per model, its cells read into `TableRow`s, every malformed cell named.

Columns (TIML's names; the first six are required, the others take the default shown)::

    method        <network>[-fc<k>k][-ml]                  (`medbench.table_training.methods`)
    dataset       a CSV: image_name, then the ground-truth columns (ISIC 2019 layout); for split=list,
                  3 such files joined by ';' (train;val;test). Relative paths are read from the working
                  folder, as TIML reads them, or else from the table's folder
    split         pre | frac=<f> (0 < f < 0.5) | n=<k> | list
    epochs        whole number
    batchsize     whole number
    imgsize       side of the square images, in pixels
    imgaug        none | hflip | hflip_rot4 | hflip_rot24  (none)
    resizefilter  nearest | bilinear | bicubic | lanczos   (empty: medbench's area/bilinear resize)
    colorspace    RGB | HSV | LAB | YCbCr                  (RGB)
    classcolumns  default | <col>;<col>;...                (default: every column but image_name)
    classweights  default | compute                        (default)

medbench's own columns may follow: ``seed`` (0), ``learningrate`` (1e-4) and ``weights`` (``imagenet``
for networks that have Keras ImageNet weights, else ``none``; or a weights file). The whole table is
read and checked before any row trains, so a typo in the last row does not surface hours later.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from medbench.benchmark.vocabulary import (
    BATCH_SIZE,
    ENUMERATIONS,
    EPOCHS,
    IMAGE_SIZE,
    LEARNING_RATE,
    RESIZE_FILTERS,
    SEED,
)
from medbench.errors import ConfigError, MedbenchError
from medbench.table_training.methods import Method, parse_method

__all__ = ["INPUT_COLUMNS", "OUTPUT_COLUMNS", "SplitRule", "TableRow", "read_training_table"]

REQUIRED_COLUMNS = ("method", "dataset", "split", "epochs", "batchsize", "imgsize")
OPTIONAL_COLUMNS = ("imgaug", "resizefilter", "colorspace", "classcolumns", "classweights")
EXTRA_COLUMNS = ("seed", "learningrate", "weights")
INPUT_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
OUTPUT_COLUMNS = (
    "trainsize", "valsize", "testsize", "traintime", "valacc", "valspec", "valsens", "valauc",
    "testacc", "testspec", "testsens", "testauc", "exceptions", "notes", "run_id", "experiment",
)  # fmt: skip
"""What `automation_result.csv` adds to the input columns (TIML's, plus sizes, the val AUROC and the run)."""
COLOR_SPACES = {"rgb": None, "hsv": "hsv", "lab": "lab", "ycbcr": "ycbcr"}


@dataclass(frozen=True)
class SplitRule:
    """How a row's dataset is split: ``pre``, ``frac`` (a fraction each for val and test), ``n`` (a count
    each) or ``list`` (the files given)."""

    kind: str
    value: float | int | None = None


@dataclass(frozen=True)
class TableRow:
    """One model of the table: its cells as given (copied to the output) and what they mean."""

    index: int
    cells: dict[str, str]
    method: Method
    datasets: tuple[Path, ...]
    split: SplitRule
    epochs: int
    batch_size: int
    image_size: int
    enumeration: str
    resize_filter: str | None
    color_space: str | None
    class_columns: tuple[str, ...] | None
    compute_class_weights: bool
    seed: int
    learning_rate: float
    weights: str | None


def _whole(text: str, allowed: object, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number in {allowed}") from None
    allowed.check(what, value)  # type: ignore[attr-defined]
    return value


def _split(text: str) -> SplitRule:
    word, _, number = text.partition("=")
    word = word.strip().lower()
    if word in ("pre", "list") and not number:
        return SplitRule(word)
    if word == "frac":
        try:
            fraction = float(number)
        except ValueError:
            fraction = math.nan
        if not 0 < fraction < 0.5:
            raise ValueError("frac=<f>: expected a fraction 0 < f < 0.5 for each of val and test, e.g. frac=0.1")
        return SplitRule("frac", fraction)
    if word == "n":
        if not number.strip().isdigit() or int(number) < 1:
            raise ValueError("n=<k>: expected a whole number of images for each of val and test, e.g. n=100")
        return SplitRule("n", int(number))
    raise ValueError("expected pre, frac=<f>, n=<k> or list")


def _choice(text: str, allowed: tuple[str, ...] | dict[str, str | None], default: str | None) -> str | None:
    word = text.strip().lower()
    if not word:
        return default
    if word not in allowed:
        raise ValueError(f"expected one of {', '.join(allowed)}")
    return allowed[word] if isinstance(allowed, dict) else word


def _datasets(text: str, split: SplitRule, base: Path) -> tuple[Path, ...]:
    parts = [part.strip() for part in text.split(";") if part.strip()]
    if split.kind == "list":
        if len(parts) != 3:
            raise ValueError(
                f"split=list names {len(parts)} file(s); expected 3 label files train;val;test (medbench evaluates "
                "every run on a test set, so TIML's two-file train;val form is refused)"
            )
    elif len(parts) != 1:
        raise ValueError(f"expected one label CSV for split {split.kind} (several files only with split=list)")
    return tuple(_located(part, base, split.kind) for part in parts)


def _located(part: str, base: Path, split: str) -> Path:
    """A table's file: absolute, else relative to the working folder (as TIML reads it) or to the table's folder."""
    path = Path(part)
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = list(dict.fromkeys([Path.cwd() / path, base / path]))
    probe = (lambda p: Path(f"{str(p).removesuffix('.csv')}-train.csv")) if split == "pre" else (lambda p: p)
    for candidate in candidates:
        if probe(candidate).is_file():
            return candidate
    raise ValueError(f"no such file {' or '.join(str(probe(c)) for c in candidates)}")


def _row(index: int, cells: dict[str, str], base: Path) -> TableRow:
    """One row's meaning; a ValueError or MedbenchError is re-raised by the caller naming the column."""
    column = ""

    def cell(name: str, default: str = "") -> str:
        nonlocal column
        column = name
        return (cells.get(name) or default).strip()

    try:
        method = parse_method(cell("method"))
        split = _split(cell("split"))
        datasets = _datasets(cell("dataset"), split, base)
        epochs = _whole(cell("epochs"), EPOCHS, "epochs")
        batch_size = _whole(cell("batchsize"), BATCH_SIZE, "batchsize")
        image_size = _whole(cell("imgsize"), IMAGE_SIZE, "imgsize")
        enumeration = _choice(cell("imgaug", "none"), tuple(ENUMERATIONS), "none")
        resize = _choice(cell("resizefilter"), RESIZE_FILTERS, None)
        space = _choice(cell("colorspace", "rgb"), COLOR_SPACES, None)
        classes_text = cell("classcolumns", "default")
        classes = None if classes_text.lower() == "default" else tuple(c.strip() for c in classes_text.split(";"))
        if classes is not None and (not all(classes) or len(set(classes)) != len(classes)):
            raise ValueError("expected default or distinct column names joined by ';', e.g. MEL;NV;BCC")
        weights_mode = _choice(cell("classweights", "default"), ("default", "compute"), "default")
        seed = _whole(cell("seed", "0"), SEED, "seed")
        rate_text = cell("learningrate", "1e-4")
        try:
            learning_rate = LEARNING_RATE.check("learningrate", float(rate_text))
        except ValueError:
            raise ValueError(f"expected a learning rate in {LEARNING_RATE}, e.g. 1e-4") from None
        weights_text = cell("weights", "imagenet" if method.imagenet else "none")
        weights = None if weights_text.lower() in ("", "none") else weights_text
    except (ValueError, MedbenchError) as error:
        raise ConfigError(
            f"row {index + 2} (model {index}), column {column!r}: {cells.get(column)!r}: {error}"
        ) from None
    return TableRow(
        index, dict(cells), method, datasets, split, epochs, batch_size, image_size, str(enumeration), resize, space,
        classes, weights_mode == "compute", seed, learning_rate, weights,
    )  # fmt: skip


def read_training_table(path: str | Path) -> list[TableRow]:
    """Every row of a TIML training table; one ConfigError listing every malformed cell (file, row, column)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            rows = [{key.strip(): (value or "") for key, value in row.items() if key is not None} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"{path}: cannot read the training table ({error})") from None
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}; expected at least {', '.join(REQUIRED_COLUMNS)}")
    known = set(INPUT_COLUMNS + EXTRA_COLUMNS + OUTPUT_COLUMNS)
    unknown = [name for name in header if name not in known]
    if unknown:
        raise ConfigError(
            f"{path}: unknown column(s) {unknown}; expected TIML's {', '.join(INPUT_COLUMNS)} "
            f"or medbench's {', '.join(EXTRA_COLUMNS)}"
        )
    if not rows:
        raise ConfigError(f"{path}: the training table has no rows; expected one row per model")
    parsed, problems = [], []
    for index, cells in enumerate(rows):
        try:
            parsed.append(_row(index, cells, path.parent))
        except ConfigError as error:
            problems.append(str(error))
    if problems:
        raise ConfigError(f"{path}: {len(problems)} malformed cell(s):\n  " + "\n  ".join(problems))
    return parsed
