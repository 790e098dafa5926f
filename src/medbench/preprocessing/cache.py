"""The preprocessing cache: every image of a dataset preprocessed once, stored as memory-mapped uint8 shards.

A cache lives in ``<cache root>/<key>/``. The key is a hash of the ordered source files (path, size,
modification time), every field of the parameters (`PreprocessParams` for images, `VolumeParams` for
volumes: `medbench.preprocessing.samples`) and `CACHE_FORMAT_VERSION`, so any change to an
image or a parameter gives a new folder and an unchanged dataset reuses the old one without touching a
pixel. Samples are stored in fixed-size shards ``shard-NNNNN.npy`` of shape (n, *sample shape): (n, size,
size, channels) for images, (n, depth, height, width, 1) for volumes,
read back with ``np.load(mmap_mode="r")`` (the fastest of .npy shards, PNG files and TFRecord when fed
to tf.data). Each shard is written under a temporary name, fsynced and renamed, so a build killed
half-way keeps its finished shards and the next build computes only the missing ones; `manifest.json`
is written last and marks the cache complete: a folder without it is never read. The manifest records
each shard's size and checksum (`medbench.preprocessing.manifest`): a damaged shard or manifest is
rebuilt by the next `build_cache`, never read. Unreadable images are listed in `report.json`, stored
as zeros and refused by `ImageCache.rows`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from medbench.capacity import require_disk
from medbench.errors import ConfigError, DatasetError, ImageError, StorageError, shown
from medbench.preprocessing.manifest import (
    CACHE_FORMAT_VERSION,
    MANIFEST,
    REPORT,
    Damage,
    ShardRecord,
    check_shard,
    read_manifest,
    shard_name,
)
from medbench.preprocessing.samples import (
    SampleParams,
    params_from_dict,
    params_to_dict,
    sample_bytes,
    sample_shape,
    sample_text,
)
from medbench.preprocessing.shards import BuildSummary, build_shards
from medbench.preprocessing.volume import VolumeParams

logger = logging.getLogger(__name__)

__all__ = [
    "CACHE_FORMAT_VERSION",
    "BuildSummary",
    "ImageCache",
    "build_cache",
    "cache_key",
    "MANIFEST",
    "REPORT",
]

SHARD_SIZE = 512
VOLUME_SHARD_BYTES = 256 * 2**20
"""A volume cache's shards hold at most this many bytes (and at most SHARD_SIZE volumes), so that a damaged
shard of large volumes is quick to rebuild; image caches keep SHARD_SIZE images per shard."""
MAX_WORKERS = 256
"""Preprocessing threads at most: far more than cores help nothing, and each holds an image in memory."""
KEY_LENGTH = 16
LOCK = ".lock"

# --------------------------------------------------------------------------------------------------
# Keys and files
# --------------------------------------------------------------------------------------------------


def _fingerprint(path: str) -> tuple[str, int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return path, -1, -1
    return path, stat.st_size, stat.st_mtime_ns


def default_shard_size(params: SampleParams) -> int:
    """Samples per shard: SHARD_SIZE images, or as many volumes as fit in VOLUME_SHARD_BYTES (1..SHARD_SIZE)."""
    if isinstance(params, VolumeParams):
        return max(1, min(SHARD_SIZE, VOLUME_SHARD_BYTES // sample_bytes(params)))
    return SHARD_SIZE


def cache_key(paths: Sequence[str], params: SampleParams, shard_size: int | None = None) -> str:
    """Short sha256 hex of the ordered sources (path, size, mtime_ns), the params and the storage format."""
    shard_size = default_shard_size(params) if shard_size is None else shard_size
    digest = hashlib.sha256()
    header = {"format_version": CACHE_FORMAT_VERSION, "shard_size": shard_size, "params": params_to_dict(params)}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for path in paths:
        name, size, mtime = _fingerprint(path)
        digest.update(f"\0{name}\0{size}\0{mtime}".encode())
    return digest.hexdigest()[:KEY_LENGTH]


def _unique(paths: Sequence[str | os.PathLike[str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(os.fspath(path) for path in paths))


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class ImageCache:
    """A complete cache: preprocessed uint8 images (or volumes) of `paths`, row i holding `paths[i]`."""

    directory: Path
    params: SampleParams
    paths: tuple[str, ...]
    failed: dict[str, str]
    shard_size: int = SHARD_SIZE
    summary: BuildSummary = field(default_factory=BuildSummary)
    shards: tuple[ShardRecord, ...] = ()
    _shards: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _index: Any = field(default=None, repr=False)
    _failed_rows: np.ndarray | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> ImageCache:
        """Open a cache folder; refuses one whose build has not finished (no manifest) or that is damaged.

        Damaged: a manifest that cannot be read as one, or a shard missing or whose size or .npy header
        differs from its record (checksums are checked by `build_cache(verify=True)` and on a failed read).
        """
        directory = Path(directory)
        if not (directory / MANIFEST).is_file():
            raise DatasetError(
                f"no {MANIFEST}: the cache was never completed (run `medbench preprocess` or build_cache again)",
                file=directory,
            )
        cache, damage = _inspect(directory, checksums=False)
        if cache is None or damage:
            raise DatasetError(
                f"the cache is damaged ({len(damage)} file(s)); expected files that match its manifest "
                "(build_cache and `medbench preprocess` rebuild damaged shards):\n"
                + "\n".join(f"  {item}" for item in damage),
                file=directory,
            )
        return cache

    @property
    def image_shape(self) -> tuple[int, ...]:
        """One sample's shape: (size, size, channels) for images, (depth, height, width, 1) for volumes."""
        return sample_shape(self.params)

    @property
    def report_path(self) -> Path:
        return self.directory / REPORT

    def __len__(self) -> int:
        return len(self.paths)

    def rows(self, paths: Sequence[str | os.PathLike[str]]) -> np.ndarray:
        """The row of each path (int64). One ImageError names every path unknown to the cache or failed."""
        import pandas as pd

        if self._index is None:
            self._index = pd.Index(self.paths)
            self._failed_rows = self._index.get_indexer(list(self.failed)).astype(np.int64)
        wanted = [os.fspath(path) for path in paths]
        rows = np.asarray(self._index.get_indexer(wanted), dtype=np.int64)
        unknown = [path for path, row in zip(wanted, rows) if row < 0]
        bad = np.isin(rows, self._failed_rows) if len(self.failed) else np.zeros(len(rows), dtype=bool)
        failed = sorted({wanted[i] for i in np.flatnonzero(bad)})
        if unknown or failed:
            lines = [f"  {path}: not in this cache (built for {len(self)} other images)" for path in unknown[:20]]
            if len(unknown) > 20:
                lines.append(f"  … and {len(unknown) - 20} more not in the cache")
            lines += [f"  {path}: {self.failed[path]}" for path in failed]
            raise ImageError(
                f"{len(unknown) + len(failed)} image(s) have no preprocessed pixels in the cache {self.directory} "
                f"(unreadable ones are listed in {self.report_path}):\n" + "\n".join(lines)
            )
        return rows

    def _shard(self, index: int) -> np.ndarray:
        shard = self._shards.get(index)
        if shard is None:
            with self._lock:
                shard = self._shards.get(index)
                if shard is None:
                    shard = self._load(index)
                    self._shards[index] = shard
        return shard

    def _load(self, index: int) -> np.ndarray:
        """Memory-map shard `index`; a shard that cannot be is checked against its checksum and named."""
        path = self.directory / shard_name(index)
        rows = min(self.shard_size, len(self) - index * self.shard_size)
        try:
            shard = np.load(path, mmap_mode="r")
            if shard.dtype != np.uint8 or shard.shape != (rows, *self.image_shape):
                raise ValueError(f"holds {shard.dtype} images of shape {shard.shape}")
        except (OSError, ValueError) as error:
            reason = f"cannot be read ({type(error).__name__}: {str(error)[:200]})"
            record = self.shards[index] if index < len(self.shards) else None
            damage = None if record is None else check_shard(path, record, self.image_shape, checksum=True)
            verdict = f"it {damage.problem}" if damage else "its size and checksum match the manifest"
            raise DatasetError(
                f"{reason}; {verdict}; run the same command again to rebuild a damaged shard "
                "(or `medbench preprocess BENCHMARK --verify`)",
                file=path,
            ) from None
        return shard

    def images(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """uint8 (n, *image_shape) samples of `rows`, gathered shard by shard in sorted order."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), *self.image_shape), dtype=np.uint8)
        if len(rows) == 0:
            return out
        if rows.min() < 0 or rows.max() >= len(self):
            raise IndexError(f"cache rows must lie in 0..{len(self) - 1}, got {rows.min()}..{rows.max()}")
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        shards = ordered // self.shard_size
        bounds = np.flatnonzero(np.diff(shards)) + 1
        for part_order, part_rows in zip(np.split(order, bounds), np.split(ordered, bounds)):
            shard = self._shard(int(part_rows[0] // self.shard_size))
            out[part_order] = shard[part_rows % self.shard_size]
        return out


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------


def _strict_error(cache: ImageCache) -> ImageError:
    listing = "\n".join(f"  {path}: {reason}" for path, reason in cache.failed.items())
    return ImageError(
        f"{len(cache.failed)} of {len(cache)} image(s) cannot be preprocessed (listed in {cache.report_path}):\n"
        + listing
    )


def _inspect(
    directory: Path, *, checksums: bool, expected: tuple[tuple[str, ...], SampleParams, int] | None = None
) -> tuple[ImageCache | None, list[Damage]]:
    """The cache in `directory` (None when its manifest is damaged) and every damaged file in it.

    `expected` (paths, params, shard size) is what the folder's key stands for: a manifest that lists
    anything else is damaged too."""
    manifest_path = directory / MANIFEST
    try:
        manifest = read_manifest(manifest_path, CACHE_FORMAT_VERSION)
        cache = ImageCache(
            directory=directory,
            params=params_from_dict(manifest["params"]),
            paths=tuple(str(path) for path in manifest["paths"]),
            failed={str(path): str(reason) for path, reason in manifest["failed"].items()},
            shard_size=manifest["shard_size"],
            shards=tuple(manifest["shards"]),
        )
    except (DatasetError, ConfigError, TypeError, ValueError, KeyError) as error:
        problem = str(error).removeprefix(f"{manifest_path}: ")
        return None, [Damage(manifest_path, problem[:400])]
    if expected is not None and (cache.paths, cache.params, cache.shard_size) != expected:
        problem = "lists other images, parameters or shard size than the folder's key stands for"
        return None, [Damage(manifest_path, f"{problem}; expected the manifest of this folder's cache")]
    shape = cache.image_shape
    found = (check_shard(directory / record.file, record, shape, checksum=checksums) for record in cache.shards)
    return cache, [damage for damage in found if damage is not None]


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _check_root(root: Path) -> None:
    """Refuse a cache root that is (or lies under) something other than a folder, naming it."""
    for folder in (root, *root.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                where = "is" if folder == root else f"lies under {folder}, which is"
                raise StorageError(
                    f"{root}: the cache folder {where} not a folder; expected a folder for preprocessing caches "
                    "(set MEDBENCH_CACHE_DIR to one; the default is <data dir>/cache)"
                )
            return


_STORAGE_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOTDIR,
    errno.EEXIST,
    errno.EISDIR,
}


@contextmanager
def _storage_errors(directory: Path) -> Iterator[None]:
    """Turn a failed write in `directory` (full disk, read-only or foreign folder) into one StorageError."""
    try:
        yield
    except StorageError:
        raise
    except OSError as error:
        if error.errno not in _STORAGE_ERRNOS:
            raise
        kept = len(list(directory.glob("shard-*.json"))) if directory.is_dir() else 0
        raise StorageError(
            f"cannot write {error.filename or directory}: {error.strerror or os.strerror(error.errno)}; expected a "
            f"writable cache folder with free space. {kept} finished shard(s) are kept in {directory} and the next "
            "build reuses them: free space or fix the folder's permissions, then run the same command again"
        ) from None


def build_cache(
    paths: Sequence[str | os.PathLike[str]],
    params: SampleParams,
    cache_root: str | os.PathLike[str],
    *,
    workers: int | None = None,
    strict: bool = False,
    progress: bool = True,
    shard_size: int | None = None,
    verify: bool = False,
) -> ImageCache:
    """Preprocess `paths` (duplicates dropped, order kept) into ``cache_root/<key>/``, or reuse that cache.

    An existing complete cache returns at once, after its shards' sizes and headers are checked against
    the manifest (``verify=True`` checks every shard's checksum too). Damaged shards, or a damaged
    manifest, are rebuilt with a warning naming each file: a damaged shard is never read. A build
    interrupted earlier keeps its finished shards. Two processes building the same cache take turns on
    a file lock; the second reuses the first's work. Unreadable images are stored as zeros and listed
    in ``report.json`` and `ImageCache.failed`; with ``strict=True`` one ImageError names all of them
    (the cache is still completed, so a fixed dataset or a non-strict run does not redo the work).
    `workers` threads preprocess (default: one per core). `shard_size` (samples per shard file, default
    `default_shard_size`) is part of the key. `params` are a `PreprocessParams` (images) or a `VolumeParams`
    (volumes, read and preprocessed by `preprocess_volume`). A cache folder that cannot be written when a
    build is needed is one StorageError.
    """
    sources = _unique(paths)
    shard_size = default_shard_size(params) if shard_size is None else shard_size
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS
    ):
        raise ConfigError(f"workers {shown(workers)}: expected a whole number of threads in 1..{MAX_WORKERS}")
    workers = workers or os.cpu_count() or 1
    if shard_size < 1:
        raise ConfigError(f"shard_size {shard_size}: expected a positive number of images per shard")
    root = Path(cache_root)
    _check_root(root)
    directory = root / cache_key(sources, params, shard_size)
    manifest = directory / MANIFEST
    expected = sources, params, shard_size
    cache, damage, seen = None, [], _signature(manifest)
    if seen is not None:
        cache, damage = _inspect(directory, checksums=verify, expected=expected)
    summary = None
    if cache is None or damage:
        _require_room(directory, sources, params, damage)
        with _storage_errors(directory):
            directory.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(directory / LOCK))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                logger.info("waiting for another process building the cache %s", directory)
                lock.acquire()
            try:
                if _signature(manifest) != seen:  # another process finished or repaired it meanwhile
                    seen = _signature(manifest)
                    cache, damage = _inspect(directory, checksums=verify, expected=expected) if seen else (None, [])
                if cache is None or damage:
                    summary = _rebuild(directory, sources, params, shard_size, workers, progress, cache, damage)
            finally:
                lock.release()
        cache = ImageCache.open(directory)
    checked = len(cache.shards) if verify and seen is not None else 0
    cache.summary = summary or BuildSummary(reused=len(cache), failed=len(cache.failed), cache_reused=True)
    cache.summary = replace(cache.summary, verified=checked, damaged=tuple(str(item) for item in damage))
    if cache.paths != sources:
        raise DatasetError("the cache lists other images than were asked for (hash collision?)", file=directory)
    if cache.failed:
        logger.warning("%d image(s) could not be preprocessed; see %s", len(cache.failed), cache.report_path)
        if strict:
            raise _strict_error(cache)
    return cache


def _require_room(directory: Path, sources: tuple[str, ...], params: SampleParams, damage: list[Damage]) -> None:
    """Refuse a build whose shards cannot fit on the cache's disk, before an image is read.

    The estimate is the pixels of every image less the intact shard files already in the folder (a build
    interrupted earlier keeps them), so it is a lower bound: manifests and per-shard records come on top.
    """
    per_image = sample_bytes(params)
    damaged = {item.path for item in damage}
    kept = sum(path.stat().st_size for path in directory.glob("shard-*.npy") if path not in damaged)
    need = len(sources) * per_image - kept
    require_disk(
        need,
        directory,
        f"the cache of {len(sources):,} image(s) at {sample_text(params)}",
        advice="free disk space, point MEDBENCH_CACHE_DIR at a larger disk, or use a smaller image size (D)",
    )


def _rebuild(
    directory: Path,
    sources: tuple[str, ...],
    params: SampleParams,
    shard_size: int,
    workers: int,
    progress: bool,
    cache: ImageCache | None,
    damage: list[Damage],
) -> BuildSummary:
    """Build the missing shards and rebuild the damaged ones (each named in a warning), holding the lock."""
    for item in damage:
        logger.warning("damaged cache file %s; rebuilding it", item)
    damaged = {item.path.name for item in damage}
    rebuild = frozenset(i for i, record in enumerate(cache.shards if cache else ()) if record.file in damaged)
    started = time.monotonic()
    summary = build_shards(directory, sources, params, shard_size, workers, progress, rebuild)
    logger.info(
        "cache %s: %d image(s) built, %d reused, %d failed in %.1f s",
        directory,
        summary.computed,
        summary.reused,
        summary.failed,
        time.monotonic() - started,
    )
    return summary
