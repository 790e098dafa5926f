"""PipelineConfig: everything that decides the batches a model is fed, derived from a spec."""

from __future__ import annotations

from dataclasses import dataclass

from medbench.benchmark.spec import ExperimentSpec


@dataclass(frozen=True)
class PipelineConfig:
    """Image size, batch size, augmentations, enumeration and seed (standardization is the model's own first
    layer). `enumeration` (`medbench.pipeline.enumeration`) multiplies the training images per epoch.

    `dimension` 3 feeds volumes: `image_size` is then their height and width and `depth` their depth
    (None: `image_size`), as the benchmark's ``D`` and ``Z`` say.
    """

    image_size: int
    batch_size: int
    augmentations: tuple[str, ...] = ()
    enumeration: str = "none"
    seed: int = 0
    dimension: int = 2
    depth: int | None = None

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """(height, width) of the images, or (depth, height, width) of the volumes, that the cache must hold."""
        if self.dimension == 3:
            return self.depth or self.image_size, self.image_size, self.image_size
        return self.image_size, self.image_size

    @classmethod
    def for_spec(cls, spec: ExperimentSpec, *, training: bool = False) -> PipelineConfig:
        """The pipeline of a spec: augmented only for training."""
        benchmark = spec.benchmark
        return cls(
            image_size=benchmark.image_size,
            batch_size=benchmark.batch_size,
            augmentations=benchmark.augmentations if training else (),
            enumeration=benchmark.enumeration if training else "none",
            seed=benchmark.seed,
            dimension=benchmark.dimension,
            depth=benchmark.depth,
        )
