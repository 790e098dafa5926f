"""Provenance of a run: the versions of what computed it and the git commit of the code, read without TensorFlow."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "pandas": ("pandas",),
}
"""Version key → the distributions that provide it (TensorFlow ships as tensorflow or tensorflow-cpu)."""


def _version(distributions: tuple[str, ...]) -> str:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def environment_versions() -> dict[str, str]:
    """medbench, Python, TensorFlow, Keras, NumPy and pandas versions, as config.json records them."""
    return {
        "medbench": _version(("medbench",)),
        "python": platform.python_version(),
        **{key: _version(names) for key, names in _DISTRIBUTIONS.items()},
    }


def git_commit(path: Path) -> str | None:
    """The commit checked out at `path`, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
