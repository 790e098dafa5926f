"""The preprocessing cache: deterministic pixels, keyed reuse, crash-safe shards, failures, locking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from medbench.data.images import decode_plain_image, read_image
from medbench.errors import ConfigError, DatasetError, ImageError
from medbench.preprocessing import ImageCache, PreprocessParams, build_cache, preprocess_image
from medbench.preprocessing.cache import MANIFEST, REPORT, cache_key
from medbench.preprocessing.params import decode_for
from medbench.preprocessing.transforms import compose

REPO = Path(__file__).resolve().parents[1]


def write_images(folder: Path, count: int, size: int = 48, seed: int = 0) -> list[str]:
    """Noisy grayscale PNGs of varying shapes, each with its own mean level."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        height, width = size + index % 5, size + (index * 3) % 7
        noise = rng.integers(0, 60, (height, width))
        image = np.clip(noise + (index * 37) % 190, 0, 255).astype(np.uint8)
        path = folder / f"img{index:04d}.png"
        cv2.imwrite(str(path), image)
        paths.append(str(path))
    return paths


def resized(image: np.ndarray, size: int) -> np.ndarray:
    interpolation = cv2.INTER_AREA if image.shape[0] * image.shape[1] >= size * size else cv2.INTER_LINEAR
    out = cv2.resize(image, (size, size), interpolation=interpolation)
    return out[:, :, None] if out.ndim == 2 else out


@pytest.fixture
def sources(tmp_path: Path) -> list[str]:
    return write_images(tmp_path / "images", 12)


# --------------------------------------------------------------------------------------------------
# preprocess_image
# --------------------------------------------------------------------------------------------------


