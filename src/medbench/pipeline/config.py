"""PipelineConfig: everything that decides the pixels a model sees, derived from a spec and its architecture."""

from __future__ import annotations

from dataclasses import dataclass

from medbench.architectures.registry import get_architecture
from medbench.benchmark.spec import ExperimentSpec


@dataclass(frozen=True)
class PipelineConfig:
    """Image size, batch size, the backbone's standardize mode, augmentations, seed and output channels."""

    image_size: int
    batch_size: int
    standardize: str = "unit"
    augmentations: tuple[str, ...] = ()
    seed: int = 0
    channels_out: int = 3

    @classmethod
    def for_spec(cls, spec: ExperimentSpec, *, training: bool = False) -> PipelineConfig:
        """The pipeline of a spec: augmented only for training, standardized as its backbone expects."""
        benchmark = spec.benchmark
        return cls(
            image_size=benchmark.image_size,
            batch_size=benchmark.batch_size,
            standardize=get_architecture(spec.architecture).standardize,
            augmentations=benchmark.augmentations if training else (),
            seed=benchmark.seed,
        )
