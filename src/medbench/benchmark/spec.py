"""ExperimentSpec: one benchmark, one architecture, one set of options — what an experiment runs.

The spec is the single value that batches expand into, `config.json` stores and a resumed run is
compared against. `check()` runs every validation that an experiment would otherwise hit part-way:
the name's tokens, the dataset and its label set, the uncertainty preset against those classes, the
architecture with the image size and the weights, and the options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medbench.architectures.registry import get_architecture
from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.vocabulary import COLOR_SPACES, DEFAULT_ARCHITECTURES, LOSS_TASKS, losses_for
from medbench.data.datasets import get_dataset
from medbench.data.label_policy import uncertain_targets
from medbench.errors import ConfigError, MedbenchError

TASK_TEXT = {
    "binary": "binary (one class, a sigmoid)",
    "multiclass": "multi-class (one class per image, a softmax)",
    "multilabel": "multi-label (a sigmoid per class)",
}


@dataclass(frozen=True)
class ExperimentSpec:
    """A benchmark bound to an architecture with options; names and stores an experiment.

    `benchmark` may be given as a name and `options` as a mapping; the architecture key is stored in
    its registry spelling ("densenet121" → "2D.DenseNet121").
    """

    benchmark: Benchmark
    architecture: str | None = None
    options: ExperimentOptions = field(default_factory=ExperimentOptions)

    def __post_init__(self) -> None:
        if isinstance(self.benchmark, str):
            object.__setattr__(self, "benchmark", Benchmark.from_name(self.benchmark))
        if not isinstance(self.benchmark, Benchmark):
            raise ConfigError(f"benchmark {self.benchmark!r}: expected a Benchmark or a benchmark name")
        if isinstance(self.options, dict):
            object.__setattr__(self, "options", ExperimentOptions.from_dict(self.options))
        chosen = self.architecture or DEFAULT_ARCHITECTURES[self.benchmark.dimension]
        object.__setattr__(self, "architecture", get_architecture(chosen).key)

    @property
    def task(self) -> str:
        """``"binary"``, ``"multiclass"`` or ``"multilabel"``: what the dataset's label set means."""
        return get_dataset(self.benchmark.dataset).task_for(self.benchmark.n_classes)

    @property
    def name(self) -> str:
        """`<Architecture>_<benchmark name>`, the folder name of the experiment's runs."""
        return f"{get_architecture(self.architecture).name}_{self.benchmark.name}"

    def with_options(self, **changes: Any) -> ExperimentSpec:
        """A copy whose options have `changes` applied (checked like new options)."""
        return ExperimentSpec(self.benchmark, self.architecture, self.options.with_(**changes))

    def check(self) -> ExperimentSpec:
        """Every check an experiment would otherwise fail part-way; returns the spec.

        Raises:
            ConfigError: naming the spec and what does not fit.
        """
        try:
            Benchmark.from_dict(self.benchmark.to_dict())
            dataset = get_dataset(self.benchmark.dataset)
            info = get_architecture(self.architecture)
            self._check_dimension(dataset.dimension, dataset.format, info.dimension, info.key)
            classes = dataset.classes_for(self.benchmark.n_classes)
            task = dataset.task_for(self.benchmark.n_classes)
            if task not in LOSS_TASKS[self.benchmark.loss]:
                raise ConfigError(
                    f"loss {self.benchmark.loss} does not fit dataset {dataset.name!r}, which is {TASK_TEXT[task]}; "
                    f"expected one of {', '.join(losses_for(task))}"
                )
            uncertain_targets(self.benchmark.uncertainty, classes)
            if self.benchmark.image_size < info.min_input_size:
                raise ConfigError(
                    f"image dimension D{self.benchmark.image_size} is below the {info.min_input_size} px "
                    f"that {info.key} accepts"
                )
            if min(self.benchmark.spatial_shape) < info.min_input_size:
                raise ConfigError(
                    f"volume depth Z{self.benchmark.depth} is below the {info.min_input_size} voxels that {info.key} "
                    "accepts"
                )
            if self.options.weights is not None and self.options.weights.strip().lower() == "imagenet":
                if info.weights_file is None:
                    raise ConfigError(f"{info.key} has no ImageNet weights: expected weights=None or a weights file")
            colours = [token for token in self.benchmark.transformations if token in COLOR_SPACES]
            if colours and dataset.channels != 3:
                raise ConfigError(
                    f"transformation {colours[0]!r} converts RGB colour images, but dataset {dataset.name!r} stores "
                    f"{dataset.channels}-channel images; expected a dataset of channels=3"
                )
            unknown = sorted(set(self.options.upsample_factors or {}) - set(classes))
            if unknown:
                raise ConfigError(f"upsample_factors name classes {unknown} that are not in {list(classes)}")
        except ConfigError as error:
            raise ConfigError(f"{self.name}: {error}") from None
        except MedbenchError as error:
            raise ConfigError(f"{self.name}: {error}") from None
        return self

    def _check_dimension(self, dataset: int, dataset_format: str, architecture: str, key: str) -> None:
        """The benchmark, its dataset and the architecture must agree on images (2D) or volumes (3D)."""
        benchmark = f"{self.benchmark.dimension}D"
        written = "the 3D token" if benchmark == "3D" else "no 3D token"
        if f"{dataset}D" != benchmark:
            raise ConfigError(
                f"benchmark {self.benchmark.name} is {benchmark} ({written}) but dataset {self.benchmark.dataset!r} "
                f"(format {dataset_format!r}) holds {dataset}D {'volumes' if dataset == 3 else 'images'}; expected "
                f"{'the 3D token after the dataset' if dataset == 3 else 'a 3D dataset (format volumes)'}"
            )
        if architecture != benchmark:
            raise ConfigError(
                f"benchmark {self.benchmark.name} is {benchmark} ({written}) but architecture {key} is {architecture}; "
                f"expected a {benchmark} architecture (a key starting with {benchmark}.)"
            )

    def to_dict(self) -> dict[str, Any]:
        """The three parts as config.json and log entries store them."""
        return {
            "benchmark": self.benchmark.to_dict(),
            "architecture": self.architecture,
            "options": self.options.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentSpec:
        """The spec of a config.json or log entry (its other keys are ignored)."""
        return cls(
            Benchmark.from_dict(data["benchmark"]),
            data["architecture"],
            ExperimentOptions.from_dict(data.get("options")),
        )