def test_preprocess_gray_and_rgb(tmp_path: Path) -> None:
    rgb = np.zeros((30, 50, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 10  # RGB order
    path = tmp_path / "colour.png"
    cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR
    gray = preprocess_image(path, PreprocessParams(16))
    assert gray.shape == (16, 16, 1) and gray.dtype == np.uint8
    expected_luma = round(0.299 * 200 + 0.587 * 100 + 0.114 * 10)
    assert abs(int(gray[8, 8, 0]) - expected_luma) <= 1
    colour = preprocess_image(path, PreprocessParams(64, channels=3))
    assert colour.shape == (64, 64, 3)
    np.testing.assert_array_equal(colour[20, 20], [200, 100, 10])


def test_resize_shrinks_by_area_and_enlarges_bilinearly(tmp_path: Path) -> None:
    image = np.zeros((40, 40), np.uint8)
    image[:, ::2] = 255  # 1-px stripes: area averaging gives flat grey, nearest/linear sampling would not
    path = tmp_path / "stripes.png"
    cv2.imwrite(str(path), image)
    small = preprocess_image(path, PreprocessParams(20))
    assert np.all(np.abs(small.astype(int) - 128) <= 1)
    large = preprocess_image(path, PreprocessParams(80))
    np.testing.assert_array_equal(large, resized(image, 80))


@pytest.mark.parametrize("token", ["sharp21", "histeq", "clahe", "clahe3", "blur2", "median3", "window100w80"])
def test_preprocess_applies_each_transformation(sources: list[str], token: str) -> None:
    gray = cv2.imread(sources[3], cv2.IMREAD_GRAYSCALE)
    params = PreprocessParams(32, transformations=(token,))
    got = preprocess_image(sources[3], params)
    np.testing.assert_array_equal(got, resized(compose([token])(gray), 32))
    assert not np.array_equal(got, preprocess_image(sources[3], PreprocessParams(32)))


def test_transformations_apply_in_declared_order(sources: list[str]) -> None:
    first = preprocess_image(sources[0], PreprocessParams(32, transformations=("histeq", "blur2")))
    second = preprocess_image(sources[0], PreprocessParams(32, transformations=("blur2", "histeq")))
    assert not np.array_equal(first, second)


def test_crop_runs_before_the_transformations(sources: list[str]) -> None:
    crop = pytest.importorskip("medbench.preprocessing.crop", reason="preprocessing/crop.py not written yet")
    gray = cv2.imread(sources[5], cv2.IMREAD_GRAYSCALE)
    got = preprocess_image(sources[5], PreprocessParams(24, crop=True, transformations=("clahe",)))
    np.testing.assert_array_equal(got, resized(compose(["clahe"])(crop.crop_lung_field(gray)), 24))


def _slow_pixels(path: Path, channels: int) -> np.ndarray:
    rgb = read_image(path)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if channels == 1 else rgb


def test_opencv_fast_path_gives_the_pillow_path_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    gray, colour = rng.integers(0, 256, (37, 29), np.uint8), rng.integers(0, 256, (37, 29, 3), np.uint8)
    plain = {
        "gray.png": gray,
        "colour.png": colour,
        "gray.jpg": gray,
        "colour.jpg": colour,
        "progressive.jpg": colour,
    }
    for name, pixels in plain.items():
        extra = {"progressive": True} if name.startswith("progressive") else {}
        Image.fromarray(pixels).save(tmp_path / name, quality=90, **extra)
    for name in plain:
        assert decode_plain_image(tmp_path / name) is not None, name
        for channels in (1, 3):
            fast = decode_for(tmp_path / name, channels)
            np.testing.assert_array_equal(fast, _slow_pixels(tmp_path / name, channels), err_msg=name)


def test_unusual_files_take_the_pillow_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    colour = rng.integers(0, 256, (24, 20, 3), np.uint8)
    Image.fromarray(np.dstack([colour, colour[..., :1]]), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(colour).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(colour).convert("CMYK").save(tmp_path / "cmyk.jpg")
    cv2.imwrite(str(tmp_path / "deep.png"), rng.integers(0, 65536, (24, 20), np.uint16))
    Image.fromarray(colour[..., 0]).save(tmp_path / "transparent.png", transparency=7)
    Image.fromarray(colour).save(tmp_path / "padded.jpg")
    (tmp_path / "padded.jpg").write_bytes((tmp_path / "padded.jpg").read_bytes() + b"\0\0")
    Image.fromarray(colour).save(tmp_path / "image.bmp")
    for name in ["rgba.png", "palette.png", "cmyk.jpg", "deep.png", "transparent.png", "padded.jpg", "image.bmp"]:
        assert decode_plain_image(tmp_path / name) is None, name
        for channels in (1, 3):
            image = preprocess_image(tmp_path / name, PreprocessParams(16, channels=channels))
            assert image.shape == (16, 16, channels), name
            expected = resized(_slow_pixels(tmp_path / name, channels), 16)
            np.testing.assert_array_equal(image, expected, err_msg=name)


def test_cut_files_take_the_pillow_path_and_its_error(tmp_path: Path) -> None:
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (64, 64), np.uint8)).save(tmp_path / "a.jpg")
    cv2.imwrite(str(tmp_path / "a.png"), np.random.default_rng(6).integers(0, 256, (64, 64), np.uint8))
    for name in ["a.jpg", "a.png"]:
        data = (tmp_path / name).read_bytes()
        half, last_byte_gone = tmp_path / f"half-{name}", tmp_path / f"end-{name}"
        half.write_bytes(data[: len(data) // 2])
        last_byte_gone.write_bytes(data[:-1])  # Pillow refuses the JPEG, accepts the PNG: it decides, not OpenCV
        assert decode_plain_image(half) is None and decode_plain_image(last_byte_gone) is None
        with pytest.raises(ImageError, match="truncated or corrupt"):
            preprocess_image(half, PreprocessParams(16))
        if name.endswith(".jpg"):
            with pytest.raises(ImageError, match="truncated or corrupt"):
                preprocess_image(last_byte_gone, PreprocessParams(16))
        else:
            expected = resized(_slow_pixels(last_byte_gone, 1), 16)
            np.testing.assert_array_equal(preprocess_image(last_byte_gone, PreprocessParams(16)), expected)
    for missing in [tmp_path / "gone.png", tmp_path]:
        assert decode_plain_image(missing) is None


def test_params_are_checked() -> None:
    with pytest.raises(ConfigError, match="channels"):
        PreprocessParams(32, channels=2)
    with pytest.raises(ConfigError, match="image_size"):
        PreprocessParams(0)
    with pytest.raises(ValueError, match="sharpen"):
        PreprocessParams(32, transformations=("sharpen",))
    params = PreprocessParams(32, True, ["clahe"], 3)  # type: ignore[arg-type]
    assert params.transformations == ("clahe",)
    assert PreprocessParams.from_dict(json.loads(json.dumps(params.to_dict()))) == params


# --------------------------------------------------------------------------------------------------
# Keys and reuse
# --------------------------------------------------------------------------------------------------


def test_cache_holds_preprocess_image_pixels(tmp_path: Path, sources: list[str]) -> None:
    params = PreprocessParams(20, transformations=("clahe",))
    cache = build_cache(sources, params, tmp_path / "cache", workers=1, progress=False)
    assert len(cache) == len(sources) and cache.failed == {}
    assert cache.summary.computed == len(sources)
    wanted = [sources[7], sources[2], sources[7], sources[0]]
    images = cache.images(cache.rows(wanted))
    assert images.shape == (4, 20, 20, 1) and images.dtype == np.uint8
    for image, path in zip(images, wanted):
        np.testing.assert_array_equal(image, preprocess_image(path, params))
    assert cache.images(np.zeros(0, np.int64)).shape == (0, 20, 20, 1)


def test_second_build_reuses_without_work(tmp_path: Path, sources: list[str]) -> None:
    params = PreprocessParams(16)
    first = build_cache(sources, params, tmp_path / "cache", workers=1, progress=False)
    manifest = first.directory / MANIFEST
    stamp = manifest.stat().st_mtime_ns, json.loads(manifest.read_text())["created"]
    again = build_cache(sources, params, tmp_path / "cache", workers=1, progress=False)
    assert again.directory == first.directory
    assert again.summary.cache_reused and again.summary.computed == 0 and again.summary.shards_written == 0
    assert (manifest.stat().st_mtime_ns, json.loads(manifest.read_text())["created"]) == stamp
    duplicated = build_cache([*sources, sources[0]], params, tmp_path / "cache", workers=1, progress=False)
    assert duplicated.directory == first.directory and duplicated.summary.cache_reused


def test_any_changed_parameter_gives_a_new_folder(tmp_path: Path, sources: list[str]) -> None:
    base = PreprocessParams(16)
    variants = [
        base,
        PreprocessParams(17),
        PreprocessParams(16, transformations=("clahe",)),
        PreprocessParams(16, channels=3),
        PreprocessParams(16, crop=True),
    ]
    keys = {cache_key(sources, params) for params in variants}
    keys.add(cache_key(sources[::-1], base))  # the order of the sources is part of the key
    keys.add(cache_key(sources[:-1], base))
    keys.add(cache_key(sources, base, shard_size=4))
    assert len(keys) == len(variants) + 3
    first = build_cache(sources, base, tmp_path / "cache", workers=1, progress=False)
    other = build_cache(sources, variants[2], tmp_path / "cache", workers=1, progress=False)
    assert other.directory != first.directory and other.summary.computed == len(sources)


def test_a_changed_source_file_gives_a_new_folder(tmp_path: Path, sources: list[str]) -> None:
    params = PreprocessParams(16)
    first = build_cache(sources, params, tmp_path / "cache", workers=1, progress=False)
    before = first.images(first.rows([sources[4]]))
    cv2.imwrite(sources[4], np.full((48, 48), 250, np.uint8))
    stat = os.stat(sources[4])
    os.utime(sources[4], ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    second = build_cache(sources, params, tmp_path / "cache", workers=1, progress=False)
    assert second.directory != first.directory and not second.summary.cache_reused
    after = second.images(second.rows([sources[4]]))
    assert not np.array_equal(before, after) and np.all(after == 250)


def test_incomplete_cache_is_never_opened(tmp_path: Path, sources: list[str]) -> None:
    cache = build_cache(sources, PreprocessParams(16), tmp_path / "cache", workers=1, progress=False)
    (cache.directory / MANIFEST).unlink()
    with pytest.raises(DatasetError, match="never completed"):
        ImageCache.open(cache.directory)


def test_unknown_paths_are_refused(tmp_path: Path, sources: list[str]) -> None:
    cache = build_cache(sources[:5], PreprocessParams(16), tmp_path / "cache", workers=1, progress=False)
    with pytest.raises(ImageError, match="img0009.png: not in this cache"):
        cache.rows([sources[0], sources[9]])
    with pytest.raises(IndexError):
        cache.images(np.array([5]))


# --------------------------------------------------------------------------------------------------
# Shards, crashes, worker threads, locking
# --------------------------------------------------------------------------------------------------


def test_parallel_build_equals_serial_build(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "images", 70, size=40)
    params = PreprocessParams(24, transformations=("sharp21",))
    serial = build_cache(paths, params, tmp_path / "serial", workers=1, progress=False, shard_size=16)
    parallel = build_cache(paths, params, tmp_path / "parallel", workers=2, progress=False, shard_size=16)
    assert len(sorted(parallel.directory.glob("shard-*.npy"))) == 5
    rows = np.arange(len(paths))
    np.testing.assert_array_equal(serial.images(rows), parallel.images(rows))


BUILD_SCRIPT = """
import sys
from medbench.preprocessing import PreprocessParams, build_cache
paths = open(sys.argv[1]).read().split("\\n")
params = PreprocessParams(32, transformations=("sharp51", "clahe", "median5"))
cache = build_cache(paths, params, sys.argv[2], workers=2, progress=False, shard_size=32)
print(cache.summary.computed, cache.summary.reused)
"""


def _start_build(listing: Path, root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", BUILD_SCRIPT, str(listing), str(root)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_after_first_shard(listing: Path, root: Path, key: str) -> bool:
    """Start a build and SIGKILL it once a shard is finished; False when it finished first."""
    process = _start_build(listing, root)
    folder = root / key
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (folder / "shard-00000.json").exists() and (folder / "shard-00000.npy").exists():
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    process.communicate(timeout=60)
    return process.returncode == -signal.SIGKILL and not (folder / MANIFEST).exists()


@pytest.mark.slow
def test_killed_build_resumes_from_finished_shards(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    (tmp_path / "images").mkdir()
    paths = []
    for index in range(300):
        path = tmp_path / "images" / f"x{index:03d}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (256, 256), dtype=np.uint8))
        paths.append(str(path))
    listing = tmp_path / "paths.txt"
    listing.write_text("\n".join(paths))
    params = PreprocessParams(32, transformations=("sharp51", "clahe", "median5"))
    key = cache_key(paths, params, shard_size=32)
    root = tmp_path / "cache"
    assert any(_kill_after_first_shard(listing, root, key) for _ in range(3)), "the build always finished first"
    folder = root / key
    finished = {
        path.name: (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in folder.glob("shard-*.npy")
        if (folder / path.name.replace(".npy", ".json")).exists()
    }
    assert 1 <= len(finished) < 10
    # Leftovers of an interrupted write: a partial temporary file and a shard cut short.
    (folder / ".shard-00009.npy.999-abcdef.tmp").write_bytes(b"\x93NUMPY partial")
    missing = sorted(set(f"shard-{i:05d}.npy" for i in range(10)) - set(finished))
    (folder / missing[-1]).write_bytes(b"\x93NUMPY cut")
    (folder / missing[-1].replace(".npy", ".json")).write_text('{"rows": [0, 0], "failed": {}}')

    resumed = _start_build(listing, root)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    computed, reused = map(int, out.split())
    assert reused == 32 * len(finished) and computed == 300 - reused
    for name, stamp in finished.items():
        path = folder / name
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp, f"{name} was rewritten"
    assert not list(folder.glob("*.tmp"))
    cache = ImageCache.open(folder)
    clean = build_cache(paths, params, tmp_path / "clean", workers=1, progress=False, shard_size=32)
    rows = np.arange(300)
    np.testing.assert_array_equal(cache.images(rows), clean.images(rows))
    assert cache.paths == clean.paths


def test_parallel_build_records_failures_and_leaves_no_threads(tmp_path: Path, broken: list[str]) -> None:
    paths = write_images(tmp_path / "many", 40, size=40)
    paths[5:5] = broken  # one shard holds all three broken files
    opencv_threads = cv2.getNumThreads()
    cache = build_cache(paths, PreprocessParams(16), tmp_path / "cache", workers=2, progress=False, shard_size=8)
    assert sorted(cache.failed) == sorted(broken) and cache.summary.computed == 40
    failures = json.loads((cache.directory / "shard-00000.json").read_text())["failed"]
    assert sorted(failures) == sorted(broken) and json.loads((cache.directory / "shard-00001.json").read_text())
    assert cv2.getNumThreads() == opencv_threads  # OpenCV's own threading is restored after the build
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("medbench-preprocess")]
    good = [path for path in paths if path not in broken]
    for path, image in zip(good, cache.images(cache.rows(good))):
        np.testing.assert_array_equal(image, preprocess_image(path, PreprocessParams(16)))


def test_two_processes_building_one_cache_take_turns(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "images", 64, size=96)
    listing = tmp_path / "paths.txt"
    listing.write_text("\n".join(paths))
    builds = [_start_build(listing, tmp_path / "cache") for _ in range(2)]
    outputs = [build.communicate(timeout=120) for build in builds]
    assert [build.returncode for build in builds] == [0, 0], [err for _, err in outputs]
    computed = [int(out.split()[0]) for out, _ in outputs]
    assert sum(computed) == len(paths)  # one built everything, the other reused it
    assert len(list((tmp_path / "cache").iterdir())) == 1


# --------------------------------------------------------------------------------------------------
# Unreadable images
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def broken(tmp_path: Path, sources: list[str]) -> list[str]:
    truncated = tmp_path / "images" / "truncated.png"
    truncated.write_bytes(Path(sources[0]).read_bytes()[:60])
    text = tmp_path / "images" / "notes.png"
    text.write_text("not an image")
    return [str(truncated), str(text), str(tmp_path / "images" / "missing.png")]


def test_unreadable_images_are_reported_and_refused(tmp_path: Path, sources: list[str], broken: list[str]) -> None:
    paths = [*sources[:3], broken[0], sources[3], broken[1], broken[2]]
    cache = build_cache(paths, PreprocessParams(16), tmp_path / "cache", workers=1, progress=False)
    assert sorted(cache.failed) == sorted(broken)
    assert "does not exist" in cache.failed[broken[2]] and "truncated or corrupt" in cache.failed[broken[0]]
    report = json.loads((cache.directory / REPORT).read_text())
    assert report["failed"] == cache.failed and cache.report_path == cache.directory / REPORT
    assert cache.summary.failed == 3 and cache.summary.computed == 4
    assert not cache.images(np.array([3, 5, 6])).any()  # stored as zeros
    cache.rows(sources[:4])
    with pytest.raises(ImageError) as error:
        cache.rows([sources[0], broken[1], broken[2]])
    assert broken[1] in str(error.value) and broken[2] in str(error.value) and broken[0] not in str(error.value)


def test_strict_names_every_offender_in_one_error(tmp_path: Path, sources: list[str], broken: list[str]) -> None:
    with pytest.raises(ImageError) as error:
        build_cache([*sources, *broken], PreprocessParams(16), tmp_path / "cache", workers=1, strict=True)
    message = str(error.value)
    assert "3 of 15 image(s)" in message and all(path in message for path in broken)
    again = build_cache([*sources, *broken], PreprocessParams(16), tmp_path / "cache", workers=1, progress=False)
    assert again.summary.cache_reused and len(again.failed) == 3


@pytest.mark.slow
def test_preprocess_command_builds_the_cache_an_experiment_then_reuses(settings, tmp_path: Path) -> None:
    from dataclasses import replace

    from cli_process import run_medbench

    from medbench.benchmark.spec import ExperimentSpec
    from medbench.experiment import Experiment

    settings = replace(settings, cache_dir=tmp_path / "cache")
    benchmark = "demo_BCE_E1_B16_C1_N5_histeq_D32_DS8020_1LR3_LF5_Adam"
    result = run_medbench(["preprocess", benchmark, "--workers", "2"], settings)
    assert result.returncode == 0, result.stderr
    built = [line for line in result.stdout.splitlines() if line.startswith("cache ")]
    assert len(built) == 1 and " 0 reused" in result.stdout
    folder = Path(built[0].removeprefix("cache "))
    manifest_before = (folder / "manifest.json").stat().st_mtime_ns

    experiment = Experiment(ExperimentSpec(benchmark), settings)
    experiment.run()
    assert experiment.cache.directory == folder
    assert experiment.cache.summary.cache_reused
    assert (folder / "manifest.json").stat().st_mtime_ns == manifest_before
    assert sorted(path.name for path in settings.cache_root.iterdir() if path.is_dir()) == [folder.name]
