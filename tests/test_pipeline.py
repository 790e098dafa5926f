"""The cache-based tf.data pipeline: evaluation order with ids, per-epoch determinism, resume, augmentation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from medbench.errors import ConfigError
from medbench.pipeline.augmentation import affine_matrices, affine_matrix, augment_affine_batch, augment_color_batch
from medbench.pipeline.config import PipelineConfig
from medbench.pipeline.dataset import evaluation_dataset, steps_per_epoch, training_dataset
from medbench.preprocessing import ImageCache, PreprocessParams, build_cache

N = 10


def levels() -> list[int]:
    return [20 * index + 5 for index in range(N)]


@pytest.fixture
def flat_paths(tmp_path: Path) -> list[str]:
    """Ten flat images of different sizes, each a grey level that identifies it."""
    paths = []
    for index, level in enumerate(levels()):
        path = tmp_path / "flat" / f"img{index}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), np.full((40 + index, 50), level, np.uint8))
        paths.append(str(path))
    return paths


@pytest.fixture
def flat(tmp_path: Path, flat_paths: list[str]) -> ImageCache:
    return build_cache(flat_paths, PreprocessParams(16), tmp_path / "cache", workers=1, progress=False)


@pytest.fixture
def textured(tmp_path: Path) -> ImageCache:
    """Ten 32-px noisy images with an off-centre bright square (so warps and colour changes show)."""
    rng = np.random.default_rng(0)
    paths = []
    for index in range(N):
        image = rng.integers(40, 120, (32, 32), dtype=np.uint8)
        image[4:12, 6:14] = 230
        path = tmp_path / "textured" / f"t{index}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), image)
        paths.append(str(path))
    return build_cache(paths, PreprocessParams(32), tmp_path / "cache", workers=1, progress=False)


def batches(dataset: tf.data.Dataset) -> list[tuple[np.ndarray, ...]]:
    return [tuple(part.numpy() for part in batch) for batch in dataset]


def flat_levels(images: np.ndarray) -> list[int]:
    return np.rint(images.mean(axis=(1, 2, 3))).astype(int).tolist()


def test_steps_per_epoch_keeps_the_last_partial_batch() -> None:
    assert [steps_per_epoch(n, 4) for n in (1, 4, 5, 8, 10)] == [1, 1, 2, 2, 3]


def test_evaluation_keeps_order_and_ids(flat: ImageCache, flat_paths: list[str]) -> None:
    order = [3, 0, 9, 9, 5, 1, 2, 8, 7, 6, 4]
    rows = flat.rows([flat_paths[i] for i in order])
    targets = np.arange(len(order) * 2, dtype=np.float32).reshape(-1, 2)
    ids = [f"id-{i}-{k}" for k, i in enumerate(order)]
    config = PipelineConfig(image_size=16, batch_size=4)
    got = batches(evaluation_dataset(flat, rows, targets, ids, config))
    assert [batch[0].shape for batch in got] == [(4, 16, 16, 1), (4, 16, 16, 1), (3, 16, 16, 1)]
    assert [value.decode() for batch in got for value in batch[2]] == ids
    np.testing.assert_array_equal(np.concatenate([batch[1] for batch in got]), targets)
    assert flat_levels(np.concatenate([batch[0] for batch in got])) == [levels()[i] for i in order]


def test_batches_are_the_cached_uint8_pixels_with_the_cache_channels(flat: ImageCache) -> None:
    rows = np.arange(N)
    [(images, _, _)] = batches(evaluation_dataset(flat, rows, np.zeros((N, 1)), list("abcdefghij"), _config(16)))
    assert images.dtype == np.uint8 and images.shape == (N, 16, 16, 1)
    np.testing.assert_array_equal(images, flat.images(rows))
    [(trained, _)] = batches(training_dataset(flat, rows, np.zeros((N, 1)), _config(16)))
    assert trained.dtype == np.uint8 and trained.shape == (N, 16, 16, 1)


def _config(size: int, batch: int = N, **kwargs: object) -> PipelineConfig:
    return PipelineConfig(image_size=size, batch_size=batch, **kwargs)  # type: ignore[arg-type]


def test_the_cache_must_fit_the_config(flat: ImageCache) -> None:
    with pytest.raises(ConfigError, match="16 px"):
        evaluation_dataset(flat, np.arange(N), np.zeros((N, 1)), list("abcdefghij"), _config(32))
    with pytest.raises(ConfigError, match="target rows"):
        training_dataset(flat, np.arange(N), np.zeros((N - 1, 1)), _config(16))


def test_training_order_is_a_function_of_seed_and_epoch(flat: ImageCache) -> None:
    targets = np.arange(N, dtype=np.float32)[:, None]
    config = _config(16, batch=4, seed=1)
    data = batches(training_dataset(flat, np.arange(N), targets, config, epochs=3))
    assert [batch[0].shape[0] for batch in data] == [4, 4, 2] * 3
    epochs = [np.concatenate([batch[1] for batch in data[3 * e : 3 * e + 3]]).ravel().astype(int) for e in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(N))
    assert len({tuple(order) for order in epochs}) == 3  # reshuffled every epoch
    for e, order in enumerate(epochs):  # images travel with their targets
        epoch_images = np.concatenate([batch[0] for batch in data[3 * e : 3 * e + 3]])
        assert flat_levels(epoch_images) == [levels()[i] for i in order]
    again = batches(training_dataset(flat, np.arange(N), targets, config, epochs=3))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(data, again))
    other_seed = batches(training_dataset(flat, np.arange(N), targets, _config(16, batch=4, seed=2)))
    assert not np.array_equal(np.concatenate([batch[1] for batch in other_seed]).ravel(), epochs[0])


def test_resumed_run_gets_the_same_batches(textured: ImageCache) -> None:
    targets = np.arange(N, dtype=np.float32)[:, None]
    config = PipelineConfig(image_size=32, batch_size=4, augmentations=("affine", "color"), seed=7)
    rows = np.arange(N)
    whole = batches(training_dataset(textured, rows, targets, config, first_epoch=0, epochs=3))
    resumed = batches(training_dataset(textured, rows, targets, config, first_epoch=1, epochs=3))
    assert len(whole) == 9 and len(resumed) == 6
    for expected, got in zip(whole[3:], resumed):
        np.testing.assert_array_equal(expected[0], got[0])
        np.testing.assert_array_equal(expected[1], got[1])
    single = batches(training_dataset(textured, rows, targets, config, first_epoch=2, epochs=3))
    np.testing.assert_array_equal(single[0][0], whole[6][0])


def test_augmentation_changes_pixels_but_not_shapes(textured: ImageCache) -> None:
    rows, targets = np.arange(N), np.zeros((N, 1), np.float32)
    plain = batches(training_dataset(textured, rows, targets, _config(32, seed=3)))
    for augmentations in (("affine",), ("color",), ("affine", "color")):
        config = _config(32, seed=3, augmentations=augmentations)
        augmented = batches(training_dataset(textured, rows, targets, config))
        assert augmented[0][0].shape == plain[0][0].shape == (N, 32, 32, 1)
        assert augmented[0][0].dtype == np.uint8, "every augmentation hands the model uint8"
        assert not np.allclose(augmented[0][0], plain[0][0])  # same seed, so the same order


def test_batch_augmentation_differs_per_image() -> None:
    image = np.zeros((32, 32, 1), np.float32)
    image[4:12, 6:14] = 200.0
    image[12:20, 12:20] = 100.0
    batch = tf.constant(np.repeat(image[None], 4, axis=0))
    warped = augment_affine_batch(batch, tf.constant([1, 2])).numpy()
    assert warped.shape == (4, 32, 32, 1)
    assert len({warped[i].tobytes() for i in range(4)}) == 4
    assert np.all(warped[:, 15:17, 15:17] > 50)  # ±5 % shift cannot move the centre block away
    coloured = augment_color_batch(batch, tf.constant([1, 2])).numpy()
    assert len({float(coloured[i].mean()) for i in range(4)}) == 4
    again = augment_affine_batch(batch, tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(warped, again)


def test_affine_matrices_stay_within_the_declared_ranges() -> None:
    draws = tf.random.stateless_uniform((200, 4), seed=[4, 2], minval=-1.0, maxval=1.0)
    for a0, a1, _, b0, b1, _, c0, c1 in affine_matrices(draws, 64).numpy():
        scale = 1 / np.hypot(a0, b0)
        angle = np.degrees(np.arctan2(a1, a0))
        assert 0.95 - 1e-6 <= scale <= 1.05 + 1e-6 and abs(angle) <= 15 + 1e-4
        assert a0 == pytest.approx(b1) and a1 == pytest.approx(-b0) and c0 == c1 == 0
    single = affine_matrix(tf.constant([3, 1]), 64).numpy()
    assert single.shape == (8,)


def test_colour_augmentation_of_uint8_rounds_to_the_nearest_grey_level() -> None:
    from medbench.pipeline.augmentation import augment_batch

    gray = tf.constant(np.random.default_rng(9).integers(0, 256, (4, 16, 16, 1), dtype=np.uint8))
    seed = tf.constant([5, 6], dtype=tf.int64)
    rounded = augment_batch(gray, seed, ("color",)).numpy()
    exact = augment_color_batch(tf.cast(gray, tf.float32), tf.random.experimental.stateless_split(seed, 2)[1])
    assert rounded.dtype == np.uint8
    np.testing.assert_array_equal(rounded, np.round(exact.numpy()).astype(np.uint8))


def test_affine_keeps_a_uint8_batch_uint8() -> None:
    gray = tf.constant(np.random.default_rng(6).integers(0, 256, (4, 32, 32, 1), dtype=np.uint8))
    warped = augment_affine_batch(gray, tf.constant([1, 2], dtype=tf.int64))
    assert warped.dtype == tf.uint8 and warped.shape == gray.shape
    assert not np.array_equal(warped.numpy(), gray.numpy())


def test_opencv_and_tensorflow_warps_agree_to_one_grey_level() -> None:
    gray = np.random.default_rng(8).integers(0, 256, (4, 48, 48, 1), dtype=np.uint8)
    seed = tf.constant([3, 4], dtype=tf.int64)
    by_opencv = augment_affine_batch(tf.constant(gray), seed).numpy().astype(int)
    by_tensorflow = augment_affine_batch(tf.constant(gray, dtype=tf.float32), seed).numpy()
    assert np.abs(by_opencv - by_tensorflow).max() <= 1.0
