"""3D architectures: the "3D." registry entries, their lookup and shapes, 5D standardization, and one training
step of a member of every family on a 32³ grayscale volume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from medbench.architectures.base import SimpleBaseArchitecture
from medbench.architectures.info import STANDARDIZE_MODES
from medbench.architectures.models_3d import ENTRIES, ClassificationModel3D
from medbench.architectures.registry import ARCHITECTURES, get_architecture
from medbench.architectures.standardization import Standardization, standardize
from medbench.errors import ConfigError

VOLUME_KEYS = [key for key in ARCHITECTURES if key.startswith("3D.")]
VERY_SLOW = (
    pytest.mark.slow,
    pytest.mark.very_slow,
    pytest.mark.skipif(os.environ.get("MEDBENCH_VERY_SLOW") != "1", reason="very slow on CPU: MEDBENCH_VERY_SLOW=1"),
)
"""Depthwise and other heavy 3D networks: minutes on 2 CPU cores, so only run on request."""
FAMILIES = [
    pytest.param("3D.SmallCNN", marks=pytest.mark.slow),
    pytest.param("3D.Vanilla", marks=pytest.mark.slow),
    pytest.param("3D.ResNet18", marks=pytest.mark.slow),
    pytest.param("3D.SEResNet18", marks=pytest.mark.slow),
    pytest.param("3D.ResNeXt50", marks=VERY_SLOW),
    pytest.param("3D.SEResNeXt50", marks=VERY_SLOW),
    pytest.param("3D.DenseNet121", marks=VERY_SLOW),
    pytest.param("3D.VGG16", marks=pytest.mark.slow),
    pytest.param("3D.InceptionV3", marks=pytest.mark.slow),
    pytest.param("3D.InceptionResNetV2", marks=VERY_SLOW),
    pytest.param("3D.MobileNet", marks=VERY_SLOW),
    pytest.param("3D.MobileNetV2", marks=VERY_SLOW),
    pytest.param("3D.EfficientNetB0", marks=VERY_SLOW),
    pytest.param("3D.EfficientNetV2B0", marks=VERY_SLOW),
    pytest.param("3D.ConvNeXtTiny", marks=VERY_SLOW),
]
"""One member of each family (the smallest), each trained for one step. Build and step on 2 cores: SmallCNN, Vanilla,
VGG16 and the ResNets under 10 s, InceptionV3 about 20 s; DenseNet121 about 35 s, ResNeXt50, SEResNeXt50 and
InceptionResNetV2 about a minute, and the depthwise networks (MobileNet, EfficientNet, ConvNeXt) minutes."""


def _volumes(n: int, size: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, size, channels), dtype=np.uint8)


# registry


def test_every_3d_entry_is_consistent() -> None:
    assert len(VOLUME_KEYS) == len(ENTRIES) + 2, "every package network, the 3D SmallCNN and Vanilla"
    for key in VOLUME_KEYS:
        info = get_architecture(key)
        assert info.key == key and info.dimension == "3D" and info.spatial_axes == 3
        assert len(info.input_size) == 3 and info.input_shape == (*info.input_size, 1)
        assert info.standardize in STANDARDIZE_MODES
        assert 1 <= info.min_input_size <= min(info.input_size)
        assert info.weights_file is None and info.parameters is not None
    assert get_architecture("3D.ResNet18").input_size == (64, 64, 64)
    assert get_architecture("3D.SmallCNN").input_size == (32, 32, 32)
    assert get_architecture("3D.SmallCNN").min_input_size == 16


def test_every_network_of_the_package_is_registered_with_aucmedis_modes() -> None:
    from classification_models_3D.kkeras import Classifiers

    assert sorted(entry.model_name for entry in ENTRIES) == sorted(Classifiers.models_names())
    aucmedi = {"Vanilla": "zscore", "DenseNet121": "torch", "ResNet18": "grayscale", "ResNeXt101": "grayscale"}
    aucmedi |= {"MobileNet": "tf", "MobileNetV2": "tf", "VGG16": "caffe", "VGG19": "caffe"}
    for name, mode in aucmedi.items():
        assert get_architecture(f"3D.{name}").standardize == mode


@pytest.mark.parametrize("alias", ["3D.ResNet18", "3D.resnet18", "3d.RESNET18", " 3D.ResNet18 "])
def test_3d_lookup_is_case_insensitive(alias: str) -> None:
    assert get_architecture(alias).key == "3D.ResNet18"


def test_a_3d_key_needs_its_prefix() -> None:
    with pytest.raises(ConfigError) as error:
        get_architecture("resnet34")
    message = str(error.value)
    assert "'resnet34'" in message and "3D.ResNet34" in message and "'3D.'" in message
    assert get_architecture("resnet50").key == "2D.ResNet50", "the 2D network keeps its short name"
    assert get_architecture("resnet18").key == "2D.ResNet18", "pyBIA's 2D ResNet-18 (architectures/resnet18.py)"
    assert get_architecture("smallcnn").key == "2D.SmallCNN"


# shapes


@pytest.mark.parametrize("shape", [(64, 64), (64, 64, 1), (64, 64, 3)])
def test_an_image_shape_for_a_3d_key_names_the_key(shape: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match=r"3D\.ResNet18 is a 3D architecture: expected \(depth, height, width\)"):
        SimpleBaseArchitecture("3D.ResNet18", 2, input_shape=shape)


def test_a_volume_shape_for_a_2d_key_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"2D\.SmallCNN is a 2D architecture: expected \(height, width\)"):
        SimpleBaseArchitecture("2D.SmallCNN", 2, input_shape=(32, 32, 32, 1))


def test_bad_volume_shapes() -> None:
    with pytest.raises(ConfigError, match="at least 16 voxels"):
        SimpleBaseArchitecture("3D.SmallCNN", 2, input_shape=(8, 32, 32))
    with pytest.raises(ConfigError, match="1 \\(grayscale\\) or 3 \\(RGB\\) channels"):
        SimpleBaseArchitecture("3D.SmallCNN", 2, input_shape=(32, 32, 32, 2))
    with pytest.raises(ConfigError, match="expected \\(depth, height, width\\)"):
        SimpleBaseArchitecture("3D.SmallCNN", 2, input_shape=(32, 32, 32, 1, 1))


def test_default_and_three_sided_shapes_get_one_channel() -> None:
    model = SimpleBaseArchitecture("3D.SmallCNN", 2)
    assert model.input_shape == (None, 32, 32, 32, 1) and model.inputs[0].dtype == "uint8"
    rgb = SimpleBaseArchitecture("3D.SmallCNN", 2, input_shape=(16, 24, 32, 3))
    assert rgb.input_shape == (None, 16, 24, 32, 3)
    assert SimpleBaseArchitecture("3D.SmallCNN", 2, input_shape=(16, 16, 16)).input_shape == (None, 16, 16, 16, 1)


def test_3d_imagenet_is_refused_without_download(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="3D.ResNet18 has no local ImageNet weights"):
        SimpleBaseArchitecture("3D.ResNet18", 2, input_shape=(32, 32, 32), weights="imagenet", weights_dir=tmp_path)
    with pytest.raises(ConfigError, match="no local ImageNet weights"):
        ClassificationModel3D("resnet18")((32, 32, 32, 3), imagenet=True)


def test_a_3d_weights_file_round_trips(tmp_path: Path) -> None:
    backbone = get_architecture("3D.SmallCNN").builder((16, 16, 16, 3))
    path = tmp_path / "small3d.weights.h5"
    backbone.save_weights(path)
    model = SimpleBaseArchitecture("3D.SmallCNN", 2, input_shape=(16, 16, 16), weights=str(path))
    for got, want in zip(model.get_layer("backbone").get_weights(), backbone.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_the_validate_activation_shim_lets_a_topped_network_build() -> None:
    from keras.applications import imagenet_utils

    from medbench.architectures.models_3d import _factory

    factory = _factory("efficientnetb0")
    assert imagenet_utils.validate_activation is not None
    topped = factory(input_shape=(16, 16, 16, 3), include_top=True, weights=None, classes=2)
    assert topped.output_shape == (None, 2)


# standardization of volume batches


def test_per_image_modes_standardize_each_volume() -> None:
    volumes = np.random.default_rng(5).uniform(0, 255, (3, 6, 5, 4, 2)).astype(np.float32)
    volumes[1] = volumes[1] * 0.1 + 100.0
    volumes[2] = 37.0  # flat
    zscore = standardize(volumes, "zscore").numpy()
    minmax = standardize(volumes, "minmax").numpy()
    for volume, z, m in zip(volumes[:2], zscore, minmax):
        np.testing.assert_allclose(z, (volume - volume.mean()) / volume.std(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(m, (volume - volume.min()) / (volume.max() - volume.min()), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(zscore[2], 0.0)
    single = standardize(volumes[0], "zscore", spatial_axes=3).numpy()
    np.testing.assert_allclose(single, zscore[0], rtol=1e-5, atol=1e-5)


def test_image_batches_are_still_standardized_per_image() -> None:
    images = np.random.default_rng(6).uniform(0, 255, (3, 8, 7, 3)).astype(np.float32)
    batch = standardize(images, "zscore").numpy()
    for image, out in zip(images, batch):
        np.testing.assert_allclose(out, (image - image.mean()) / image.std(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(standardize(image, "zscore").numpy(), out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", list(STANDARDIZE_MODES))
def test_the_layer_on_volumes_equals_standardize_of_the_replicated_volume(mode: str) -> None:
    gray = _volumes(2, 6, seed=7)
    got = Standardization(mode)(gray).numpy()
    assert got.dtype == np.float32 and got.shape == (2, 6, 6, 6, 3)
    expected = standardize(np.repeat(gray, 3, axis=-1).astype(np.float32), mode).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


# one training step per family


@pytest.mark.parametrize("key", FAMILIES)
def test_a_member_of_every_family_trains_one_step(key: str) -> None:
    info = get_architecture(key)
    size = max(32, info.min_input_size)
    model = SimpleBaseArchitecture(key, 3, input_shape=(size, size, size, 1))
    assert model.inputs[0].dtype == "uint8" and model.input_shape == (None, size, size, size, 1)
    assert model.get_layer("backbone").count_params() == info.parameters, "the listed parameter count"
    model.compile(optimizer="adam", loss="binary_crossentropy")
    volumes = _volumes(2, size)
    labels = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32)
    loss = model.train_on_batch(volumes, labels)
    assert np.isfinite(loss)
    scores = model.predict_on_batch(volumes)
    assert scores.dtype == np.float32 and scores.shape == (2, 3) and np.isfinite(scores).all()
    keras.backend.clear_session()


# listing


def test_list_architectures_shows_the_3d_entries(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEDBENCH_")}
    env.update(MEDBENCH_ROOT=str(tmp_path), MEDBENCH_WEIGHTS_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "medbench.cli", "list", "architectures"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    by_key = {row.split()[0]: row.split() for row in result.stdout.splitlines()[1:]}
    assert by_key["3D.ResNet18"][:6] == ["3D.ResNet18", "3D", "64×64×64×1", "grayscale", "33.2", "M"]
    assert by_key["3D.SmallCNN"][1:4] == ["3D", "32×32×32×1", "unit"]
    assert by_key["2D.SmallCNN"][1:3] == ["2D", "64×64×3"]
