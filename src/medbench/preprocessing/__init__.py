"""Preprocessing: the deterministic pixels of an image (`params`), cached once per dataset (`cache`).

Modules: `params` (PreprocessParams, preprocess_image), `cache` (build_cache, ImageCache), `crop`
(lung-field cropping).
"""

from medbench.preprocessing.cache import CACHE_FORMAT_VERSION, BuildSummary, ImageCache, build_cache
from medbench.preprocessing.params import PreprocessParams, preprocess_image

__all__ = ["CACHE_FORMAT_VERSION", "BuildSummary", "ImageCache", "PreprocessParams", "build_cache", "preprocess_image"]
