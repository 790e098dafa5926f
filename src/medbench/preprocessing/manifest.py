"""The cache manifest: what a complete preprocessing cache holds, and the checks that a shard still matches it.

`manifest.json` records every shard's row range, byte size and blake2b checksum (blake2b: the fastest
cryptographic hash in hashlib on CPUs without SHA extensions, and a checksum that a flipped bit cannot
pass). Opening a cache checks sizes and `.npy` headers (a few bytes per shard, so every open can afford
it, and a shard cut short is never memory-mapped, where reading past its end would kill the process
with SIGBUS); `medbench preprocess --verify` and a failed shard read check the checksums too.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medbench.errors import SHOWN, DatasetError, shown

__all__ = [
    "CACHE_FORMAT_VERSION",
    "MANIFEST",
    "REPORT",
    "Damage",
    "ShardRecord",
    "check_shard",
    "file_checksum",
    "new_checksum",
    "read_manifest",
    "shard_name",
]

CACHE_FORMAT_VERSION = 2  # 2: shard sizes and checksums in the manifest and the shard files
MANIFEST = "manifest.json"
REPORT = "report.json"
CHECKSUM = "blake2b"
_CHUNK = 4 * 2**20


def shard_name(index: int) -> str:
    """The file name of shard `index` (the manifest must name its shards so: no path leaves the folder)."""
    return f"shard-{index:05d}.npy"


def new_checksum() -> Any:
    """A fresh hash object of the checksum the manifest records (fed while a shard is written)."""
    return hashlib.blake2b(digest_size=32)


def file_checksum(path: str | os.PathLike[str]) -> str:
    """Hex checksum of a whole file, read in chunks."""
    digest = new_checksum()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ShardRecord:
    """One shard as the manifest records it: its file name, its rows [start, stop), its size and checksum."""

    file: str
    start: int
    stop: int
    bytes: int
    checksum: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "start": self.start, "stop": self.stop, "bytes": self.bytes, CHECKSUM: self.checksum}

    @classmethod
    def from_dict(cls, data: Any) -> ShardRecord:
        """A record from the manifest's JSON; ValueError when a field is missing or of the wrong type."""
        if not isinstance(data, dict):
            raise ValueError(f"a shard entry is {type(data).__name__}, not an object")
        fields = {"file": str, "start": int, "stop": int, "bytes": int, CHECKSUM: str}
        for name, kind in fields.items():
            if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
                raise ValueError(f"a shard entry's field {name!r} is {shown(data.get(name))}; expected {kind.__name__}")
        return cls(data["file"], data["start"], data["stop"], data["bytes"], data[CHECKSUM])


@dataclass(frozen=True)
class Damage:
    """A cache file that does not match what the manifest (or the shard's own record) says."""

    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


_MANIFEST_FIELDS: dict[str, type] = {
    "format_version": int,
    "params": dict,
    "count": int,
    "shard_size": int,
    "shards": list,
    "failed": dict,
    "paths": list,
}


def read_manifest(path: Path, format_version: int) -> dict[str, Any]:
    """The manifest at `path` with its shards as `ShardRecord`s; DatasetError naming what is wrong with it."""
    expected = "expected the manifest.json a finished medbench cache build writes"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise DatasetError(f"is not UTF-8 text ({error}); {expected}", file=path) from None
    except json.JSONDecodeError as error:
        raise DatasetError(f"is not JSON ({error}); {expected}", file=path) from None
    except OSError as error:
        raise DatasetError(f"cannot be read ({error.strerror or error}); {expected}", file=path) from None
    if not isinstance(manifest, dict):
        raise DatasetError(f"holds {type(manifest).__name__}, not an object; {expected}", file=path)
    if manifest.get("format_version") != format_version:
        raise DatasetError(
            f"cache format {shown(manifest.get('format_version'))}; expected {format_version} (rebuild it)", file=path
        )
    for name, kind in _MANIFEST_FIELDS.items():
        value = manifest.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise DatasetError(f"field {name!r} is {shown(value)}; expected {kind.__name__} ({expected})", file=path)
    try:
        records = [ShardRecord.from_dict(entry) for entry in manifest["shards"]]
    except ValueError as error:
        raise DatasetError(f"{error} ({expected})", file=path) from None
    count, size = manifest["count"], manifest["shard_size"]
    agree = size >= 1 and len(manifest["paths"]) == count  # checked first: count then bounds the layout
    if agree:
        layout = [(shard_name(i), start, min(start + size, count)) for i, start in enumerate(range(0, count, size))]
        agree = [(r.file, r.start, r.stop) for r in records] == layout
    if not agree:
        raise DatasetError(
            f"its shard list (names and rows), count ({count}), shard_size ({size}) and paths "
            f"({len(manifest['paths'])}) do not agree; {expected}",
            file=path,
        )
    return {**manifest, "shards": records}


def _header_problem(path: Path, rows: int, shape: tuple[int, ...]) -> str | None:
    """Why the .npy header of `path` does not describe `rows` uint8 images of `shape`, or None."""
    expected = f"expected a .npy file of uint8 images of shape {(rows, *shape)}"
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                found, fortran, dtype = np.lib.format.read_array_header_1_0(file)
            else:
                found, fortran, dtype = np.lib.format.read_array_header_2_0(file)
    except (OSError, ValueError, SyntaxError) as error:
        return f"has no readable .npy header ({type(error).__name__}: {str(error)[:SHOWN]}); {expected}"
    if dtype != np.uint8 or fortran or tuple(found) != (rows, *shape):
        return f"its header describes {dtype} images of shape {tuple(found)}; {expected}"
    return None


def check_shard(path: Path, record: ShardRecord, shape: tuple[int, ...], *, checksum: bool) -> Damage | None:
    """What is wrong with one shard file compared with its record (missing, size, header, checksum), or None."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return Damage(path, f"is missing; expected a shard of {record.bytes} bytes")
    except OSError as error:
        return Damage(path, f"cannot be read ({error.strerror or error}); expected a shard of {record.bytes} bytes")
    if size != record.bytes:
        return Damage(path, f"is {size} bytes; expected {record.bytes} bytes (cut short, or written over)")
    problem = _header_problem(path, record.stop - record.start, shape)
    if problem is not None:
        return Damage(path, problem)
    if checksum:
        try:
            found = file_checksum(path)
        except OSError as error:
            return Damage(path, f"cannot be read ({error.strerror or error}); expected a readable shard")
        if found != record.checksum:
            return Damage(
                path,
                f"{CHECKSUM} checksum {found[:16]}… differs from the recorded {record.checksum[:16]}… "
                "(its bytes changed after it was written)",
            )
    return None
