"""The preprocessing cache: every image of a dataset preprocessed once, stored as memory-mapped uint8 shards.

A cache lives in ``<cache root>/<key>/``. The key is a hash of the ordered source files (path, size,
modification time), every `PreprocessParams` field and `CACHE_FORMAT_VERSION`, so any change to an
image or a parameter gives a new folder and an unchanged dataset reuses the old one without touching a
pixel. Images are stored in fixed-size shards ``shard-NNNNN.npy`` of shape (n, size, size, channels),
read back with ``np.load(mmap_mode="r")`` (the fastest of .npy shards, PNG files and TFRecord when fed
to tf.data). Each shard is written under a temporary name, fsynced and renamed, so a build killed
half-way keeps its finished shards and the next build computes only the missing ones; `manifest.json`
is written last and marks the cache complete: a folder without it is never read. Unreadable images are
listed in `report.json`, stored as zeros and refused by `ImageCache.rows`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from medbench.atomic import TEMP_SUFFIX, write_atomic
from medbench.errors import ConfigError, DatasetError, ImageError
from medbench.preprocessing.params import PreprocessParams, preprocess_image

logger = logging.getLogger(__name__)

__all__ = [
    "CACHE_FORMAT_VERSION",
    "BuildSummary",
    "ImageCache",
    "build_cache",
    "cache_key",
]

CACHE_FORMAT_VERSION = 1
SHARD_SIZE = 512
KEY_LENGTH = 16
MANIFEST = "manifest.json"
REPORT = "report.json"
LOCK = ".lock"
_AHEAD_BYTES = 256 * 2**20  # preprocessed images held ahead of the shard being filled


@dataclass(frozen=True)
class BuildSummary:
    """What one `build_cache` call did: images computed now, taken from finished shards, or failed."""

    computed: int = 0
    reused: int = 0
    failed: int = 0
    shards_written: int = 0
    shards_reused: int = 0
    cache_reused: bool = False


# --------------------------------------------------------------------------------------------------
# Keys and files
# --------------------------------------------------------------------------------------------------


def _fingerprint(path: str) -> tuple[str, int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return path, -1, -1
    return path, stat.st_size, stat.st_mtime_ns


def cache_key(paths: Sequence[str], params: PreprocessParams, shard_size: int = SHARD_SIZE) -> str:
    """Short sha256 hex of the ordered sources (path, size, mtime_ns), the params and the storage format."""
    digest = hashlib.sha256()
    header = {"format_version": CACHE_FORMAT_VERSION, "shard_size": shard_size, "params": params.to_dict()}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for path in paths:
        name, size, mtime = _fingerprint(path)
        digest.update(f"\0{name}\0{size}\0{mtime}".encode())
    return digest.hexdigest()[:KEY_LENGTH]


def _unique(paths: Sequence[str | os.PathLike[str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(os.fspath(path) for path in paths))


def _shard_name(index: int) -> str:
    return f"shard-{index:05d}.npy"


def _failures_name(index: int) -> str:
    return f"shard-{index:05d}.json"


def _write_json(target: Path, data: Any) -> None:
    write_atomic(target, lambda file: file.write(json.dumps(data, indent=1).encode("utf-8")))


def _shard_ranges(count: int, shard_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + shard_size, count)) for start in range(0, count, shard_size)]


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class ImageCache:
    """A complete cache: preprocessed uint8 images of `paths`, row i holding `paths[i]`."""

    directory: Path
    params: PreprocessParams
    paths: tuple[str, ...]
    failed: dict[str, str]
    shard_size: int = SHARD_SIZE
    summary: BuildSummary = field(default_factory=BuildSummary)
    _shards: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _index: Any = field(default=None, repr=False)
    _failed_rows: np.ndarray | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> ImageCache:
        """Open a cache folder; refuses one whose build has not finished (no manifest)."""
        directory = Path(directory)
        manifest_path = directory / MANIFEST
        if not manifest_path.is_file():
            raise DatasetError(
                f"no {MANIFEST}: the cache was never completed (run `medbench preprocess` or build_cache again)",
                file=directory,
            )
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format_version") != CACHE_FORMAT_VERSION:
            raise DatasetError(
                f"cache format {manifest.get('format_version')!r}; expected {CACHE_FORMAT_VERSION} (rebuild it)",
                file=manifest_path,
            )
        return cls(
            directory=directory,
            params=PreprocessParams.from_dict(manifest["params"]),
            paths=tuple(manifest["paths"]),
            failed=dict(manifest["failed"]),
            shard_size=int(manifest["shard_size"]),
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        size = self.params.image_size
        return size, size, self.params.channels

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
                    shard = np.load(self.directory / _shard_name(index), mmap_mode="r")
                    self._shards[index] = shard
        return shard

    def images(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """uint8 (n, size, size, channels) images of `rows`, gathered shard by shard in sorted order."""
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


def _reason(path: str, error: Exception) -> str:
    message = str(error)
    if isinstance(error, ImageError):
        return message.removeprefix(f"{path}: ")
    return f"preprocessing failed ({type(error).__name__}: {message})"


def _preprocess_one(path: str, params: PreprocessParams) -> tuple[np.ndarray | None, str | None]:
    try:
        image = preprocess_image(path, params)
    except (ImageError, cv2.error, ValueError) as error:
        return None, _reason(path, error)
    return image, None


def _finished_shard(directory: Path, index: int, rows: int, shape: tuple[int, int, int]) -> dict[str, str] | None:
    """The failures of shard `index` when it is complete and has the expected shape, else None."""
    shard_path, failures_path = directory / _shard_name(index), directory / _failures_name(index)
    if not (shard_path.is_file() and failures_path.is_file()):
        return None
    try:
        shard = np.load(shard_path, mmap_mode="r")
        failures = json.loads(failures_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if shard.dtype != np.uint8 or shard.shape != (rows, *shape):
        return None
    return dict(failures["failed"])


def _remove_temporaries(directory: Path) -> None:
    for temp in directory.glob(f".*{TEMP_SUFFIX}"):
        logger.info("removing %s, left by an interrupted build", temp)
        temp.unlink(missing_ok=True)


def _results(
    paths: list[str], params: PreprocessParams, workers: int, ahead: int
) -> Iterator[tuple[np.ndarray | None, str | None]]:
    """Preprocess `paths` in order, in this thread or on `workers` threads, at most `ahead` images ahead.

    Threads, not processes: OpenCV releases the GIL while decoding, converting and resizing, so threads
    scale like processes without their start-up cost (and die with the process). OpenCV's own threading
    is turned off meanwhile, as it only competes with the pool for the same cores.
    """
    if workers <= 1 or len(paths) <= 1:
        for path in paths:
            yield _preprocess_one(path, params)
        return
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    pending: deque[Future[tuple[np.ndarray | None, str | None]]] = deque()
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="medbench-preprocess") as pool:
            try:
                for path in paths:
                    if len(pending) >= ahead:
                        yield pending.popleft().result()
                    pending.append(pool.submit(_preprocess_one, path, params))
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()
    finally:
        cv2.setNumThreads(threads)


def _build(
    directory: Path, paths: tuple[str, ...], params: PreprocessParams, shard_size: int, workers: int, progress: bool
) -> BuildSummary:
    """Compute the missing shards of `directory` (holding its lock), then write the report and the manifest."""
    _remove_temporaries(directory)
    shape = (params.image_size, params.image_size, params.channels)
    ranges = _shard_ranges(len(paths), shard_size)
    failed: dict[str, str] = {}
    missing: list[int] = []
    for index, (start, stop) in enumerate(ranges):
        done = _finished_shard(directory, index, stop - start, shape)
        if done is None:
            missing.append(index)
        else:
            failed.update(done)
    todo = [path for index in missing for path in paths[slice(*ranges[index])]]
    reused = len(paths) - len(todo)
    if reused:
        logger.info(
            "cache %s: %d finished shard(s) reused, %d to build",
            directory.name,
            len(ranges) - len(missing),
            len(missing),
        )
    image_bytes = max(1, int(np.prod(shape)))
    ahead = max(4 * workers, min(2 * shard_size, _AHEAD_BYTES // image_bytes))
    results = _results(todo, params, workers, ahead)
    bar = tqdm(total=len(todo), desc=f"preprocessing {directory.name}", unit="img", disable=not progress)
    blank = np.zeros(shape, dtype=np.uint8)
    computed = 0

    def stream_shard(file: BinaryIO, index: int) -> None:
        """Write shard `index` row by row as its images arrive (no shard-sized copy, no write burst at the
        end), then its failures file, so that a shard file never exists without one."""
        nonlocal computed
        start, stop = ranges[index]
        header = {"descr": np.lib.format.dtype_to_descr(blank.dtype), "fortran_order": False}
        np.lib.format.write_array_header_1_0(file, {**header, "shape": (stop - start, *shape)})
        shard_failed: dict[str, str] = {}
        for row in range(start, stop):
            image, reason = next(results)
            if image is None:
                shard_failed[paths[row]] = str(reason)
                image = blank
            else:
                computed += 1
            file.write(memoryview(image).cast("B"))
            bar.update(1)
        _write_json(directory / _failures_name(index), {"rows": [start, stop], "failed": shard_failed})
        failed.update(shard_failed)

    try:
        for index in missing:
            write_atomic(directory / _shard_name(index), lambda file, index=index: stream_shard(file, index))
    finally:
        results.close()
        bar.close()
    created = datetime.now(UTC).isoformat()
    failed = {path: failed[path] for path in paths if path in failed}
    _write_json(
        directory / REPORT, {"cache": str(directory), "created": created, "count": len(paths), "failed": failed}
    )
    _write_json(
        directory / MANIFEST,
        {
            "format_version": CACHE_FORMAT_VERSION,
            "key": directory.name,
            "created": created,
            "params": params.to_dict(),
            "count": len(paths),
            "shard_size": shard_size,
            "image_shape": list(shape),
            "shards": [
                {"file": _shard_name(i), "start": start, "stop": stop} for i, (start, stop) in enumerate(ranges)
            ],
            "failed": failed,
            "paths": list(paths),
        },
    )
    return BuildSummary(
        computed=computed,
        reused=reused,
        failed=len(failed),
        shards_written=len(missing),
        shards_reused=len(ranges) - len(missing),
    )


def _strict_error(cache: ImageCache) -> ImageError:
    listing = "\n".join(f"  {path}: {reason}" for path, reason in cache.failed.items())
    return ImageError(
        f"{len(cache.failed)} of {len(cache)} image(s) cannot be preprocessed (listed in {cache.report_path}):\n"
        + listing
    )


def build_cache(
    paths: Sequence[str | os.PathLike[str]],
    params: PreprocessParams,
    cache_root: str | os.PathLike[str],
    *,
    workers: int | None = None,
    strict: bool = False,
    progress: bool = True,
    shard_size: int = SHARD_SIZE,
) -> ImageCache:
    """Preprocess `paths` (duplicates dropped, order kept) into ``cache_root/<key>/``, or reuse that cache.

    An existing complete cache returns at once. A build interrupted earlier keeps its finished shards.
    Two processes building the same cache take turns on a file lock; the second reuses the first's work.
    Unreadable images are stored as zeros and listed in ``report.json`` and `ImageCache.failed`; with
    ``strict=True`` one ImageError names all of them (the cache is still completed, so a fixed dataset
    or a non-strict run does not redo the work). `workers` threads preprocess (default: one per core).
    `shard_size` (images per shard file) is part of the key.
    """
    sources = _unique(paths)
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    if shard_size < 1:
        raise ConfigError(f"shard_size {shard_size}: expected a positive number of images per shard")
    directory = Path(cache_root) / cache_key(sources, params, shard_size)
    if (directory / MANIFEST).is_file():
        cache = ImageCache.open(directory)
        cache.summary = BuildSummary(reused=len(cache), failed=len(cache.failed), cache_reused=True)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(directory / LOCK))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            logger.info("waiting for another process building the cache %s", directory)
            lock.acquire()
        try:
            if (directory / MANIFEST).is_file():
                summary = None
            else:
                started = time.monotonic()
                summary = _build(directory, sources, params, shard_size, workers, progress)
                logger.info(
                    "cache %s: %d image(s) built, %d reused, %d failed in %.1f s",
                    directory,
                    summary.computed,
                    summary.reused,
                    summary.failed,
                    time.monotonic() - started,
                )
        finally:
            lock.release()
        cache = ImageCache.open(directory)
        cache.summary = summary or BuildSummary(reused=len(cache), failed=len(cache.failed), cache_reused=True)
    if cache.paths != sources:
        raise DatasetError("the cache lists other images than were asked for (hash collision?)", file=directory)
    if cache.failed:
        logger.warning("%d image(s) could not be preprocessed; see %s", len(cache.failed), cache.report_path)
        if strict:
            raise _strict_error(cache)
    return cache
