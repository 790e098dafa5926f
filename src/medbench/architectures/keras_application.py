"""Backbones from `keras.applications`: a builder that never downloads, and the record of one entry.

`KerasApplication` builds ``keras.applications.<Name>(include_top=False, weights=None)`` and loads
a local weights file afterwards, so Keras is never asked for ImageNet weights it would download.
Keras is imported when a backbone is built, not when an entry is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medbench.architectures.info import BACKBONE_NAME, DIMENSION_PREFIX, ArchitectureInfo
from medbench.architectures.weights import load_weights_file

if TYPE_CHECKING:
    import keras

KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
"""Where Keras downloads its ImageNet files from (named in error messages only)."""


@dataclass(frozen=True)
class KerasApplication:
    """Builder for the `keras.applications` model `model_name` without top, weights from a local file."""

    model_name: str

    @property
    def factory(self) -> Callable[..., keras.Model]:
        """The `keras.applications` function (imports Keras)."""
        import keras

        return getattr(keras.applications, self.model_name)

    def __call__(
        self,
        input_shape: tuple[int | None, int | None, int],
        *,
        weights: Path | None = None,
        imagenet: bool = False,
        name: str = BACKBONE_NAME,
    ) -> keras.Model:
        model = self.build(input_shape, name)
        if weights is not None:
            load_weights_file(model, weights)
        return model

    def build(self, input_shape: tuple[int | None, int | None, int], name: str) -> keras.Model:
        """The headless model with random weights, named `name`."""
        return self.factory(include_top=False, weights=None, input_shape=input_shape, name=name)


def keras_application(
    name: str,
    *,
    weights_file: str,
    url_folder: str,
    standardize: str,
    input_size: int = 224,
    min_input_size: int = 32,
    url_file: str | None = None,
    parameters: int | None = None,
) -> ArchitectureInfo:
    """The registry entry "2D.<name>" for `keras.applications.<name>`.

    `weights_file` is the name Keras caches the file under in ``~/.keras/models/``; `url_file` the
    name it is downloaded by, where the two differ (NASNet).
    """
    return ArchitectureInfo(
        key=DIMENSION_PREFIX + name,
        builder=KerasApplication(name),
        input_size=(input_size, input_size),
        standardize=standardize,
        weights_file=weights_file,
        min_input_size=min_input_size,
        weights_url=f"{KERAS_BASE_URL}{url_folder}/{url_file or weights_file}",
        parameters=parameters,
    )
