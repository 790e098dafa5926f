"""Atomic file writes: a temporary sibling, fsync, rename, fsync of the folder.

A process killed at any moment (or a full disk) leaves either the old file or the new one, never a
torn one; the temporary file is `.<name>.<random>.tmp` beside the target, removed on failure, and
recognisable for clean-up after a SIGKILL.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

TEMP_SUFFIX = ".tmp"


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's data to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Make a rename in `folder` durable (best effort: some file systems refuse to fsync folders)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> None:
    """Create or replace `path` with what `write(file)` writes, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON (indented, no NaN) atomically."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    write_atomic(path, lambda stream: stream.write(text.encode("utf-8")))


def copy_atomic(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Copy a file atomically (the target is complete or absent)."""
    with open(source, "rb") as original:
        write_atomic(target, lambda stream: shutil.copyfileobj(original, stream))
