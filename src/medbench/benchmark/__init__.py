"""Benchmarks and experiment specs: names, their vocabulary, options and the predefined sets (no TensorFlow).

Modules: `vocabulary` (every token and choice, with ranges), `name` (the name codec), `legacy` (the
original platform's spellings), `benchmark` (Benchmark), `options` (ExperimentOptions), `spec`
(ExperimentSpec: benchmark + architecture + options) and `predefined` (PREDEFINED, grid).
"""

from typing import Any

from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.name import EXAMPLE_NAME, decode_learning_rate, encode_learning_rate
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.predefined import PREDEFINED, grid, loss_grid, uncertainty_grid

__all__ = [
    "EXAMPLE_NAME",
    "PREDEFINED",
    "Benchmark",
    "ExperimentOptions",
    "ExperimentSpec",
    "decode_learning_rate",
    "encode_learning_rate",
    "grid",
    "loss_grid",
    "uncertainty_grid",
]


def __getattr__(name: str) -> Any:
    # ExperimentSpec consults the dataset and architecture registries; load them on first use only.
    if name == "ExperimentSpec":
        from medbench.benchmark.spec import ExperimentSpec

        return ExperimentSpec
    raise AttributeError(f"module 'medbench.benchmark' has no attribute {name!r}")
