"""Atomic file writes — the one writer every file of medbench goes through, models included.

A temporary sibling, fsync, rename, fsync of the folder: a process killed at any moment (or a full
disk) leaves either the old file or the new one, never a torn one; SIGINT and SIGTERM wait for the
write in progress (`medbench.interruption`). The temporary file is
`.<name>.<random>.tmp` beside the target (`.<name>.<random>.tmp<suffix>` for writers that need the
suffix, such as Keras' `.keras` files), removed on failure and recognisable for clean-up after a SIGKILL.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from medbench.interruption import deferred

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


CREATE_MODE = 0o666
"""Mode a new file is created with, less the umask: what `open(path, "w")` gives, so others sharing
the folders can read what medbench writes (`tempfile.mkstemp` would give 0600 whatever the umask)."""


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new, exclusively created temporary sibling of `path` (mode CREATE_MODE less the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temp = str(path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"))
        try:
            return os.open(temp, flags, CREATE_MODE), temp
        except FileExistsError:
            continue


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> None:
    """Create or replace `path` with what `write(file)` writes, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with deferred():
        handle, temp = _create_temporary(path)
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


def write_saved_atomic(path: str | os.PathLike[str], save: Callable[[Path], Any]) -> None:
    """Create or replace `path` with the file `save(temporary path)` writes, atomically.

    For writers that take a file name instead of a stream (``model.save``); the temporary path keeps
    the target's suffix, which Keras requires.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}{path.suffix}")
    with deferred():
        try:
            save(temp)
            fsync_file(temp)
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_folder(path.parent)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` atomically."""
    write_atomic(path, lambda stream: stream.write(data))


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON (indented, no NaN) atomically."""
    write_bytes_atomic(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8"))


def copy_atomic(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Copy a file atomically (the target is complete or absent)."""
    with open(source, "rb") as original:
        write_atomic(target, lambda stream: shutil.copyfileobj(original, stream))
