"""Files medbench writes get the mode the umask gives, so another user or container UID can read them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from medbench.atomic import copy_atomic, write_bytes_atomic, write_json_atomic, write_saved_atomic
from medbench.preprocessing.cache import build_cache
from medbench.preprocessing.params import PreprocessParams
from medbench.tracking.logs import ExperimentLog


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writers_keep_the_umask_mode(tmp_path: Path, umask: int) -> None:
    expected = 0o666 & ~umask
    write_bytes_atomic(tmp_path / "a.bin", b"x")
    write_json_atomic(tmp_path / "b.json", {"a": 1})
    copy_atomic(tmp_path / "a.bin", tmp_path / "c.bin")
    write_saved_atomic(tmp_path / "d.keras", lambda temp: temp.write_bytes(b"model"))
    for name in ("a.bin", "b.json", "c.bin", "d.keras"):
        assert mode(tmp_path / name) == expected, name
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_logs_and_cache_shards_keep_the_umask_mode(tmp_path: Path, umask: int) -> None:
    expected = 0o666 & ~umask
    log = ExperimentLog(tmp_path / "logs" / "experiments.json")
    log.append({"id": "run-1", "status": "completed"})
    images = []
    for index in range(3):
        path = tmp_path / "images" / f"{index}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), np.full((40, 40), 30 * index, dtype=np.uint8))
        images.append(path)
    cache = build_cache(images, PreprocessParams(32, channels=1), tmp_path / "cache", workers=1, progress=False)
    written = [log.path, *(path for path in Path(cache.directory).iterdir() if path.is_file())]
    assert len(written) >= 3
    for path in written:
        assert mode(path) == expected, path.name
