"""The preprocessing cache of a benchmark's dataset: the one function `Experiment` and `medbench preprocess` call.

A benchmark's cache covers its dataset's whole image list (training, official test and validation tables), not
one split or option's subset, so every run with the same pixels shares it, whatever its split,
frontal-only or sample-cap options.
"""

from __future__ import annotations

from collections.abc import Sequence

from medbench.benchmark.benchmark import Benchmark
from medbench.data.datasets import all_image_paths, get_dataset, load_dataset, load_validation
from medbench.errors import ConfigError
from medbench.preprocessing.cache import ImageCache, build_cache
from medbench.preprocessing.params import PreprocessParams
from medbench.preprocessing.samples import SampleParams
from medbench.preprocessing.volume import VolumeParams
from medbench.settings import Settings


def dataset_image_paths(dataset: str, settings: Settings) -> list[str]:
    """Every image path of a registered dataset (training, official test and validation tables), unique and sorted."""
    spec = get_dataset(dataset)
    val = load_validation(spec, settings.data_dir) if spec.val is not None else None
    return all_image_paths(*load_dataset(spec, settings.data_dir), val)


def benchmark_params(benchmark: Benchmark) -> SampleParams:
    """The stored pixels a benchmark implies: its image size, crop and transformations, its dataset's channels.

    A 3D benchmark stores volumes of its shape (Z × D × D), resampled to its dataset's voxel spacing and
    windowed with its dataset's intensity window.
    """
    dataset = get_dataset(benchmark.dataset)
    if benchmark.dimension != dataset.dimension:
        raise ConfigError(
            f"benchmark {benchmark.name} is {benchmark.dimension}D but dataset {dataset.name!r} holds "
            f"{dataset.dimension}D samples; expected {'the' if dataset.dimension == 3 else 'no'} 3D token"
        )
    if benchmark.dimension == 3:
        depth, height, width = benchmark.spatial_shape
        return VolumeParams(
            (depth, height, width), dataset.volume_spacing, dataset.volume_window, dataset.volume_resize
        )
    return PreprocessParams.for_benchmark(benchmark, channels=dataset.channels)


def build_benchmark_cache(
    benchmark: Benchmark,
    settings: Settings,
    *,
    sources: Sequence[str] | None = None,
    workers: int | None = None,
    strict: bool = False,
    progress: bool = True,
    verify: bool = False,
) -> ImageCache:
    """Build (or reuse) the cache of `benchmark`'s dataset under `settings.cache_root`.

    `sources` is the dataset's image list when the caller has already read its label files
    (`ExperimentData.sources`); otherwise the label files are read here. Damaged shards are rebuilt
    with a warning (`build_cache`); `verify` checks every shard's checksum first.
    """
    paths = list(sources) if sources is not None else dataset_image_paths(benchmark.dataset, settings)
    return build_cache(
        paths,
        benchmark_params(benchmark),
        settings.cache_root,
        workers=workers,
        strict=strict,
        progress=progress,
        verify=verify,
    )
