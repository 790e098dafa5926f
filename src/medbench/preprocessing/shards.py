"""Cache shards: preprocessing a cache folder's images in order and writing them, shard by shard.

A shard ``shard-NNNNN.npy`` is streamed row by row as its images arrive and hashed as it is written;
its ``shard-NNNNN.json`` (the rows' failures, its size and checksum) is written before the shard is
renamed into place, so a finished shard is always recorded, and a build resumed after a crash reuses
only shards that still match their record. `build_shards` ends with the report and the manifest.
"""

from __future__ import annotations

import io
import json
import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
from tqdm.auto import tqdm

from medbench.atomic import TEMP_SUFFIX, write_atomic
from medbench.errors import ImageError
from medbench.preprocessing.manifest import (
    CACHE_FORMAT_VERSION,
    CHECKSUM,
    MANIFEST,
    REPORT,
    ShardRecord,
    check_shard,
    new_checksum,
    shard_name,
)
from medbench.preprocessing.samples import SampleParams, params_to_dict, preprocess_sample, sample_shape

logger = logging.getLogger(__name__)

__all__ = ["BuildSummary", "build_shards"]

_AHEAD_BYTES = 256 * 2**20  # preprocessed images held ahead of the shard being filled


@dataclass(frozen=True)
class BuildSummary:
    """What one `build_cache` call did: images computed now, taken from finished shards, or failed.

    `damaged` lists each damaged cache file found (``"path: problem"``), all of them rebuilt;
    `verified` counts the shards whose checksum was checked (``verify=True``).
    """

    computed: int = 0
    reused: int = 0
    failed: int = 0
    shards_written: int = 0
    shards_reused: int = 0
    cache_reused: bool = False
    damaged: tuple[str, ...] = ()
    verified: int = 0


def _failures_name(index: int) -> str:
    return f"shard-{index:05d}.json"


def _write_json(target: Path, data: Any) -> None:
    write_atomic(target, lambda file: file.write(json.dumps(data, indent=1).encode("utf-8")))


def _shard_ranges(count: int, shard_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + shard_size, count)) for start in range(0, count, shard_size)]


def _reason(path: str, error: Exception) -> str:
    message = str(error)
    if isinstance(error, ImageError):
        return message.removeprefix(f"{path}: ")
    return f"preprocessing failed ({type(error).__name__}: {message})"


def _preprocess_one(path: str, params: SampleParams) -> tuple[np.ndarray | None, str | None]:
    try:
        image = preprocess_sample(path, params)
    except (ImageError, cv2.error, ValueError) as error:
        return None, _reason(path, error)
    return image, None


def _finished_shard(
    directory: Path, index: int, rows: tuple[int, int], shape: tuple[int, ...]
) -> tuple[dict[str, str], ShardRecord] | None:
    """The failures and record of shard `index` when it is complete and matches its own record
    (``shard-NNNNN.json``: size, header and checksum, so a shard reused from an unfinished build was
    never damaged), else None."""
    shard_path, failures_path = directory / shard_name(index), directory / _failures_name(index)
    if not (shard_path.is_file() and failures_path.is_file()):
        return None
    try:
        written = json.loads(failures_path.read_text(encoding="utf-8"))
        failures = {str(path): str(reason) for path, reason in dict(written["failed"]).items()}
        record = ShardRecord(shard_name(index), *rows, int(written["bytes"]), str(written[CHECKSUM]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if list(written.get("rows", ())) != list(rows) or check_shard(shard_path, record, shape, checksum=True):
        return None
    return failures, record


def _remove_temporaries(directory: Path) -> None:
    for temp in directory.glob(f".*{TEMP_SUFFIX}"):
        logger.info("removing %s, left by an interrupted build", temp)
        temp.unlink(missing_ok=True)


def _results(
    paths: list[str], params: SampleParams, workers: int, ahead: int
) -> Iterator[tuple[np.ndarray | None, str | None]]:
    """Preprocess `paths` in order, in this thread or on `workers` threads, at most `ahead` images ahead.

    Threads, not processes: OpenCV releases the GIL while decoding, converting and resizing, so threads
    scale like processes without their start-up cost (and die with the process). OpenCV's own threading
    is turned off meanwhile, as it only competes with the pool for the same cores. Volumes take the same
    pool (their file reads overlap at least).
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


def build_shards(
    directory: Path,
    paths: tuple[str, ...],
    params: SampleParams,
    shard_size: int,
    workers: int,
    progress: bool,
    rebuild: frozenset[int] = frozenset(),
) -> BuildSummary:
    """Compute the missing shards of `directory` and those in `rebuild` (holding its lock), then write the
    report and the manifest."""
    _remove_temporaries(directory)
    shape = sample_shape(params)
    ranges = _shard_ranges(len(paths), shard_size)
    failed: dict[str, str] = {}
    records: dict[int, ShardRecord] = {}
    missing: list[int] = []
    for index, rows in enumerate(ranges):
        done = None if index in rebuild else _finished_shard(directory, index, rows, shape)
        if done is None:
            missing.append(index)
        else:
            failed.update(done[0])
            records[index] = done[1]
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
        end), hashing what is written, then its failures file with its size and checksum, so that a shard
        file never exists without one."""
        nonlocal computed
        start, stop = ranges[index]
        header = io.BytesIO()
        descr = {"descr": np.lib.format.dtype_to_descr(blank.dtype), "fortran_order": False}
        np.lib.format.write_array_header_1_0(header, {**descr, "shape": (stop - start, *shape)})
        digest, size = new_checksum(), 0
        shard_failed: dict[str, str] = {}
        for row in range(-1, stop - start):
            if row < 0:
                data = memoryview(header.getvalue())
            else:
                image, reason = next(results)
                if image is None:
                    shard_failed[paths[start + row]] = str(reason)
                    image = blank
                else:
                    computed += 1
                data = memoryview(np.ascontiguousarray(image)).cast("B")
                bar.update(1)
            file.write(data)
            digest.update(data)
            size += data.nbytes
        record = ShardRecord(shard_name(index), start, stop, size, digest.hexdigest())
        _write_json(
            directory / _failures_name(index),
            {"rows": [start, stop], "failed": shard_failed, "bytes": size, CHECKSUM: record.checksum},
        )
        failed.update(shard_failed)
        records[index] = record

    try:
        for index in missing:
            write_atomic(directory / shard_name(index), lambda file, index=index: stream_shard(file, index))
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
            "params": params_to_dict(params),
            "count": len(paths),
            "shard_size": shard_size,
            "image_shape": list(shape),
            "shards": [records[index].to_dict() for index in range(len(ranges))],
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
