"""The tf.data pipeline: fixed evaluation order with ids, seeded shuffling, augmentation, decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medbench.data.pipeline import (
    PipelineConfig,
    affine_matrix,
    augment_affine,
    evaluation_dataset,
    training_dataset,
)


@pytest.fixture
def images(tmp_path: Path) -> list[str]:
    """Ten images of different sizes and modes, each a flat grey level that identifies it."""
    paths = []
    modes = ["L", "RGB", "RGBA", "L", "RGB"]
    for index in range(10):
        mode = modes[index % len(modes)]
        value = 20 * index + 5
        color = value if mode == "L" else (value,) * 3 + ((255,) if mode == "RGBA" else ())
        suffix = ".jpg" if index % 3 == 0 and mode != "RGBA" else ".png"
        path = tmp_path / f"img{index}{suffix}"
        Image.new(mode, (40 + index, 50), color).save(path, quality=100)
        paths.append(str(path))
    return paths


def test_evaluation_keeps_order_and_ids(images: list[str]) -> None:
    targets = np.arange(30, dtype=np.float32).reshape(10, 3)
    ids = [f"id-{i}" for i in range(10)]
    config = PipelineConfig(image_size=16, batch_size=4, standardize="none")
    batches = list(evaluation_dataset(images, targets, ids, config))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    got_ids = [v.decode() for b in batches for v in b[2].numpy()]
    assert got_ids == ids
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), targets)
    levels = np.concatenate([b[0].numpy().mean(axis=(1, 2, 3)) for b in batches])
    np.testing.assert_allclose(levels, [20 * i + 5 for i in range(10)], atol=1.5)
    again = [v.decode() for b in evaluation_dataset(images, targets, ids, config) for v in b[2].numpy()]
    assert again == ids


def test_every_mode_decodes_to_three_channels(images: list[str]) -> None:
    config = PipelineConfig(image_size=16, batch_size=10, standardize="none")
    [(batch, _, _)] = list(evaluation_dataset(images, np.zeros((10, 1)), [str(i) for i in range(10)], config))
    assert batch.shape == (10, 16, 16, 3)
    assert np.allclose(batch.numpy()[..., 0], batch.numpy()[..., 2], atol=1.0)


def test_training_shuffles_per_epoch_with_a_seed(images: list[str]) -> None:
    targets = np.arange(10, dtype=np.float32)[:, None]
    config = PipelineConfig(image_size=8, batch_size=10, standardize="none", seed=1)
    data = training_dataset(images, targets, config)
    epochs = [next(iter(data))[1].numpy().ravel().tolist() for _ in range(2)]
    assert sorted(epochs[0]) == list(range(10)) and sorted(epochs[1]) == list(range(10))
    assert epochs[0] != epochs[1]
    same_seed = training_dataset(images, targets, config)
    assert next(iter(same_seed))[1].numpy().ravel().tolist() == epochs[0]


def test_standardize_is_applied(images: list[str]) -> None:
    config = PipelineConfig(image_size=8, batch_size=10, standardize="unit")
    [(batch, _, _)] = list(evaluation_dataset(images, np.zeros((10, 1)), [str(i) for i in range(10)], config))
    assert 0.0 <= float(batch.numpy().min()) and float(batch.numpy().max()) <= 1.0


def test_affine_matrix_stays_within_the_declared_ranges() -> None:
    import tensorflow as tf

    for seed in range(50):
        a0, a1, _, b0, b1, _, _, _ = affine_matrix(tf.constant([seed, 7]), 64).numpy()
        scale = 1 / np.hypot(a0, b0)
        angle = np.degrees(np.arctan2(a1, a0))
        assert 0.95 - 1e-6 <= scale <= 1.05 + 1e-6 and abs(angle) <= 15 + 1e-4
        assert a0 == pytest.approx(b1) and a1 == pytest.approx(-b0)


def test_affine_augmentation_moves_pixels_but_keeps_the_centre() -> None:
    import tensorflow as tf

    image = np.zeros((33, 33, 3), np.float32)
    image[14:19, 14:19] = 255.0
    image[0:4, 0:33] = 100.0
    moved = [augment_affine(tf.constant(image), tf.constant([s, 1]), 33).numpy() for s in range(5)]
    assert any(not np.allclose(m, image) for m in moved)
    for m in moved:
        assert m[16, 16, 0] > 100  # ±5 % translation cannot move the centre blob off the centre
