"""A damaged preprocessing cache is found, named and rebuilt, never read; a cache folder that cannot be
written is one clear error.

Caches are built on tiny real images and damaged for real: a shard cut short, a byte flipped, a shard
deleted, a manifest broken. Full and read-only disks are real tmpfs mounts (as in tests/test_disk.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_process import run_medbench

from medbench.benchmark import Benchmark
from medbench.errors import DatasetError, StorageError
from medbench.preprocessing import ImageCache, PreprocessParams, build_cache
from medbench.preprocessing.cache import MANIFEST
from medbench.preprocessing.dataset_cache import build_benchmark_cache
from medbench.settings import Settings

PARAMS = PreprocessParams(16)
BENCHMARK = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"


def _images(folder: Path, count: int = 10) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for index in range(count):
        path = folder / f"img{index:03d}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (24 + index, 20), dtype=np.uint8))
        paths.append(str(path))
    return paths


def _build(paths: list[str], root: Path, **options: object) -> ImageCache:
    return build_cache(paths, PARAMS, root, workers=1, progress=False, shard_size=4, **options)


@pytest.fixture
def sources(tmp_path: Path) -> list[str]:
    return _images(tmp_path / "images")


@pytest.fixture
def cache(tmp_path: Path, sources: list[str]) -> ImageCache:
    return _build(sources, tmp_path / "cache")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _flip_header(path: Path) -> None:
    _flip(path, 0)  # the .npy magic byte: the size is unchanged


def _flip_pixel(path: Path) -> None:
    _flip(path, path.stat().st_size - 5)


def _same_images(cache: ImageCache, paths: list[str], root: Path) -> None:
    fresh = _build(paths, root)
    rows = np.arange(len(paths))
    np.testing.assert_array_equal(cache.images(rows), fresh.images(rows))


# --------------------------------------------------------------------------------------------------
# The manifest records sizes and checksums; open checks sizes and headers
# --------------------------------------------------------------------------------------------------


def test_manifest_records_each_shard_size_and_checksum(cache: ImageCache) -> None:
    manifest = json.loads((cache.directory / MANIFEST).read_text())
    assert manifest["format_version"] == 2
    assert [entry["file"] for entry in manifest["shards"]] == ["shard-00000.npy", "shard-00001.npy", "shard-00002.npy"]
    for entry in manifest["shards"]:
        data = (cache.directory / entry["file"]).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["blake2b"] == hashlib.blake2b(data, digest_size=32).hexdigest()
        record = json.loads((cache.directory / entry["file"].replace(".npy", ".json")).read_text())
        assert (record["bytes"], record["blake2b"]) == (entry["bytes"], entry["blake2b"])


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_truncate, "is 1052 bytes; expected 1152 bytes (cut short, or written over)"),
        (Path.unlink, "is missing; expected a shard of 1152 bytes"),
        (_flip_header, "has no readable .npy header"),
    ],
    ids=["truncated", "deleted", "header-byte-flipped"],
)
def test_open_names_a_damaged_shard(cache: ImageCache, damage: Callable[[Path], None], problem: str) -> None:
    shard = cache.directory / "shard-00001.npy"
    damage(shard)
    with pytest.raises(DatasetError) as error:
        ImageCache.open(cache.directory)
    message = str(error.value)
    assert message.startswith(f"{cache.directory}: the cache is damaged (1 file(s))")
    assert f"  {shard}: {problem}" in message
    assert "shard-00000.npy" not in message and "shard-00002.npy" not in message


def _manifest(cache: ImageCache) -> dict:
    return json.loads((cache.directory / MANIFEST).read_text())


MANIFEST_DAMAGE: dict[str, tuple[Callable[[dict], str], str]] = {
    "not-json": (lambda manifest: json.dumps(manifest)[:-30], "is not JSON (Unterminated string"),
    "a-list": (lambda manifest: "[]", "holds list, not an object"),
    "no-shards": (lambda manifest: json.dumps({**manifest, "shards": None}), "field 'shards' is None; expected list"),
    "size-as-text": (
        lambda manifest: json.dumps({**manifest, "shards": [{**manifest["shards"][0], "bytes": "1152"}]}),
        "a shard entry's field 'bytes' is '1152'; expected int",
    ),
    "huge-count": (
        lambda manifest: json.dumps({**manifest, "count": 10**15}),
        "its shard list (names and rows), count (1000000000000000), shard_size (4) and paths (10) do not agree",
    ),
    "shard-outside": (
        lambda manifest: json.dumps(
            {**manifest, "shards": [{**entry, "file": "../x.npy"} for entry in manifest["shards"]]}
        ),
        "its shard list (names and rows), count (10), shard_size (4) and paths (10) do not agree",
    ),
}


@pytest.mark.parametrize("kind", sorted(MANIFEST_DAMAGE))
def test_open_names_a_damaged_manifest(cache: ImageCache, kind: str) -> None:
    rewrite, problem = MANIFEST_DAMAGE[kind]
    path = cache.directory / MANIFEST
    path.write_text(rewrite(_manifest(cache)))
    with pytest.raises(DatasetError) as error:
        ImageCache.open(cache.directory)
    assert f"  {path}: {problem}" in str(error.value)


# --------------------------------------------------------------------------------------------------
# build_cache (the training path) rebuilds what is damaged, with a warning
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage", [_truncate, Path.unlink, _flip_header], ids=["truncated", "deleted", "header-byte-flipped"]
)
def test_build_rebuilds_a_damaged_shard_with_a_warning(
    tmp_path: Path, sources: list[str], cache: ImageCache, damage: Callable[[Path], None], caplog
) -> None:
    shard = cache.directory / "shard-00001.npy"
    untouched = {name: (cache.directory / name).stat().st_ino for name in ("shard-00000.npy", "shard-00002.npy")}
    damage(shard)
    with caplog.at_level(logging.WARNING, logger="medbench.preprocessing.cache"):
        again = _build(sources, tmp_path / "cache")
    warnings = [record.getMessage() for record in caplog.records if "damaged cache file" in record.getMessage()]
    assert len(warnings) == 1 and f"damaged cache file {shard}: " in warnings[0]
    assert warnings[0].endswith("; rebuilding it")
    assert again.summary.shards_written == 1 and again.summary.computed == 4
    assert again.summary.damaged and again.summary.damaged[0].startswith(f"{shard}: ")
    assert {name: (cache.directory / name).stat().st_ino for name in untouched} == untouched
    _same_images(again, sources, tmp_path / "fresh")
    assert not _build(sources, tmp_path / "cache").summary.damaged


@pytest.mark.parametrize("kind", sorted(MANIFEST_DAMAGE))
def test_build_rebuilds_a_damaged_manifest_reusing_intact_shards(
    tmp_path: Path, sources: list[str], cache: ImageCache, kind: str, caplog
) -> None:
    rewrite, problem = MANIFEST_DAMAGE[kind]
    path = cache.directory / MANIFEST
    path.write_text(rewrite(_manifest(cache)))
    with caplog.at_level(logging.WARNING, logger="medbench.preprocessing.cache"):
        again = _build(sources, tmp_path / "cache")
    assert any(f"damaged cache file {path}: {problem}" in record.getMessage() for record in caplog.records)
    assert again.summary.shards_written == 0 and again.summary.reused == len(sources)
    assert _manifest(again)["shards"] == _manifest(_build(sources, tmp_path / "fresh"))["shards"]
    _same_images(again, sources, tmp_path / "fresh")


def test_a_flipped_shard_byte_under_a_broken_manifest_is_not_reused(
    tmp_path: Path, sources: list[str], cache: ImageCache
) -> None:
    (cache.directory / MANIFEST).write_text("{")
    _flip_pixel(cache.directory / "shard-00002.npy")
    again = _build(sources, tmp_path / "cache")
    assert again.summary.shards_written == 1
    _same_images(again, sources, tmp_path / "fresh")


def test_verify_finds_a_flipped_pixel_byte_that_open_cannot(
    tmp_path: Path, sources: list[str], cache: ImageCache
) -> None:
    shard = cache.directory / "shard-00002.npy"
    _flip_pixel(shard)
    assert not _build(sources, tmp_path / "cache").summary.damaged  # same size, same header: sizes cannot tell
    again = _build(sources, tmp_path / "cache", verify=True)
    assert again.summary.verified == 3 and again.summary.shards_written == 1
    (damage,) = again.summary.damaged
    assert damage.startswith(f"{shard}: blake2b checksum ") and "differs from the recorded" in damage
    _same_images(again, sources, tmp_path / "fresh")
    assert not _build(sources, tmp_path / "cache", verify=True).summary.damaged


def test_a_failed_shard_read_names_the_shard_and_checks_its_checksum(cache: ImageCache) -> None:
    shard = cache.directory / "shard-00001.npy"
    size = shard.stat().st_size
    shard.write_bytes(b"\0" * size)  # replaced after the cache was opened, before its first read
    with pytest.raises(DatasetError) as error:
        cache.images(np.array([5]))
    message = str(error.value)
    assert message.startswith(f"{shard}: cannot be read (ValueError: ")
    assert "; it has no readable .npy header" in message
    assert message.endswith(
        "run the same command again to rebuild a damaged shard (or `medbench preprocess BENCHMARK --verify`)"
    )


# --------------------------------------------------------------------------------------------------
# The command line: preprocess --verify, a cache folder that is a file, read-only or full
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def cache_settings(settings: Settings, tmp_path: Path) -> Settings:
    return replace(settings, cache_dir=tmp_path / "cache")


def _error_lines(stderr: str) -> list[str]:
    return [line[line.index("medbench: error:") :] for line in stderr.splitlines() if "medbench: error:" in line]


def test_preprocess_verify_names_rebuilds_and_summarises(cache_settings: Settings, tmp_path: Path) -> None:
    benchmark = Benchmark.from_name(BENCHMARK)
    cache = build_benchmark_cache(benchmark, cache_settings, progress=False)
    shard = cache.directory / "shard-00000.npy"
    _flip_pixel(shard)
    result = run_medbench(["preprocess", BENCHMARK, "--verify"], cache_settings)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"damaged {shard}: blake2b checksum ") and lines[0].endswith(" (rebuilt)")
    assert lines[-1] == "verified 1 shard(s): 0 intact, 1 damaged file(s) rebuilt"
    assert "Traceback" not in result.stderr
    repaired = ImageCache.open(cache.directory)
    fresh = build_benchmark_cache(benchmark, replace(cache_settings, cache_dir=tmp_path / "fresh"), progress=False)
    rows = np.arange(len(fresh))
    np.testing.assert_array_equal(repaired.images(rows), fresh.images(rows))
    again = run_medbench(["preprocess", BENCHMARK, "--verify"], cache_settings)
    assert (
        again.returncode == 0
        and again.stdout.splitlines()[-1] == "verified 1 shard(s): 1 intact, 0 damaged file(s) rebuilt"
    )


def test_cache_dir_that_is_a_file_is_one_error(settings: Settings, tmp_path: Path, sources: list[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_bytes(b"user data")
    expected = (
        "the cache folder {where} not a folder; expected a folder for preprocessing caches "
        "(set MEDBENCH_CACHE_DIR to one; the default is <data dir>/cache)"
    )
    for root, where in [(afile, "is"), (afile / "below", f"lies under {afile}, which is")]:
        with pytest.raises(StorageError) as error:
            _build(sources, root)
        assert str(error.value) == f"{root}: " + expected.format(where=where)
    for cache_dir in (afile, afile / "below"):  # the first is refused by Settings, the second here
        result = run_medbench(["preprocess", BENCHMARK], replace(settings, cache_dir=cache_dir))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        (line,) = _error_lines(result.stderr)
        assert str(afile) in line and "expected a folder" in line
    assert line == f"medbench: error: {afile / 'below'}: " + expected.format(where=f"lies under {afile}, which is")
    assert afile.read_bytes() == b"user data"


def _mount(target: Path, options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount a tmpfs with the given options at tmp_path/mnt (skips where mounting is not allowed)."""
    target = tmp_path / "mnt"

    def mount(options: str) -> Path:
        if not _mount(target, options):
            pytest.skip("needs root and permission to mount a tmpfs (a real full or read-only disk)")
        return target

    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def test_read_only_cache_folder_is_one_error_and_an_intact_cache_still_opens(
    cache_settings: Settings, mounted: Callable[[str], Path]
) -> None:
    folder = mounted("size=1m,ro")
    result = run_medbench(["preprocess", BENCHMARK], replace(cache_settings, cache_dir=folder))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = _error_lines(result.stderr)
    assert line.startswith(f"medbench: error: cannot write {folder}/")
    assert "Read-only file system; expected a writable cache folder with free space" in line
    subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
    assert run_medbench(["preprocess", BENCHMARK], replace(cache_settings, cache_dir=folder)).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    reused = run_medbench(["preprocess", BENCHMARK, "--verify"], replace(cache_settings, cache_dir=folder))
    assert reused.returncode == 0, reused.stderr
    assert reused.stdout.splitlines()[-1] == "verified 1 shard(s): 1 intact, 0 damaged file(s) rebuilt"


