"""3D augmentation of uint8 volume batches: shape and dtype kept, seeded draws, exact flips, one transform a volume."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from medbench.errors import ConfigError
from medbench.pipeline.volume_augmentation import (
    VolumeAugmentation,
    VolumeTransform,
    apply_transform,
    augment_volumes,
    axial_affine,
    draw_transforms,
)

PROPERTIES = settings(derandomize=True, max_examples=25, deadline=None)
OFF = VolumeAugmentation(flip=(False, False, False), rotate_deg=0.0, rotate90=False, scale=(1.0, 1.0))
FLIPS_ONLY = VolumeAugmentation(flip=(True, True, True), rotate_deg=0.0, rotate90=True, scale=(1.0, 1.0))

seeds = st.tuples(st.integers(0, 2**31), st.integers(0, 200), st.integers(0, 10_000))
augmentations = st.builds(
    VolumeAugmentation,
    flip=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    rotate_deg=st.sampled_from([0.0, 10.0, 45.0, 180.0]),
    rotate90=st.booleans(),
    scale=st.sampled_from([(1.0, 1.0), (0.9, 1.1), (0.5, 2.0)]),
)


@st.composite
def batches(draw: st.DrawFn, channels: int | None = None) -> np.ndarray:
    """A small uint8 batch (n, d, h, w, c) of noise; square or not."""
    n, depth, height = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(2, 9))
    width = draw(st.sampled_from([height, height + 1]))
    count = channels or draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.integers(0, 256, (n, depth, height, width, count), dtype=np.uint8)


def asymmetric(channels: int = 1) -> np.ndarray:
    """One volume (1, 6, 10, 10, c) of noise: no flip, turn or small rotation leaves it unchanged."""
    rng = np.random.default_rng(7)
    return np.repeat(rng.integers(0, 256, (1, 6, 10, 10, 1), dtype=np.uint8), channels, axis=4)


@PROPERTIES
@given(batch=batches(), augmentation=augmentations, seed=seeds)
def test_shape_dtype_and_range_are_kept(batch: np.ndarray, augmentation: VolumeAugmentation, seed: tuple) -> None:
    augmented = augment_volumes(batch, augmentation, seed)
    assert augmented.shape == batch.shape and augmented.dtype == np.uint8
    assert augmented.flags.c_contiguous and augmented is not batch
    for before, after in zip(batch, augmented):  # linear interpolation with 0 fill: never above the input's maximum
        assert 0 <= int(after.min()) and int(after.max()) <= int(before.max())


@PROPERTIES
@given(batch=batches(), seed=seeds)
def test_everything_off_is_the_identity(batch: np.ndarray, seed: tuple) -> None:
    assert OFF.is_identity
    augmented = augment_volumes(batch, OFF, seed)
    assert augmented.tobytes() == batch.tobytes() and augmented is not batch


@PROPERTIES
@given(batch=batches(), augmentation=augmentations, seed=seeds)
def test_the_same_seed_gives_the_same_bytes(batch: np.ndarray, augmentation: VolumeAugmentation, seed: tuple) -> None:
    assert augment_volumes(batch, augmentation, seed).tobytes() == augment_volumes(batch, augmentation, seed).tobytes()


@PROPERTIES
@given(first=seeds, second=seeds)
def test_different_seeds_give_different_volumes(first: tuple, second: tuple) -> None:
    assume(first != second)
    volume = asymmetric()
    augmentation = VolumeAugmentation()
    assert not np.array_equal(
        augment_volumes(volume, augmentation, first), augment_volumes(volume, augmentation, second)
    )


@PROPERTIES
@given(batch=batches(), seed=seeds)
def test_flips_and_quarter_turns_only_permute_the_voxels(batch: np.ndarray, seed: tuple) -> None:
    augmented = augment_volumes(batch, FLIPS_ONLY, seed)
    for before, after in zip(batch, augmented):
        np.testing.assert_array_equal(np.sort(before, axis=None), np.sort(after, axis=None))


@PROPERTIES
@given(batch=batches(channels=1), augmentation=augmentations, seed=seeds)
def test_every_channel_of_a_volume_gets_the_same_transform(
    batch: np.ndarray, augmentation: VolumeAugmentation, seed: tuple
) -> None:
    augmented = augment_volumes(np.concatenate([batch, batch], axis=4), augmentation, seed)
    np.testing.assert_array_equal(augmented[..., 0], augmented[..., 1])
    np.testing.assert_array_equal(augmented[..., :1], augment_volumes(batch, augmentation, seed))


def test_a_resumed_epoch_draws_the_same_transforms_and_other_batches_differ() -> None:
    volume = np.repeat(asymmetric(), 4, axis=0)
    augmentation = VolumeAugmentation(rotate90=True)
    run = {
        (epoch, index): augment_volumes(volume, augmentation, (42, epoch, index))
        for epoch in range(2)
        for index in range(2)
    }
    resumed = augment_volumes(volume, augmentation, (42, 1, 1))
    assert resumed.tobytes() == run[1, 1].tobytes()
    assert len({result.tobytes() for result in run.values()}) == 4
    assert len({item.tobytes() for item in run[0, 0]}) == 4  # each volume of a batch is drawn independently


def test_switching_on_one_transformation_leaves_the_others_draws_unchanged() -> None:
    flips_only = VolumeAugmentation(rotate_deg=0.0, scale=(1.0, 1.0))
    everything = VolumeAugmentation(rotate_deg=30.0, rotate90=True, scale=(0.8, 1.2))
    plain, full = draw_transforms(16, flips_only, (5, 0, 3)), draw_transforms(16, everything, (5, 0, 3))
    assert [t.flips for t in plain] == [t.flips for t in full]
    assert len({t.flips for t in full}) > 1 and {t.quarter_turns for t in full} == {0, 1, 2, 3}
    assert all(-30.0 <= t.angle_deg <= 30.0 and 0.8 <= t.zoom <= 1.2 for t in full)
    assert all(not t.warps and t.quarter_turns == 0 for t in plain)


def test_quarter_turns_are_skipped_for_a_volume_that_is_not_square() -> None:
    augmentation = VolumeAugmentation(flip=(False, False, False), rotate_deg=0.0, rotate90=True, scale=(1.0, 1.0))
    assert all(t.quarter_turns == 0 for t in draw_transforms(20, augmentation, (1,), square=False))
    batch = np.random.default_rng(0).integers(0, 256, (3, 2, 4, 5, 1), dtype=np.uint8)
    assert augment_volumes(batch, augmentation, (9,)).tobytes() == batch.tobytes()


def test_flips_and_turns_are_the_numpy_operations() -> None:
    volume = asymmetric(2)[0]
    flipped = apply_transform(volume, VolumeTransform(flips=(True, False, True)))
    np.testing.assert_array_equal(flipped, volume[::-1, :, ::-1])
    turned = apply_transform(volume, VolumeTransform(quarter_turns=1))
    np.testing.assert_array_equal(turned, np.rot90(volume, 1, axes=(1, 2)))


def test_a_positive_rotation_turns_y_towards_x_about_the_centre() -> None:
    volume = np.zeros((3, 11, 11, 1), np.uint8)
    volume[:, 5, 5] = 100
    volume[:, 8, 5] = 255  # 3 voxels below the centre along +y
    rotated = apply_transform(volume, VolumeTransform(angle_deg=90.0))
    assert rotated[1, 5, 5, 0] == 100 and rotated[1, 5, 8, 0] == 255  # now 3 voxels along +x
    assert int(rotated.astype(int).sum()) == int(volume.astype(int).sum())


def test_zoom_keeps_the_centre_and_magnifies() -> None:
    volume = np.zeros((9, 9, 9, 1), np.uint8)
    volume[3:6, 3:6, 3:6] = 200
    zoomed = apply_transform(volume, VolumeTransform(zoom=2.0))
    # output z samples input 4 + (z - 4) / 2: z = 2 → 3 (inside), z = 1 → 2.5 (halfway), z = 0 → 2 (outside)
    assert zoomed[2:7, 4, 4, 0].tolist() == [200] * 5 and zoomed[1, 4, 4, 0] == 100 and zoomed[0, 4, 4, 0] == 0
    shrunk = apply_transform(volume, VolumeTransform(zoom=0.5))
    assert shrunk[:, 4, 4, 0].tolist() == [0, 0, 0, 0, 200, 0, 0, 0, 0]  # z = 3 samples input 2
    matrix, offset = axial_affine((9, 9, 9), 0.0, 2.0)
    np.testing.assert_allclose(matrix @ np.full(3, 4.0) + offset, 4.0)


def test_invalid_batches_and_seeds_are_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        augment_volumes(np.zeros((1, 2, 2, 2, 1), np.float32), OFF, (0,))
    with pytest.raises(ValueError, match="expected uint8"):
        augment_volumes(np.zeros((2, 2, 2, 1), np.uint8), OFF, (0,))
    for seed in [(), (-1, 0), (1.5,), "7"]:
        with pytest.raises(ConfigError, match="non-negative integers"):
            augment_volumes(np.zeros((1, 2, 2, 2, 1), np.uint8), OFF, seed)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "phrase"),
    [
        ({"flip": (True, False)}, "VolumeAugmentation.flip (True, False): expected 3 booleans"),
        ({"flip": (1, 0, 1)}, "VolumeAugmentation.flip"),
        ({"rotate_deg": -5.0}, "VolumeAugmentation.rotate_deg -5.0: expected degrees in 0..180"),
        ({"rotate_deg": 270}, "0..180"),
        ({"rotate90": "yes"}, "VolumeAugmentation.rotate90 'yes': expected True or False"),
        ({"scale": (1.2, 0.8)}, "VolumeAugmentation.scale (1.2, 0.8): expected (low, high) zoom factors"),
        ({"scale": (0.1, 1.0)}, "0.25 <= low <= high <= 4"),
        ({"scale": 1.0}, "VolumeAugmentation.scale 1.0"),
    ],
)
def test_invalid_augmentation_fields_are_refused(fields: dict, phrase: str) -> None:
    with pytest.raises(ConfigError) as caught:
        VolumeAugmentation(**fields)
    assert phrase in str(caught.value)


def test_defaults_are_valid_and_not_the_identity() -> None:
    augmentation = VolumeAugmentation()
    assert augmentation.flip == (True, True, True) and augmentation.scale == (0.9, 1.1)
    assert not augmentation.is_identity and augmentation.rotate_deg == 10.0 and not augmentation.rotate90
