"""The Benchmark: a dataset plus every hyperparameter, encoded in a readable, reversible name.

``Benchmark.from_name(b.name) == b`` for every valid benchmark, and every name that parses can run:
each field is checked against the vocabulary's tokens and ranges when a Benchmark is made, so
``E0``, ``B0``, ``D0``, ``window128w0``, ``sharp01`` or ``0LR4`` are refused at parse time. The name
scheme itself lives in `medbench.benchmark.name`; the original platform's spellings are read with
``from_name(name, legacy=True)`` (`medbench.benchmark.legacy`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from medbench.benchmark.legacy import modernize
from medbench.benchmark.name import decode, encode
from medbench.benchmark.vocabulary import (
    AUGMENTATIONS,
    BATCH_SIZE,
    DEFAULT_DIMENSION,
    DEFAULT_OPTIMIZER,
    DEFAULT_SEED,
    DEFAULT_UNCERTAINTY,
    DIMENSIONS,
    ENUMERATIONS,
    EPOCHS,
    IMAGE_SIZE,
    LEARNING_RATE,
    LOSSES,
    LR_FACTOR,
    N_CLASSES,
    OPTIMIZERS,
    RESIZE_FILTERS,
    SEED,
    SPLIT_PERCENT,
    UNCERTAINTY_POLICIES,
    UNCERTAINTY_PRESETS,
    VOLUME_SIZE,
    parse_transformation,
)
from medbench.data.label_policy import UncertaintyPreset
from medbench.errors import BenchmarkNameError, shown

LEGACY_SPLIT = (60, 20, 20)
"""Patient percentages (train, val, test) of a benchmark without a split token, as in the original."""


@dataclass(frozen=True)
class Benchmark:
    """A dataset and every hyperparameter of a training run; `name` encodes all of it.

    `dimension` 3 makes it a benchmark of volumes (the ``3D`` token): `image_size` is then the height and
    width of the stored volumes, and `depth` their depth (None: `image_size`, a cube; written ``Z<depth>``).
    """

    dataset: str
    loss: str = "BCE"
    epochs: int = 3
    batch_size: int = 32
    n_classes: int = 12
    image_size: int = 256
    learning_rate: float = 1e-4
    lr_factor: float = 0.5
    l1_normed: bool = False
    crop: bool = False
    augmentations: tuple[str, ...] = ()
    enumeration: str = "none"
    transformations: tuple[str, ...] = ()
    uncertainty: str = DEFAULT_UNCERTAINTY
    split: tuple[int, ...] = ()
    optimizer: str = DEFAULT_OPTIMIZER
    upsampled: bool = False
    seed: int = DEFAULT_SEED
    dimension: int = DEFAULT_DIMENSION
    depth: int | None = None

    def __post_init__(self) -> None:
        if self.depth is not None and self.depth == self.image_size:
            object.__setattr__(self, "depth", None)  # a cube has one spelling: no Z token
        object.__setattr__(self, "augmentations", tuple(self.augmentations))
        object.__setattr__(self, "transformations", tuple(self.transformations))
        object.__setattr__(self, "split", tuple(int(part) for part in self.split))
        _validate(self)
        object.__setattr__(self, "learning_rate", float(self.learning_rate))
        object.__setattr__(self, "lr_factor", float(self.lr_factor))

    @property
    def name(self) -> str:
        """The benchmark's name in the documented scheme; parsed back by `Benchmark.from_name`."""
        return encode(self._values())

    @classmethod
    def from_name(cls, text: str, *, legacy: bool = False) -> Benchmark:
        """Parse a benchmark name; an unknown, malformed or out-of-range token is an error naming it.

        With `legacy`, the original platform's spellings are read too (see `medbench.benchmark.legacy`),
        what older names omit taken from the original's defaults.
        """
        source = modernize(text) if legacy else text
        try:
            return cls(**decode(source))
        except BenchmarkNameError as error:
            read_as = f" (read as {shown(source)})" if source != text else ""
            raise BenchmarkNameError(f"benchmark name {shown(text)}{read_as}: {error}") from None

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """(height, width) of the stored images, or (depth, height, width) of the stored volumes."""
        if self.dimension == 3:
            return self.depth or self.image_size, self.image_size, self.image_size
        return self.image_size, self.image_size

    @property
    def uncertainty_preset(self) -> UncertaintyPreset | None:
        return UNCERTAINTY_PRESETS.get(self.uncertainty)

    @property
    def split_fractions(self) -> tuple[float, ...]:
        """Patient fractions of the split: (train, val) with the official test set, or (train, val, test)."""
        return tuple(part / 100 for part in (self.split or LEGACY_SPLIT))

    def with_(self, **changes: Any) -> Benchmark:
        """A copy with some fields changed (validated like a new Benchmark)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """All fields plus the name, JSON-friendly."""
        data = self._values()
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return {"name": self.name, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Benchmark:
        known = {f.name for f in fields(cls)}
        return cls(
            **{key: (tuple(value) if isinstance(value, list) else value) for key, value in data.items() if key in known}
        )

    def _values(self) -> dict[str, Any]:
        return asdict(self)


def _validate(b: Benchmark) -> None:
    if not isinstance(b.dataset, str) or not re.fullmatch(r"[a-z][a-z0-9-]*", b.dataset):
        raise BenchmarkNameError(
            f"dataset {b.dataset!r}: expected lowercase letters, digits and hyphens "
            "(e.g. 'chexpert', 'chestxray14-256')"
        )
    if b.loss not in LOSSES:
        raise BenchmarkNameError(f"loss {b.loss!r}: expected one of {', '.join(LOSSES)}")
    EPOCHS.check("epochs", b.epochs, f"E{b.epochs}")
    BATCH_SIZE.check("batch_size", b.batch_size, f"B{b.batch_size}")
    N_CLASSES.check("n_classes", b.n_classes, f"N{b.n_classes}")
    if b.dimension not in DIMENSIONS or isinstance(b.dimension, bool):
        raise BenchmarkNameError(f"dimension {b.dimension!r}: expected 2 (images, no token) or 3 (volumes, 3D)")
    if b.dimension == 3:
        _validate_volume(b)
    else:
        IMAGE_SIZE.check("image_size", b.image_size, f"D{b.image_size}")
        if b.depth is not None:
            raise BenchmarkNameError(f"depth Z{b.depth}: only a 3D benchmark has a depth; expected no Z token")
    SEED.check("seed", b.seed, f"S{b.seed}")
    LEARNING_RATE.check("learning_rate", b.learning_rate)
    LR_FACTOR.check("lr_factor", b.lr_factor)
    for aug in b.augmentations:
        if aug not in AUGMENTATIONS:
            raise BenchmarkNameError(f"augmentation {aug!r}: expected one of {', '.join(AUGMENTATIONS)}")
    if len(set(b.augmentations)) != len(b.augmentations):
        raise BenchmarkNameError(f"augmentations {b.augmentations!r}: each may appear once")
    if b.enumeration not in ENUMERATIONS:
        raise BenchmarkNameError(f"enumeration {b.enumeration!r}: expected one of {', '.join(ENUMERATIONS)}")
    if b.enumeration != "none" and b.dimension == 3:
        raise BenchmarkNameError(
            f"enumeration {b.enumeration!r} mirrors and turns 2D images; expected none in a 3D benchmark"
        )
    for transform in b.transformations:
        parse_transformation(transform)
    filters = [token for token in b.transformations if token in RESIZE_FILTERS]
    if len(filters) > 1:
        raise BenchmarkNameError(f"transformations name {len(filters)} resize filters {filters}; expected at most one")
    if b.uncertainty not in UNCERTAINTY_POLICIES and b.uncertainty not in UNCERTAINTY_PRESETS:
        raise BenchmarkNameError(
            f"uncertainty {b.uncertainty!r}: expected one of {', '.join(UNCERTAINTY_POLICIES)} "
            f"or a preset {', '.join(UNCERTAINTY_PRESETS)}"
        )
    if b.split and (
        len(b.split) not in (2, 3)
        or any(not SPLIT_PERCENT.low <= p <= SPLIT_PERCENT.high for p in b.split)
        or sum(b.split) != 100
    ):
        raise BenchmarkNameError(
            f"split {b.split!r}: expected 2 or 3 percentages in {SPLIT_PERCENT} summing to 100, "
            "e.g. (95, 5) written DS9505"
        )
    if b.optimizer not in OPTIMIZERS:
        raise BenchmarkNameError(f"optimizer {b.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")


def _validate_volume(b: Benchmark) -> None:
    """What a 3D benchmark may not carry: the 2D-only crop and transformations; and its sizes' range."""
    VOLUME_SIZE.check("image_size", b.image_size, f"D{b.image_size} of a 3D benchmark")
    if b.depth is not None:
        VOLUME_SIZE.check("depth", b.depth, f"Z{b.depth}")
    if b.crop:
        raise BenchmarkNameError(
            "cropping C1 (the lung-field crop of chest X-rays) is 2D only; expected C0 in a 3D benchmark"
        )
    if b.transformations:
        raise BenchmarkNameError(
            f"transformations {'-'.join(b.transformations)!r} are 2D image filters; expected none in a 3D benchmark "
            "(a volume's intensity window is its dataset's volume_window)"
        )