def test_a_cache_larger_than_the_free_disk_is_refused_with_the_estimate_before_work(
    cache_settings: Settings, mounted: Callable[[str], Path]
) -> None:
    folder = mounted("size=2m")
    big = BENCHMARK.replace("_D32_", "_D256_")  # 143 images of 64 KiB: 9 MiB, more than the disk holds
    result = run_medbench(["preprocess", big], replace(cache_settings, cache_dir=folder))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = _error_lines(result.stderr)
    assert line.startswith("medbench: error: the cache of 143 image(s) at 256 px needs 9 MiB of disk in ")
    assert f" in {folder}/" in line and " and 2 MiB is free; expected less: free disk space" in line
    assert list(folder.iterdir()) == [], "nothing is written before the estimate passes"


def test_full_disk_while_preprocessing_is_one_error(cache_settings: Settings, mounted: Callable[[str], Path]) -> None:
    folder = mounted("size=1212k")
    big = BENCHMARK.replace("_D32_", "_D93_")  # 143 images of 8649 bytes fit the 1212 KiB free; the records do not
    result = run_medbench(["preprocess", big], replace(cache_settings, cache_dir=folder))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = _error_lines(result.stderr)
    assert line.startswith(f"medbench: error: cannot write {folder}/")
    assert "No space left on device; expected a writable cache folder with free space." in line
    assert not [path for path in folder.rglob("*") if path.name.endswith(".tmp")]


