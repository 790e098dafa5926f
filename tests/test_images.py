"""Decoding every image flavour to uint8 RGB, and clear errors for broken files."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medbench.data.images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, decode_plain_image, read_image, verify_images
from medbench.errors import DatasetError, ImageError
from medbench.preprocessing.params import decode_for

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def needs_shared(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a test that reads ../shared/data; it is skipped where that folder is absent."""
    skip = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data (real NIH images) not present")
    return pytest.mark.shared_data(skip(test))


def noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def saved(image: Image.Image, path: Path, **options: object) -> Path:
    image.save(path, **options)
    return path


def truncated(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_grayscale_is_repeated_over_three_channels(tmp_path: Path) -> None:
    gray = noise((30, 40))
    for suffix in ("png", "jpg"):
        image = read_image(saved(Image.fromarray(gray), tmp_path / f"g.{suffix}"))
        assert image.shape == (30, 40, 3) and image.dtype == np.uint8
        assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
    np.testing.assert_array_equal(read_image(tmp_path / "g.png")[..., 0], gray)


def test_rgb_rgba_la_and_palette(tmp_path: Path) -> None:
    rgb = noise((20, 10, 3))
    np.testing.assert_array_equal(read_image(saved(Image.fromarray(rgb), tmp_path / "rgb.png")), rgb)
    rgba = np.concatenate([rgb, np.zeros((20, 10, 1), np.uint8)], axis=2)  # fully transparent: alpha is dropped
    np.testing.assert_array_equal(read_image(saved(Image.fromarray(rgba, "RGBA"), tmp_path / "rgba.png")), rgb)
    la = Image.merge("LA", (Image.fromarray(rgb[..., 0]), Image.fromarray(rgb[..., 1])))
    np.testing.assert_array_equal(read_image(saved(la, tmp_path / "la.png"))[..., 2], rgb[..., 0])
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    expected = np.asarray(palette.convert("RGB"))
    np.testing.assert_array_equal(read_image(saved(palette, tmp_path / "p.png")), expected)
    palette.info["transparency"] = 0
    assert read_image(saved(palette, tmp_path / "pt.png", transparency=0)).shape == (20, 10, 3)
    bilevel = Image.fromarray(rgb[..., 0] > 127)
    assert set(np.unique(read_image(saved(bilevel, tmp_path / "1.png")))) <= {0, 255}


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = saved(Image.new("CMYK", (16, 8), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    image = read_image(path)
    assert image.shape == (8, 16, 3)
    assert image[..., 0].min() > 200 and image[..., 1:].max() < 60  # red


def test_16_bit_png_is_scaled_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    values = np.linspace(1000, 4095, 64 * 32).reshape(32, 64).astype(np.uint16)
    path = saved(Image.fromarray(values), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    with caplog.at_level(logging.WARNING, logger="medbench.data.images"):
        image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (32, 64, 3)
    assert image.min() == 0 and image.max() == 255
    assert (np.diff(image[..., 0].ravel().astype(int)) >= 0).all()  # monotone mapping
    assert "scaled to 8-bit" in caplog.text and "deep.png" in caplog.text
    flat = saved(Image.fromarray(np.full((4, 4), 700, np.uint16)), tmp_path / "flat.png")
    assert (read_image(flat) == 0).all()


def missing(folder: Path) -> Path:
    return folder / "missing.png"


def zero_byte(folder: Path) -> Path:
    (folder / "empty.png").write_bytes(b"")
    return folder / "empty.png"


def text_as_png(folder: Path) -> Path:
    (folder / "text.png").write_text("not a picture")
    return folder / "text.png"


def truncated_jpeg(folder: Path) -> Path:
    return truncated(saved(Image.fromarray(noise((200, 200))), folder / "cut.jpg", quality=90))


def truncated_png(folder: Path) -> Path:
    return truncated(saved(Image.fromarray(noise((200, 200))), folder / "cut.png"))


def folder_itself(folder: Path) -> Path:
    return folder


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (missing, "file does not exist"),
        (zero_byte, r"file is empty \(0 bytes\)"),
        (text_as_png, "is not an image Pillow can read"),
        (truncated_jpeg, "is truncated or corrupt .*expected a complete JPEG file"),
        (truncated_png, "is truncated or corrupt .*expected a complete PNG file"),
        (folder_itself, "is a folder"),
    ],
)
def test_broken_files_raise_image_error(tmp_path: Path, make: Callable[[Path], Path], reason: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ImageError, match=reason) as caught:
        read_image(path)
    assert isinstance(caught.value, DatasetError)
    assert caught.value.file == path and str(caught.value).startswith(f"{path}: ")


def test_verify_images_reports_every_bad_file_in_order(tmp_path: Path) -> None:
    good = [saved(Image.fromarray(noise((16, 16), seed)), tmp_path / f"ok{seed}.png") for seed in range(3)]
    cut = truncated(saved(Image.fromarray(noise((200, 200))), tmp_path / "cut.jpg"))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    paths = [good[0], cut, good[1], empty, tmp_path / "gone.png", good[2]]
    problems = verify_images(paths, workers=2)
    assert [path for path, _ in problems] == [str(cut), str(empty), str(tmp_path / "gone.png")]
    assert "truncated" in problems[0][1] and "0 bytes" in problems[1][1] and "does not exist" in problems[2][1]
    assert verify_images(good, workers=1, progress=True) == []
    with pytest.raises(ValueError, match="workers must be >= 1"):
        verify_images(good, workers=0)


@needs_shared
def test_real_nih_images() -> None:
    sample = sorted((SHARED / "nih-cxr14-sample" / "images").glob("*.png"))[:5]
    assert all(read_image(path).shape == (512, 512, 3) for path in sample)
    rgba = [path for path in sorted((SHARED / "nih-cxr14-64px").rglob("*.png")) if Image.open(path).mode == "RGBA"]
    assert rgba and read_image(rgba[0]).shape == (64, 64, 3)
    assert verify_images(sample + rgba) == []


def _fifo(folder: Path) -> Path:
    path = folder / "pipe.png"
    os.mkfifo(path)
    return path


def _link_to_dev_zero(folder: Path) -> Path:
    path = folder / "zero.png"
    path.symlink_to("/dev/zero")
    return path


def _dangling_link(folder: Path) -> Path:
    path = folder / "dangling.png"
    path.symlink_to(folder / "gone.png")
    return path


def _sparse_huge_file(folder: Path) -> Path:
    path = folder / "huge.png"
    with open(path, "wb") as handle:
        handle.truncate(MAX_IMAGE_BYTES + 1)
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_fifo, "pipe.png: is a FIFO (named pipe), not a regular file; expected an image file"),
        (_link_to_dev_zero, "zero.png: is a character device (a link to /dev/zero), not a regular file"),
        (_dangling_link, "dangling.png: is a link to "),
        (_sparse_huge_file, "huge.png: file is 1.0 GiB; expected an image file of at most 1 GiB"),
    ],
    ids=["fifo", "symlink-to-dev-zero", "dangling-symlink", "over-1-GiB"],
)
def test_only_regular_files_are_opened(tmp_path: Path, make: Callable[[Path], Path], reason: str) -> None:
    """A FIFO would block the reader forever and /dev/zero would be read until memory runs out."""
    path = make(tmp_path)
    assert decode_plain_image(path) is None
    with pytest.raises(ImageError) as caught:
        read_image(path)
    assert reason in str(caught.value)
    assert verify_images([path]) == [(str(path), str(caught.value).split(": ", 1)[1])]


def test_a_link_to_a_regular_image_is_followed(tmp_path: Path) -> None:
    image = saved(Image.fromarray(noise((8, 8))), tmp_path / "real.png")
    link = tmp_path / "link.png"
    link.symlink_to(image)
    np.testing.assert_array_equal(read_image(link), read_image(image))


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_decompression_bomb_is_refused_before_decoding_by_every_decoder(tmp_path: Path, suffix: str) -> None:
    """A few-KB file of 8200×8200 pixels: refused by the OpenCV fast path and by Pillow alike, so training,
    preprocessing and predict share one limit."""
    side = 8200
    assert side * side > MAX_IMAGE_PIXELS
    path = saved(Image.new("L", (side, side)), tmp_path / f"bomb{suffix}")
    assert path.stat().st_size < 2_000_000
    assert decode_plain_image(path) is None
    with pytest.raises(ImageError, match=r"is too large to decode safely \(8200×8200 = 67.2 megapixels"):
        decode_for(path, 1)
    within = saved(Image.new("L", (8192, 8192)), tmp_path / f"largest{suffix}")
    assert decode_plain_image(within).shape == (8192, 8192)
