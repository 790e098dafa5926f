"""A table row's data: its label CSV(s) split by TIML's rule into train, val and test files, and the
`DatasetSpec` over them that makes the row an ordinary medbench experiment.

``frac=<f>`` and ``n=<k>`` draw val and test (f × N or k images each) from the shuffled rows of the one
CSV, seeded by the row's seed; ``pre`` reads ``<dataset>-train.csv``, ``<dataset>-dev.csv`` and
``<dataset>-test.csv`` beside the dataset; ``list`` takes the three files given. Images are split as TIML
splits them, one by one (an ISIC table has no patient column). The three tables are written under
``splits/`` in the output folder; the spec's name carries a digest of their content, so rows that split the
same data the same way share one dataset and one preprocessing cache.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.atomic import write_bytes_atomic
from medbench.data.datasets import DatasetSpec
from medbench.errors import ConfigError, DatasetError
from medbench.table_training.table import TableRow

__all__ = ["IMAGE_COLUMN", "row_dataset"]

IMAGE_COLUMN = "image_name"
PARTS = ("train", "dev", "test")
"""TIML's names of the three parts (dev = validation)."""
_SLUG = re.compile(r"[^a-z0-9]+")


def _read(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read the label CSV ({error})", file=path) from None
    if frame.columns.empty or frame.columns[0] != IMAGE_COLUMN:
        first = frame.columns[0] if not frame.columns.empty else None
        raise DatasetError(
            f"first column is {first!r}; expected {IMAGE_COLUMN!r} followed by the ground-truth columns", file=path
        )
    return frame


def _sources(row: TableRow) -> dict[str, pd.DataFrame]:
    """The three parts' tables, as read (pre, list) or drawn from the one table (frac, n)."""
    if row.split.kind == "pre":
        stem = str(row.datasets[0]).removesuffix(".csv")
        paths = [Path(f"{stem}-{part}.csv") for part in PARTS]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise ConfigError(f"model {row.index}: split pre needs {', '.join(map(str, paths))}; missing {missing}")
        return {part: _read(path) for part, path in zip(PARTS, paths)}
    if row.split.kind == "list":
        return {part: _read(path) for part, path in zip(PARTS, row.datasets)}
    table = _read(row.datasets[0])
    n = len(table)
    size = round(row.split.value * n) if row.split.kind == "frac" else int(row.split.value)
    if size < 1 or 2 * size >= n:
        raise ConfigError(
            f"model {row.index}: split {row.cells.get('split')!r} of {n} images gives {size} each for val and "
            f"test; expected at least 1 each and a training set left ({row.datasets[0]})"
        )
    order = np.random.default_rng(row.seed).permutation(n)
    parts = {"dev": order[:size], "test": order[size : 2 * size], "train": order[2 * size :]}
    return {part: table.iloc[np.sort(parts[part])].reset_index(drop=True) for part in PARTS}


def _class_columns(row: TableRow, tables: dict[str, pd.DataFrame]) -> tuple[str, ...]:
    columns = row.class_columns or tuple(name for name in tables["train"].columns if name != IMAGE_COLUMN)
    if not columns:
        raise ConfigError(f"model {row.index}: the label CSV has no ground-truth column after {IMAGE_COLUMN!r}")
    for part, table in tables.items():
        missing = [name for name in columns if name not in table.columns]
        if missing:
            raise ConfigError(
                f"model {row.index}: classcolumns {missing} are not columns of the {part} table; "
                f"it has {list(table.columns)}"
            )
    return columns


def row_dataset(row: TableRow, image_dir: Path, out_dir: Path) -> DatasetSpec:
    """Write the row's train/dev/test label files under ``out_dir/splits`` and return the dataset over them."""
    tables = _sources(row)
    classes = _class_columns(row, tables)
    texts = {part: tables[part].loc[:, [IMAGE_COLUMN, *classes]].to_csv(index=False) for part in PARTS}
    task = "multilabel" if row.method.multilabel else "multiclass"
    digest = hashlib.sha256("\0".join([task, *classes, *texts.values()]).encode()).hexdigest()[:10]
    slug = _SLUG.sub("-", row.datasets[0].stem.lower()).strip("-")[:40] or "table"
    name = f"timl-{slug}-{digest}"
    folder = out_dir / "splits"
    files = {part: folder / f"{name}-{part}.csv" for part in PARTS}
    folder.mkdir(parents=True, exist_ok=True)
    for part, path in files.items():
        write_bytes_atomic(path, texts[part].encode("utf-8"))
    return DatasetSpec(
        name=name,
        format="onehot",
        root=str(image_dir.resolve()),
        image_dir=".",
        train=str(files["train"].resolve()),
        val=str(files["dev"].resolve()),
        test=str(files["test"].resolve()),
        path_column=IMAGE_COLUMN,
        classes=classes,
        channels=3,
        task=task,
        description=f"TIML table dataset {row.datasets[0].name}, split {row.cells.get('split', '')}",
    )
