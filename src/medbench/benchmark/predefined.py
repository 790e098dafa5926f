"""Predefined benchmarks and grids (products of variations) for batches."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from medbench.benchmark.benchmark import Benchmark
from medbench.errors import BenchmarkNameError


def grid(base: Benchmark, **vary: Iterable[Any]) -> list[Benchmark]:
    """Every combination of the varied fields over `base`, in row-major order of the keyword order.

    A grid with an empty list of values expands to nothing; an unknown field is an error.
    """
    known = {f.name for f in fields(Benchmark)}
    unknown = set(vary) - known
    if unknown:
        raise BenchmarkNameError(f"grid varies unknown fields {sorted(unknown)}; Benchmark fields are {sorted(known)}")
    keys = list(vary)
    values = [list(vary[key]) for key in keys]
    return [base.with_(**dict(zip(keys, combination))) for combination in itertools.product(*values)]


def _chexpert(dataset: str, n_classes: int, **changes: Any) -> Benchmark:
    defaults = dict(
        loss="BCE",
        epochs=5,
        batch_size=32,
        n_classes=n_classes,
        image_size=256,
        learning_rate=1e-4,
        lr_factor=0.5,
        split=(95, 5),
    )
    return Benchmark(dataset=dataset, **{**defaults, **changes})


CHEXPERT_N12 = _chexpert("chexpert", 12)
CHEXPERT_N5 = _chexpert("chexpert", 5)
CHEXPERT_N14 = _chexpert("chexpert", 14)
CHEXPERT_DEV_N12 = _chexpert("chexpert-dev", 12)
CHEXPERT_DEV_N5 = _chexpert("chexpert-dev", 5)
CHEXPERT_U75 = _chexpert("chexpert", 12, uncertainty="U75")
CHEXPERT_U32 = _chexpert("chexpert", 5, uncertainty="U32")
CHESTXRAY14_256 = Benchmark(dataset="chestxray14-256", n_classes=14, image_size=256, epochs=5, split=(70, 10, 20))
CHESTXRAY14_512 = Benchmark(dataset="chestxray14-512", n_classes=14, image_size=512, epochs=5, split=(70, 10, 20))
DEMO = Benchmark(
    dataset="demo", loss="BCE", epochs=3, batch_size=16, n_classes=5, image_size=64, learning_rate=1e-3, split=(80, 20)
)

PREDEFINED: dict[str, Benchmark] = {
    b.name: b
    for b in (
        CHEXPERT_N12,
        CHEXPERT_N5,
        CHEXPERT_N14,
        CHEXPERT_DEV_N12,
        CHEXPERT_DEV_N5,
        CHEXPERT_U75,
        CHEXPERT_U32,
        CHESTXRAY14_256,
        CHESTXRAY14_512,
        DEMO,
    )
}


def loss_grid(base: Benchmark = CHEXPERT_N12) -> list[Benchmark]:
    """The original's main comparison: losses × batch sizes × epochs × crop."""
    return grid(base, loss=["BCE", "WBCE", "CWBCE"], batch_size=[16, 32], epochs=[3, 5], crop=[False, True])


def uncertainty_grid(base: Benchmark = CHEXPERT_N12) -> list[Benchmark]:
    """U-zeros, U-ones, U-ignore and the per-class preset for the label set."""
    preset = {12: ["U75", "U66"], 5: ["U32"]}.get(base.n_classes, [])
    return grid(base, uncertainty=["zeros", "ones", "ignore", *preset])
