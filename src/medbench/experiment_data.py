"""ExperimentData: the splits of one experiment spec — its dataset read, split by patient, labels encoded.

Deterministic: the same spec and data folder give the same splits, which is what lets re-evaluation
rebuild a run's validation and test sets from its config.json. The uncertainty policy shapes the
training targets only; validation and test keep certain labels (uncertain → masked), so runs with
different policies are compared on the same truth.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.benchmark.options import fold_of
from medbench.benchmark.spec import ExperimentSpec
from medbench.capacity import require_memory
from medbench.data.datasets import (
    DatasetSpec,
    all_image_paths,
    check_disjoint,
    get_dataset,
    load_dataset,
    load_validation,
)
from medbench.data.images import unreadable_images_error
from medbench.data.label_policy import default_upsample_factors, encode_labels, upsample_indices
from medbench.data.metadata import MetadataEncoding
from medbench.data.splits import fold_rows, leave_fold_out, split_by_patient
from medbench.data.tasks import one_class_per_image
from medbench.errors import ConfigError
from medbench.preprocessing.cache import ImageCache
from medbench.preprocessing.dataset_cache import build_benchmark_cache
from medbench.settings import Settings

logger = logging.getLogger(__name__)

EVALUATION_UNCERTAINTY = "ignore"
"""How validation and test treat uncertain labels, whatever the training policy: masked."""
_PREFETCHED_BATCHES = 4
"""uint8 batches tf.data holds ahead of the model at most, in practice (AUTOTUNE on a few cores)."""


@dataclass(frozen=True)
class Split:
    """One part of the data: sample ids, image paths, targets (NaN = masked) and the head's metadata
    features (None without metadata), row-aligned."""

    sample_ids: tuple[str, ...]
    paths: tuple[str, ...]
    targets: np.ndarray
    metadata: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.sample_ids)

    @classmethod
    def from_table(cls, table: pd.DataFrame, targets: np.ndarray, encoding: MetadataEncoding | None = None) -> Split:
        metadata = encoding.transform(table) if encoding is not None else None
        return cls(tuple(table["sample_id"].astype(str)), tuple(table["path"].astype(str)), targets, metadata)

    def subset(self, indices: np.ndarray) -> Split:
        return Split(
            tuple(self.sample_ids[i] for i in indices),
            tuple(self.paths[i] for i in indices),
            self.targets[indices],
            self.metadata[indices] if self.metadata is not None else None,
        )

    def without(self, paths: set[str]) -> Split:
        """The samples whose image is not in `paths`."""
        return self.subset(np.asarray([i for i, path in enumerate(self.paths) if path not in paths], dtype=np.int64))


@dataclass(frozen=True)
class ExperimentData:
    """Splits, classes and the dataset's full image list (the preprocessing cache covers all of it), and the
    task the classes make (`medbench.data.tasks`)."""

    classes: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    upsample_factors: dict[str, int] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    channels: int = 1
    skipped: dict[str, str] = field(default_factory=dict)
    task: str = "multilabel"
    metadata: MetadataEncoding | None = None

    @property
    def n_metadata(self) -> int:
        """Metadata features per image (0 without metadata): the width of the model's "metadata" input."""
        return len(self.metadata.feature_names) if self.metadata is not None else 0

    def without_unreadable(self, failed: dict[str, str], spec: ExperimentSpec) -> ExperimentData:
        """The data without the images the cache could not read: an ImageError listing them, unless the
        spec's options say `skip_unreadable`."""
        used = set(self.train.paths) | set(self.val.paths) | set(self.test.paths)
        failed = {path: reason for path, reason in failed.items() if path in used}
        if not failed:
            return self
        if not spec.options.skip_unreadable:
            raise unreadable_images_error(sorted(failed.items()))
        logger.warning(
            "%d unreadable images left out (skip_unreadable): %s", len(failed), ", ".join(sorted(failed)[:5])
        )
        drop = set(failed)
        train, val, test = self.train.without(drop), self.val.without(drop), self.test.without(drop)
        _check_not_empty(spec.benchmark.name, spec.benchmark.dataset, train, val, test)
        return replace(self, train=train, val=val, test=test, skipped=failed)


