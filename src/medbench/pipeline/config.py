"""PipelineConfig: everything that decides the batches a model is fed, derived from a spec."""

from __future__ import annotations

from dataclasses import dataclass

from medbench.benchmark.spec import ExperimentSpec


@dataclass(frozen=True)
class PipelineConfig:
    """Image size, batch size, augmentations and seed (standardization is the model's own first layer)."""

    image_size: int
    batch_size: int
    augmentations: tuple[str, ...] = ()
    seed: int = 0

    @classmethod
    def for_spec(cls, spec: ExperimentSpec, *, training: bool = False) -> PipelineConfig:
        """The pipeline of a spec: augmented only for training."""
        benchmark = spec.benchmark
        return cls(
            image_size=benchmark.image_size,
            batch_size=benchmark.batch_size,
            augmentations=benchmark.augmentations if training else (),
            seed=benchmark.seed,
        )