def test_full_disk_keeps_finished_shards_and_the_next_build_reuses_them(
    sources: list[str], mounted: Callable[[str], Path]
) -> None:
    folder = mounted("size=64k")
    paths = _images(folder.parent / "big", 12)
    params = PreprocessParams(64)  # 4 KiB per image, 16 KiB per shard of 4: two shards fit in 64 KiB, not three
    with pytest.raises(StorageError) as error:
        build_cache(paths, params, folder, workers=1, progress=False, shard_size=4)
    (directory,) = [path for path in folder.iterdir() if path.is_dir()]
    kept = sorted(path.name for path in directory.glob("shard-*.npy"))
    assert "No space left on device" in str(error.value) and f"{len(kept)} finished shard(s) are kept" in str(
        error.value
    )
    assert 1 <= len(kept) < 3 and not [path for path in directory.iterdir() if path.name.endswith(".tmp")]
    stamps = {name: (directory / name).stat().st_ino for name in kept}
    subprocess.run(["mount", "-o", "remount,size=4m", str(folder)], check=True)
    cache = build_cache(paths, params, folder, workers=1, progress=False, shard_size=4)
    assert cache.summary.shards_reused == len(kept)
    assert {name: (directory / name).stat().st_ino for name in kept} == stamps


# --------------------------------------------------------------------------------------------------
# A real training run on a damaged cache
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_exec_on_a_damaged_cache_rebuilds_it_and_trains(cache_settings: Settings) -> None:
    cache = build_benchmark_cache(Benchmark.from_name(BENCHMARK), cache_settings, progress=False)
    shard = cache.directory / "shard-00000.npy"
    _truncate(shard)
    result = run_medbench(["exec", BENCHMARK], cache_settings)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"damaged cache file {shard}: is " in result.stderr and "; rebuilding it" in result.stderr
    assert "Traceback" not in result.stderr
    ImageCache.open(cache.directory)
