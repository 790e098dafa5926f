"""What one cache row is: a 2D image (`PreprocessParams`) or a 3D volume (`VolumeParams`), and how a file becomes it.

The cache, its shards and a run's config.json hold either kind of parameters; these functions are the one
place that tells them apart, so the cache code itself only sees a per-sample shape and one preprocessing
call. A 2D record is `PreprocessParams.to_dict()` unchanged (so the keys of existing 2D caches and their
manifests stay what they were); a 3D record is `VolumeParams.to_dict()` with ``"kind": "volume"``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np

from medbench.errors import ConfigError, shown
from medbench.preprocessing.params import PreprocessParams, preprocess_image
from medbench.preprocessing.volume import VolumeParams, preprocess_volume

__all__ = [
    "VOLUME_KIND",
    "SampleParams",
    "params_from_dict",
    "params_to_dict",
    "preprocess_sample",
    "sample_bytes",
    "sample_shape",
    "sample_text",
]

SampleParams = PreprocessParams | VolumeParams
"""The parameters of one cache row: an image's or a volume's."""
VOLUME_KIND = "volume"
_VOLUME_FIELDS = frozenset(field.name for field in dataclasses.fields(VolumeParams))


def sample_shape(params: SampleParams) -> tuple[int, ...]:
    """The stored uint8 shape of one sample: (size, size, channels) or (depth, height, width, 1)."""
    if isinstance(params, VolumeParams):
        return (*params.shape, 1)
    return params.image_size, params.image_size, params.channels


def sample_bytes(params: SampleParams) -> int:
    """Bytes of one stored sample."""
    return math.prod(sample_shape(params))


def sample_text(params: SampleParams) -> str:
    """The stored size in words, for messages: "256 px" or "64×128×128 voxels"."""
    if isinstance(params, VolumeParams):
        return "×".join(map(str, params.shape)) + " voxels"
    return f"{params.image_size} px"


def preprocess_sample(path: str | os.PathLike[str], params: SampleParams) -> np.ndarray:
    """The stored uint8 pixels or voxels of one file (`preprocess_image` or `preprocess_volume`)."""
    if isinstance(params, VolumeParams):
        return preprocess_volume(path, params)
    return preprocess_image(path, params)


def params_to_dict(params: SampleParams) -> dict[str, Any]:
    """The JSON record of `params` (the manifest's and config.json's ``preprocessing``)."""
    if isinstance(params, VolumeParams):
        return {"kind": VOLUME_KIND, **params.to_dict()}
    return params.to_dict()


def params_from_dict(data: dict[str, Any]) -> SampleParams:
    """The parameters a `params_to_dict` record holds; other keys (config.json's ``cache``) are ignored."""
    if not isinstance(data, dict):
        raise ConfigError(f"preprocessing parameters {shown(data)}: expected a JSON object")
    if data.get("kind") == VOLUME_KIND:
        return VolumeParams.from_dict({key: value for key, value in data.items() if key in _VOLUME_FIELDS})
    return PreprocessParams.from_dict(data)