def prepare_data(spec: ExperimentSpec, data_dir: Path) -> ExperimentData:
    """Load the spec's dataset, split it by patient and encode its labels — deterministically."""
    benchmark, options = spec.benchmark, spec.options
    dataset = get_dataset(benchmark.dataset)
    classes = tuple(dataset.classes_for(benchmark.n_classes))
    task = dataset.task_for(benchmark.n_classes)
    train_table, test_table = load_dataset(dataset, data_dir)
    val_table = _official_validation(dataset, data_dir, train_table, test_table, benchmark.name, benchmark.split)
    sources = tuple(all_image_paths(train_table, test_table, val_table))
    tables = {"train": train_table, "test": test_table, "val": val_table}
    for part, table in tables.items():
        if table is not None and task == "multiclass":
            table = one_class_per_image(table, dataset.classes, classes, dataset.name)
        if table is not None and options.frontal_only:
            table = table[table["frontal"]]
        tables[part] = table
    train_table, test_table, val_table = tables["train"], tables["test"], tables["val"]
    fractions = benchmark.split_fractions
    if val_table is not None:
        train_part, val_part, test_part = train_table, val_table, test_table
    elif len(fractions) == 2:
        if test_table is None:
            raise ConfigError(
                f"split DS{''.join(f'{p:02d}' for p in benchmark.split)} of {benchmark.name} takes the test set from "
                f"the official test file, but dataset {dataset.name!r} has none; use a three-part split such as "
                "DS701515"
            )
        train_part, val_part = split_by_patient(train_table, fractions, seed=benchmark.seed)
        test_part = test_table
    else:
        train_part, val_part, test_part = split_by_patient(train_table, fractions, seed=benchmark.seed)
    if options.bagging_fold is not None:
        train_part = leave_fold_out(train_part, *fold_of(options.bagging_fold), seed=benchmark.seed)
    if options.cv_fold is not None:
        development = pd.concat([train_part, val_part], ignore_index=True)
        fold, folds = fold_of(options.cv_fold, "cv_fold")
        train_part = leave_fold_out(development, fold, folds, seed=benchmark.seed)
        val_part = fold_rows(development, fold, folds, seed=benchmark.seed)

    encoding = _metadata_encoding(train_part, options.metadata, dataset.classes, dataset.name)

    def encode(table: pd.DataFrame, uncertainty: str) -> Split:
        raw = table.loc[:, list(classes)].to_numpy(dtype=np.float64)
        targets = encode_labels(raw, classes, uncertainty, unmentioned=options.unmentioned)
        return Split.from_table(table, targets, encoding)

    train = encode(train_part, benchmark.uncertainty)
    val, test = encode(val_part, EVALUATION_UNCERTAINTY), encode(test_part, EVALUATION_UNCERTAINTY)
    if options.max_train_samples is not None and len(train) > options.max_train_samples:
        train = train.subset(np.arange(options.max_train_samples))
    factors: dict[str, int] = {}
    if benchmark.upsampled:
        factors = dict(options.upsample_factors or default_upsample_factors(train.targets, classes))
        train = train.subset(upsample_indices(train.targets, classes, factors))
    _check_not_empty(benchmark.name, dataset.name, train, val, test)
    return ExperimentData(classes, train, val, test, factors, sources, dataset.channels, task=task, metadata=encoding)


def _official_validation(
    dataset: DatasetSpec,
    data_dir: Path,
    train: pd.DataFrame,
    test: pd.DataFrame | None,
    name: str,
    split: tuple[int, ...],
) -> pd.DataFrame | None:
    """The dataset's own validation table when its spec names one (its split is then its files), else None."""
    if dataset.val is None:
        return None
    if split:
        raise ConfigError(
            f"{name}: split DS{''.join(f'{p:02d}' for p in split)} asks for a patient split, but dataset "
            f"{dataset.name!r} is split by its files (train {dataset.train!r}, val {dataset.val!r}, test "
            f"{dataset.test!r}); expected a benchmark name without a DS token"
        )
    val = load_validation(dataset, data_dir)
    root = dataset.root_path(data_dir)
    check_disjoint(train, val, dataset, root, ("training", "validation"))
    if test is not None:
        check_disjoint(val, test, dataset, root, ("validation", "test"))
    return val


def _metadata_encoding(
    train: pd.DataFrame, columns: tuple[str, ...] | None, labels: tuple[str, ...], dataset: str
) -> MetadataEncoding | None:
    """The metadata encoding fitted on the training split, refusing columns that are labels or ids."""
    if not columns:
        return None
    leaking = [name for name in columns if name in labels or name in ("sample_id", "path", "patient_id")]
    if leaking:
        raise ConfigError(
            f"metadata columns {leaking} of dataset {dataset!r} are labels or image ids: feeding them to the head "
            "would leak the targets; expected other label-table columns such as age, sex or frontal"
        )
    return MetadataEncoding.fit(train, columns)


def _check_not_empty(name: str, dataset: str, train: Split, val: Split, test: Split) -> None:
    for part, split in (("train", train), ("val", val), ("test", test)):
        if len(split) == 0:
            raise ConfigError(f"{name}: the {part} split of dataset {dataset!r} is empty")


def batch_memory(spec: ExperimentSpec) -> int:
    """A lower bound on the host memory one batch takes: the uint8 batches the pipeline prefetches and the
    float32 batch the model's input makes of one (activations and weights come on top)."""
    benchmark = spec.benchmark
    pixels = benchmark.batch_size * math.prod(benchmark.spatial_shape)
    return pixels * 3 * (_PREFETCHED_BATCHES + 4)


def prepare(spec: ExperimentSpec, settings: Settings) -> tuple[ExperimentData, ImageCache]:
    """The splits of `spec` with its dataset's preprocessing cache built (or reused) and unreadable images handled."""
    benchmark = spec.benchmark
    samples = f"images of {benchmark.image_size} px"
    if benchmark.dimension == 3:
        samples = f"volumes of {'×'.join(map(str, benchmark.spatial_shape))} voxels"
    require_memory(
        batch_memory(spec),
        f"{spec.name}: a batch of {benchmark.batch_size} {samples}",
        advice="a smaller batch size (B) or image size (D)",
    )
    data = prepare_data(spec, settings.data_dir)
    cache = build_benchmark_cache(spec.benchmark, settings, sources=data.sources)
    return data.without_unreadable(cache.failed, spec), cache
