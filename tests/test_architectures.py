"""Architecture registry, classifier head, SimpleBaseArchitecture and local-only ImageNet weights."""

from __future__ import annotations

from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format
from keras.src.utils import file_utils

from medbench.architectures.base import SimpleBaseArchitecture
from medbench.architectures.head import classifier_head
from medbench.architectures.info import STANDARDIZE_MODES, ArchitectureInfo
from medbench.architectures.registry import ARCHITECTURES, architecture_names, get_architecture, register_architecture
from medbench.architectures.scratch import scratch_builder
from medbench.architectures.small_cnn import SmallCNN
from medbench.architectures.weights import expected_weights_path, resolve_weights
from medbench.errors import ConfigError, WeightsNotFoundError

REQUIRED = {
    # key: (input size, standardize mode, Keras notop file name)
    "2D.DenseNet121": (224, "torch", "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "2D.DenseNet169": (224, "torch", "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "2D.ResNet50V2": (224, "tf", "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "2D.ResNet152V2": (224, "tf", "resnet152v2_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "2D.ResNet50": (224, "caffe", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "2D.InceptionV3": (299, "tf", "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "2D.InceptionResNetV2": (
        299,
        "tf",
        "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "2D.Xception": (299, "tf", "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "2D.EfficientNetB0": (224, "none", "efficientnetb0_notop.h5"),
    "2D.MobileNetV2": (
        224,
        "tf",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    ),
    "2D.SmallCNN": (64, "unit", None),
    "2D.MobileNet": (224, "tf", "mobilenet_1_0_224_tf_no_top.h5"),
    "2D.MobileNetV3Small": (224, "none", "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"),
    "2D.MobileNetV3Large": (224, "none", "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5"),
    "2D.NASNetMobile": (224, "tf", "nasnet_mobile_no_top.h5"),
    "2D.NASNetLarge": (331, "tf", "nasnet_large_no_top.h5"),
    "2D.ConvNeXtTiny": (224, "none", "convnext_tiny_notop.h5"),
    "2D.ConvNeXtLarge": (224, "none", "convnext_large_notop.h5"),
    "2D.EfficientNetV2B0": (224, "none", "efficientnetv2-b0_notop.h5"),
    "2D.EfficientNetV2S": (384, "none", "efficientnetv2-s_notop.h5"),
    "2D.EfficientNetV2L": (480, "none", "efficientnetv2-l_notop.h5"),
}
AUCMEDI_2D_KEYS = (
    "ResNet50 ResNet101 ResNet152 ResNet50V2 ResNet101V2 ResNet152V2 DenseNet121 DenseNet169 DenseNet201 "
    + " ".join(f"EfficientNetB{variant}" for variant in range(8))
    + " InceptionResNetV2 InceptionV3 MobileNet MobileNetV2 NASNetMobile NASNetLarge VGG16 VGG19 Xception"
    + " ConvNeXtTiny ConvNeXtSmall ConvNeXtBase ConvNeXtLarge Vanilla"
).split()
"""AUCMEDI's 2D keys: every one Keras builds, and its own Vanilla network."""
KERAS_EXTRAS = ("EfficientNetV2B0", "EfficientNetV2B3", "EfficientNetV2S", "EfficientNetV2L", "MobileNetV3Small")
FAST = {"2D.DenseNet121", "2D.SmallCNN", "2D.Vanilla", "2D.MobileNetV2", "2D.MobileNetV3Small"}
# EfficientNetB1-B6 share B0's and B7's builder and differ only in Keras' width/depth factors.
SAME_AS_B0_AND_B7 = {f"2D.EfficientNetB{variant}" for variant in range(1, 7)}


def _small_size(info: ArchitectureInfo) -> int:
    return max(32, info.min_input_size)


def _images(n: int, size: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, size, size, channels)).astype("float32")


def _save_like_keras_applications(model: keras.Model, path: Path) -> None:
    """Write `model`'s weights as Keras' ImageNet files are: legacy HDF5, loaded by layer order."""
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, model)


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything asks Keras to fetch a file."""

    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError(f"Keras was asked to download: {args} {kwargs}")

    monkeypatch.setattr(file_utils, "get_file", refuse)


# registry


def test_required_entries_and_their_metadata() -> None:
    for key, (size, mode, weights_file) in REQUIRED.items():
        info = get_architecture(key)
        assert info.key == key
        assert info.input_size == (size, size)
        assert info.input_shape == (size, size, 3)
        assert info.standardize == mode
        assert info.weights_file == weights_file


def test_every_entry_is_consistent() -> None:
    assert architecture_names() == tuple(ARCHITECTURES)
    for key, info in ARCHITECTURES.items():
        assert key == info.key and key.startswith(f"{info.dimension}.") and info.dimension in ("2D", "3D")
        assert len(info.input_size) == {"2D": 2, "3D": 3}[info.dimension]
        assert info.standardize in STANDARDIZE_MODES
        assert info.min_input_size <= min(info.input_size)
        if info.weights_file is not None:
            renamed = key.startswith("2D.NASNet")  # Keras caches NASNet-mobile-no-top.h5 as nasnet_mobile_no_top.h5
            assert info.weights_url is not None and (renamed or info.weights_url.endswith("/" + info.weights_file))


def test_every_aucmedi_2d_key_keras_builds_is_registered_with_the_keras_extras() -> None:
    missing = [name for name in (*AUCMEDI_2D_KEYS, *KERAS_EXTRAS) if f"2D.{name}" not in ARCHITECTURES]
    assert missing == []


def test_nasnet_message_names_the_download_and_the_name_to_save_it_as(tmp_path: Path, no_download: None) -> None:
    with pytest.raises(WeightsNotFoundError) as error:
        SimpleBaseArchitecture("2D.NASNetMobile", 2, weights="imagenet", weights_dir=tmp_path)
    message = str(error.value)
    assert "nasnet/NASNet-mobile-no-top.h5 (save it as nasnet_mobile_no_top.h5)" in message


@pytest.mark.parametrize("alias", ["2D.DenseNet121", "densenet121", "DENSENET121", "2d.densenet121", " DenseNet121 "])
def test_lookup_is_case_insensitive_and_prefix_optional(alias: str) -> None:
    assert get_architecture(alias).key == "2D.DenseNet121"


def test_unknown_architecture_lists_keys() -> None:
    with pytest.raises(ConfigError) as error:
        get_architecture("2D.DenseNet122")
    message = str(error.value)
    assert "'2D.DenseNet122'" in message
    for key in REQUIRED:
        assert key in message


def test_register_refuses_duplicates() -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_architecture(ArchitectureInfo("2d.smallcnn", scratch_builder(SmallCNN), (64, 64), "unit"))


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(key, marks=() if key in FAST else pytest.mark.slow)
        for key in ARCHITECTURES
        if key.startswith("2D.")  # every 2D key builds and predicts; 3D entries: tests/test_architectures_3d.py
    ],
)
def test_every_entry_builds_at_small_size(key: str) -> None:
    info = get_architecture(key)
    size = _small_size(info)
    model = SimpleBaseArchitecture(key, 5, input_shape=(size, size))
    assert model.input_shape == (None, size, size, 3)
    output = model(_images(2, size), training=False)
    assert tuple(output.shape) == (2, 5)
    assert model.get_layer("backbone").count_params() == info.parameters, "the listed parameter count"


def test_list_architectures_shows_each_entry_and_which_imagenet_files_are_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from medbench.cli import main

    (tmp_path / "convnext_tiny_notop.h5").write_bytes(b"")
    monkeypatch.setenv("MEDBENCH_ROOT", str(tmp_path))
    monkeypatch.setenv("MEDBENCH_WEIGHTS_DIR", str(tmp_path))
    assert main(["list", "architectures"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["key", "dim", "input", "standardize", "parameters", "ImageNet", "file"]
    by_key = {row.split()[0]: row.split() for row in rows}
    assert list(by_key) == list(ARCHITECTURES)
    assert by_key["2D.ConvNeXtTiny"] == [
        "2D.ConvNeXtTiny",
        "2D",
        "224×224×3",
        "none",
        "27.8",
        "M",
        "present",
        "(convnext_tiny_notop.h5)",
    ]
    assert by_key["2D.NASNetLarge"][2:6] == ["331×331×3", "tf", "84.9", "M"]
    assert by_key["2D.NASNetLarge"][6:] == ["missing", "(nasnet_large_no_top.h5)"]
    assert by_key["2D.SmallCNN"][6:] == ["none", "(trained", "from", "scratch)"]


def test_efficientnet_family_uses_the_matching_keras_model() -> None:
    for key in SAME_AS_B0_AND_B7:
        info = get_architecture(key)
        assert info.builder.factory is getattr(keras.applications, info.name)
        assert info.weights_file == f"{info.name.lower()}_notop.h5"


# SmallCNN


def test_small_cnn_is_small_and_size_agnostic() -> None:
    backbone = SmallCNN((None, None, 3))
    assert 80_000 <= backbone.count_params() <= 120_000
    for height, width in [(32, 32), (128, 96)]:
        features = backbone(np.zeros((1, height, width, 3), "float32"))
        assert tuple(features.shape) == (1, height // 16, width // 16, 128)


def test_small_cnn_default_input_and_grayscale() -> None:
    model = SimpleBaseArchitecture("SmallCNN", 2)
    assert model.input_shape == (None, 64, 64, 3)
    gray = SimpleBaseArchitecture("SmallCNN", 2, input_shape=(48, 48, 1))
    assert tuple(gray(_images(3, 48, channels=1)).shape) == (3, 2)


def test_vanilla_is_aucmedis_four_conv_relu_blocks_with_zscore_input() -> None:
    info = get_architecture("2D.Vanilla")
    assert (info.standardize, info.input_size, info.weights_file) == ("zscore", (224, 224), None)
    backbone = info.builder((32, 32, 3))
    convolutions = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convolutions] == [32, 64, 128, 256]
    assert all(layer.use_bias and layer.kernel_size == (3, 3) for layer in convolutions)
    assert not [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert backbone.output.shape[1:] == (2, 2, 256)
    with pytest.raises(ConfigError, match="'2D.Vanilla' has no ImageNet weights"):
        SimpleBaseArchitecture("2D.Vanilla", 2, input_shape=(32, 32), weights="imagenet")
    with pytest.raises(ConfigError, match="Vanilla has no ImageNet weights"):
        info.builder((32, 32, 3), weights="imagenet")


def test_small_cnn_rejects_imagenet(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no ImageNet weights"):
        SimpleBaseArchitecture("2D.SmallCNN", 2, weights="imagenet", weights_dir=tmp_path)
    with pytest.raises(ConfigError, match="no ImageNet weights"):
        SmallCNN((32, 32, 3), weights="imagenet")


def test_input_smaller_than_the_architecture_allows() -> None:
    with pytest.raises(ConfigError, match="at least 75 px"):
        SimpleBaseArchitecture("2D.InceptionV3", 2, input_shape=(64, 64))
    with pytest.raises(ConfigError, match="at least 32 px"):
        SimpleBaseArchitecture("2D.SmallCNN", 2, input_shape=(16, 16))
    with pytest.raises(ConfigError, match="expected"):
        SimpleBaseArchitecture("2D.SmallCNN", 2, input_shape=(64,))


# head


def test_head_sigmoid_vs_softmax() -> None:
    images = _images(4, 32, seed=1)
    sigmoid = SimpleBaseArchitecture("SmallCNN", 3, input_shape=(32, 32), activation="sigmoid")
    softmax = SimpleBaseArchitecture("SmallCNN", 3, input_shape=(32, 32), activation="softmax")
    assert sigmoid.get_layer("predictions").activation is keras.activations.sigmoid
    assert softmax.get_layer("predictions").activation is keras.activations.softmax
    probabilities = softmax(images).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    scores = sigmoid(images).numpy()
    assert ((scores > 0) & (scores < 1)).all()


def test_head_fcl_block() -> None:
    plain = SimpleBaseArchitecture("SmallCNN", 3, input_shape=(32, 32))
    with_fcl = SimpleBaseArchitecture("SmallCNN", 3, input_shape=(32, 32), fcl=True, dropout=0.5)
    plain_names = [layer.name for layer in plain.layers]
    assert "head_dense" not in plain_names and "head_dropout" not in plain_names
    assert with_fcl.get_layer("head_dense").units == 512
    assert with_fcl.get_layer("head_dropout").rate == 0.5
    assert with_fcl.get_layer("predictions").output.shape == (None, 3)


def test_head_metadata_input() -> None:
    model = SimpleBaseArchitecture("SmallCNN", 4, input_shape=(32, 32), n_metadata=6, fcl=True)
    assert [tensor.name for tensor in model.inputs] == ["image", "metadata"]
    concat = model.get_layer("head_concat")
    assert [tuple(tensor.shape) for tensor in concat.input] == [(None, 512), (None, 6)], "raw metadata joins"
    assert [model.get_layer(f"metadata_dense_{i}").units for i in (1, 2)] == [512, 256]
    assert [model.get_layer(f"metadata_dropout_{i}").rate for i in (1, 2)] == [0.3, 0.3]
    layer_names = [layer.name for layer in model.layers]
    order = ["head_dense", "head_dropout", "head_concat", "metadata_dense_1", "metadata_dropout_1"]
    order += ["metadata_dense_2", "metadata_dropout_2", "logits", "predictions"]
    assert [name for name in layer_names if name in order] == order, "the seed's Classifier table, in order"
    images, metadata = _images(3, 32), np.random.default_rng(2).normal(size=(3, 6)).astype("float32")
    by_position = model([images, metadata]).numpy()
    by_name = model({"image": images, "metadata": metadata}).numpy()
    assert by_position.shape == (3, 4)
    np.testing.assert_allclose(by_position, by_name, rtol=1e-6)


def test_head_on_vector_features_and_bad_options() -> None:
    features = keras.Input(shape=(10,))
    assert classifier_head(features, 2).shape == (None, 2)
    assert classifier_head(keras.Input(shape=(4, 4, 4, 8)), 3).shape == (None, 3), "3D feature maps are pooled"
    with pytest.raises(ConfigError, match="activation"):
        classifier_head(features, 2, activation="tanh")
    with pytest.raises(ConfigError, match="n_classes"):
        classifier_head(features, 0)
    with pytest.raises(ConfigError, match="dropout"):
        classifier_head(features, 2, dropout=1.0)


def test_output_is_float32_under_mixed_precision() -> None:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = SimpleBaseArchitecture("SmallCNN", 2, input_shape=(32, 32), fcl=True)
        assert model.get_layer("logits").compute_dtype == "float16"
        assert model(_images(1, 32)).dtype == "float32"
    finally:
        keras.config.set_dtype_policy(previous)


def test_backbone_is_nested_and_model_round_trips(tmp_path: Path) -> None:
    model = SimpleBaseArchitecture("SmallCNN", 2, input_shape=(32, 32), n_metadata=2, name="cxr")
    assert model.name == "cxr"
    assert isinstance(model.get_layer("backbone"), keras.Model)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    inputs = [_images(2, 32), np.ones((2, 2), "float32")]
    np.testing.assert_allclose(loaded(inputs).numpy(), model(inputs).numpy(), rtol=1e-6)


# weights


def test_missing_imagenet_file_names_file_folder_and_env(tmp_path: Path, no_download: None) -> None:
    with pytest.raises(WeightsNotFoundError) as error:
        SimpleBaseArchitecture("2D.DenseNet121", 2, weights="imagenet", weights_dir=tmp_path)
    message = str(error.value)
    assert "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path) in message
    assert "MEDBENCH_WEIGHTS_DIR" in message


def test_imagenet_folder_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_download: None) -> None:
    folder = tmp_path / "weights"
    monkeypatch.setenv("MEDBENCH_WEIGHTS_DIR", str(folder))
    info = get_architecture("MobileNetV2")
    assert expected_weights_path(info) == folder / info.weights_file
    with pytest.raises(WeightsNotFoundError, match=str(folder)):
        resolve_weights(info, "imagenet")


def test_imagenet_weights_load_from_local_file(tmp_path: Path, no_download: None) -> None:
    info = get_architecture("2D.MobileNetV2")
    source = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / info.weights_file
    _save_like_keras_applications(source, path)

    model = SimpleBaseArchitecture("2D.MobileNetV2", 3, input_shape=(32, 32), weights="imagenet", weights_dir=tmp_path)
    loaded = model.get_layer("backbone").get_weights()
    expected = source.get_weights()
    assert len(loaded) == len(expected)
    for got, want in zip(loaded, expected):
        np.testing.assert_array_equal(got, want)

    # the very same file is what keras.applications itself loads from a path
    reference = keras.applications.MobileNetV2(include_top=False, weights=str(path), input_shape=(32, 32, 3))
    for got, want in zip(reference.get_weights(), expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_efficientnet_imagenet_matches_keras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = get_architecture("EfficientNetB0")
    source = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    normalization = next(layer for layer in source.layers if isinstance(layer, keras.layers.Normalization))
    normalization.adapt_mean.assign([0.485, 0.456, 0.406])
    normalization.adapt_variance.assign([0.229, 0.224, 0.225])  # Keras' file stores std here
    path = tmp_path / info.weights_file
    _save_like_keras_applications(source, path)

    monkeypatch.setattr(file_utils, "get_file", lambda fname, *args, **kwargs: str(tmp_path / fname))
    reference = keras.applications.EfficientNetB0(include_top=False, weights="imagenet", input_shape=(32, 32, 3))
    ours = info.builder((32, 32, 3), weights=path, imagenet=True)
    images = np.random.default_rng(3).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")

    def stem(model: keras.Model) -> np.ndarray:
        # random deep features are tiny; the stem convolution shows the input scaling clearly
        return keras.Model(model.input, model.get_layer("stem_conv").output)(images).numpy()

    expected_stem = stem(reference)
    assert np.abs(expected_stem).max() > 0.5
    np.testing.assert_allclose(stem(ours), expected_stem, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours(images).numpy(), reference(images).numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_efficientnet_v2_imagenet_matches_keras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = get_architecture("EfficientNetV2B0")
    source = keras.applications.EfficientNetV2B0(include_top=False, weights=None, input_shape=(32, 32, 3))
    for index, weight in enumerate(source.weights):  # positive, so that every BatchNorm variance stays valid
        weight.assign(np.random.default_rng(index).uniform(0.02, 0.08, weight.shape).astype(weight.dtype))
    path = tmp_path / info.weights_file
    _save_like_keras_applications(source, path)

    monkeypatch.setattr(file_utils, "get_file", lambda fname, *args, **kwargs: str(tmp_path / fname))
    reference = keras.applications.EfficientNetV2B0(include_top=False, weights="imagenet", input_shape=(32, 32, 3))
    ours = info.builder((32, 32, 3), weights=path, imagenet=True)
    assert ours.name == "backbone"
    images = np.random.default_rng(3).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(ours(images).numpy(), reference(images).numpy(), rtol=1e-4, atol=1e-5)
    assert np.isfinite(reference(images).numpy()).all() and np.abs(reference(images).numpy()).max() > 1e-3


def test_weights_from_path(tmp_path: Path) -> None:
    backbone = SmallCNN((32, 32, 3), name="backbone")
    path = tmp_path / "pretrained.weights.h5"
    backbone.save_weights(path)
    model = SimpleBaseArchitecture("SmallCNN", 2, input_shape=(32, 32), weights=str(path))
    for got, want in zip(model.get_layer("backbone").get_weights(), backbone.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_bad_weights_paths(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="missing.h5"):
        SimpleBaseArchitecture("SmallCNN", 2, input_shape=(32, 32), weights=tmp_path / "missing.h5")
    with pytest.raises(ConfigError, match="expected None, 'imagenet'"):
        SimpleBaseArchitecture("SmallCNN", 2, input_shape=(32, 32), weights="imagenet21k")
    other = tmp_path / "other.h5"
    _save_like_keras_applications(SmallCNN((32, 32, 3), filters=(8, 8)), other)
    with pytest.raises(ConfigError, match="does not fit"):
        SimpleBaseArchitecture("SmallCNN", 2, input_shape=(32, 32), weights=other)
