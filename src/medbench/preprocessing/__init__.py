"""Preprocessing (no TensorFlow): an image or volume file → its cached uint8 pixels, computed once per dataset.

Modules: `transforms` (the named transformations of benchmark names), `crop` (lung-field cropping),
`params` (PreprocessParams and `preprocess_image`, the single definition of the stored pixels),
`volume` (VolumeParams and `preprocess_volume`, the same for volumes), `samples` (an image or a volume as
one cache row), `cache` (build_cache, ImageCache) and `dataset_cache` (the cache of a benchmark's dataset).
"""

from medbench.preprocessing.cache import CACHE_FORMAT_VERSION, BuildSummary, ImageCache, build_cache
from medbench.preprocessing.params import PreprocessParams, preprocess_image

__all__ = ["CACHE_FORMAT_VERSION", "BuildSummary", "ImageCache", "PreprocessParams", "build_cache", "preprocess_image"]
