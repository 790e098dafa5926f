"""Task types: what a label row means, which decides the head's activation, the losses that fit and the metrics.

- ``"multilabel"``: any number of findings per image (CheXpert, ChestX-ray14): one sigmoid per class,
  masked binary cross-entropies, per-class AUROC/precision/recall/F2.
- ``"binary"``: a multi-label dataset trained on one class: one sigmoid, the same losses and metrics.
- ``"multiclass"``: exactly one class per image (ISIC's one-hot files, a folder per class): softmax,
  categorical cross-entropy, top-1 and balanced accuracy, the confusion matrix, one-vs-rest AUROC.

A dataset declares ``"multilabel"`` or ``"multiclass"`` (`DatasetSpec.task`, defaulting by format:
one-hot files and class folders are one class per image); ``"binary"`` follows from a one-class label
set. Pure functions of their inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from medbench.errors import DatasetError

logger = logging.getLogger(__name__)

__all__ = ["DECLARED_TASKS", "TASKS", "one_class_per_image", "task_for"]

TASKS: tuple[str, ...] = ("binary", "multiclass", "multilabel")
DECLARED_TASKS: tuple[str, ...] = ("multilabel", "multiclass")
"""What a dataset may declare; "binary" is a multi-label dataset's one-class label set."""


def task_for(declared: str, n_classes: int, dataset: str) -> str:
    """The task of training `n_classes` classes of a dataset that declares `declared`."""
    if declared not in DECLARED_TASKS:
        raise DatasetError(f"dataset {dataset!r}: task {declared!r}; expected one of {', '.join(DECLARED_TASKS)}")
    if declared == "multiclass":
        if n_classes < 2:
            raise DatasetError(
                f"dataset {dataset!r} is multi-class (one class per image): expected a label set of at least 2 "
                f"classes, got {n_classes}"
            )
        return "multiclass"
    return "binary" if n_classes == 1 else "multilabel"


def one_class_per_image(
    table: pd.DataFrame, all_classes: Sequence[str], classes: Sequence[str], dataset: str
) -> pd.DataFrame:
    """The rows of a multi-class label table that belong to one of `classes`, each checked to hold one class.

    Every row must mark exactly one of the dataset's `all_classes` with 1 (0 elsewhere); an image with no
    class, several classes or an uncertain or blank cell is an error naming its sample id. Rows of a class
    outside the label set `classes` (a subset such as ``N2`` of ISIC's eight) are left out, and logged.
    """
    cells = table.loc[:, list(all_classes)].to_numpy(dtype=np.float64)
    valid = ((cells == 0.0) | (cells == 1.0)).all(axis=1) & (cells.sum(axis=1) == 1.0)
    if not valid.all():
        row = int(np.flatnonzero(~valid)[0])
        marked = [name for name, value in zip(all_classes, cells[row]) if value != 0.0]
        raise DatasetError(
            f"dataset {dataset!r} is multi-class (one class per image), but sample "
            f"{str(table['sample_id'].iloc[row])!r} marks {marked or 'no class'} ({len(marked)} of "
            f"{len(all_classes)}); expected 1 at exactly one class and 0 elsewhere, or declare task='multilabel' "
            "in its DatasetSpec when images may have several findings"
        )
    kept = cells[:, [list(all_classes).index(name) for name in classes]].sum(axis=1) == 1.0
    if not kept.all():
        logger.info(
            "dataset %s: %d of %d images belong to classes outside the label set %s and are left out",
            dataset,
            int((~kept).sum()),
            len(kept),
            list(classes),
        )
    return table[kept]
