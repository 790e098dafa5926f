"""Pretrained weights from local files only: where they are expected and how they are loaded.

There is no download at run time. `weights="imagenet"` means Keras' own ImageNet "notop" file
(the one `keras.applications.<Model>(include_top=False, weights="imagenet")` would download)
lying in the weights folder (`MEDBENCH_WEIGHTS_DIR`, by default Keras' cache `~/.keras/models`).
Any other string is the path of a weights file. Keras is never handed `"imagenet"`, so it can
never try to download.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from medbench.architectures.info import ArchitectureInfo
from medbench.errors import ConfigError, WeightsNotFoundError
from medbench.settings import Settings

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

IMAGENET = "imagenet"
WEIGHTS_DIR_ENV = "MEDBENCH_WEIGHTS_DIR"
WEIGHTS_SUFFIXES = (".h5", ".hdf5", ".keras", ".weights.h5")


def is_imagenet(weights: str | Path | None) -> bool:
    """True when `weights` asks for the ImageNet file (the string "imagenet", any case)."""
    return isinstance(weights, str) and weights.strip().lower() == IMAGENET


def default_weights_dir() -> Path:
    """The weights folder from the environment (`MEDBENCH_WEIGHTS_DIR`, or `.env`)."""
    return Settings.from_env().weights_dir


def expected_weights_path(info: ArchitectureInfo, weights_dir: str | Path | None = None) -> Path:
    """Where the ImageNet file of `info` must lie: `<weights_dir>/<info.weights_file>`."""
    if info.weights_file is None:
        raise ConfigError(
            f"architecture {info.key!r} has no ImageNet weights: expected weights=None "
            f"(random initialization) or the path of a weights file made for {info.key}"
        )
    folder = Path(weights_dir).expanduser() if weights_dir is not None else default_weights_dir()
    return folder / info.weights_file


def _missing_imagenet_message(info: ArchitectureInfo, path: Path) -> str:
    lines = [
        f"ImageNet weights for {info.key} not found: expected the file {path.name!r} "
        f"in the folder {str(path.parent)!r} (there is no download at run time).",
        f"Put {path.name} into {path.parent}, or point the environment variable "
        f"{WEIGHTS_DIR_ENV} at the folder that holds it.",
    ]
    if info.weights_url:
        saved_as = "" if info.weights_url.endswith("/" + path.name) else f" (save it as {path.name})"
        lines.append(
            f"On a machine with network, fetch it from {info.weights_url}{saved_as} or run "
            f"keras.applications.{info.name}(include_top=False, weights='imagenet'), "
            "which stores it in ~/.keras/models/."
        )
    return "\n".join(lines)


def resolve_weights(
    info: ArchitectureInfo,
    weights: str | Path | None,
    weights_dir: str | Path | None = None,
) -> Path | None:
    """Return the local weights file to load into the backbone of `info`, or None for random init.

    `weights` is None, "imagenet" (the Keras ImageNet notop file in `weights_dir`, default
    `Settings.from_env().weights_dir`) or a path. A missing file raises WeightsNotFoundError that
    names the file and the folder; an architecture without ImageNet weights raises ConfigError.
    """
    if weights is None:
        return None
    if is_imagenet(weights):
        path = expected_weights_path(info, weights_dir)
        if not path.is_file():
            raise WeightsNotFoundError(_missing_imagenet_message(info, path))
        logger.info("%s: ImageNet weights from %s", info.key, path)
        return path
    path = Path(weights).expanduser()
    if not path.name.endswith(WEIGHTS_SUFFIXES):
        raise ConfigError(
            f"weights {str(weights)!r} for {info.key}: expected None, {IMAGENET!r} or the path of "
            f"a Keras weights file ending in {', '.join(WEIGHTS_SUFFIXES)}"
        )
    if not path.is_file():
        raise WeightsNotFoundError(
            f"weights file {str(path)!r} for {info.key} not found: expected an existing Keras "
            f"weights file ({', '.join(WEIGHTS_SUFFIXES)})"
        )
    logger.info("%s: weights from %s", info.key, path)
    return path


def load_weights_file(model: keras.Model, path: Path) -> None:
    """Load `path` into `model` the way `keras.applications` loads a weights path.

    Legacy `.h5` files (Keras' ImageNet files) are matched layer by layer in topological order,
    `.weights.h5` and `.keras` files by the model's structure. A file that does not fit raises
    ConfigError naming the file and the model.
    """
    try:
        model.load_weights(str(path))
    except (ValueError, KeyError, OSError) as exc:
        raise ConfigError(
            f"weights file {str(path)!r} does not fit the backbone {model.name!r}: expected "
            f"weights saved from the same architecture without its top ({exc})"
        ) from exc


def architecture_table(weights_dir: Path) -> str:
    """Every registered architecture: key, dimension (2D or 3D), default input ((D×)H×W×C), standardize mode,
    backbone weights and whether its ImageNet file is in the weights folder (no TensorFlow is imported)."""
    from medbench.architectures.registry import ARCHITECTURES

    rows = [("key", "dim", "input", "standardize", "parameters", "ImageNet file")]
    for key, info in ARCHITECTURES.items():
        if info.weights_file is None:
            imagenet = "none (trained from scratch)"
        else:
            path = expected_weights_path(info, weights_dir)
            imagenet = f"{'present' if path.is_file() else 'missing'} ({info.weights_file})"
        shape = "×".join(str(side) for side in info.input_shape)
        parameters = f"{info.parameters / 1e6:.1f} M" if info.parameters is not None else "?"
        rows.append((key, info.dimension, shape, info.standardize, parameters, imagenet))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows)
