"""Benchmark names: every valid benchmark round-trips; every bad token is named in the error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medbench.benchmark import EXAMPLE_NAME, Benchmark, decode_learning_rate, encode_learning_rate
from medbench.benchmark.vocabulary import (
    AUGMENTATIONS,
    COLOR_SPACES,
    ENUMERATIONS,
    IMAGE_SIZE,
    LEARNING_RATE,
    LOSSES,
    OPTIMIZERS,
    RESIZE_FILTERS,
    TRANSFORMS,
    UNCERTAINTY_POLICIES,
    UNCERTAINTY_PRESETS,
    VOLUME_SIZE,
)
from medbench.errors import BenchmarkNameError


def _values(kind: str, index: int = 0) -> st.SearchStrategy[int]:
    """The valid values of a transformation parameter, from the vocabulary."""
    valid = TRANSFORMS[kind].parameters[index].range
    return st.integers(valid.low, valid.high)


transform = st.one_of(
    st.builds(lambda r, a: f"sharp{r}{a}", _values("sharp"), _values("sharp", 1)),
    st.just("histeq"),
    st.builds(lambda n: f"clahe{n}", st.one_of(st.just(""), _values("clahe").map(str))),
    _values("blur").map(lambda n: f"blur{n}"),
    _values("median").map(lambda n: f"median{n}"),
    st.builds(lambda c, w: f"window{c}w{w}", _values("window"), _values("window", 1)),
    st.sampled_from(COLOR_SPACES),
)
resize_filter = st.one_of(st.none(), st.sampled_from(RESIZE_FILTERS))


def _split() -> st.SearchStrategy[tuple[int, ...]]:
    two = st.integers(1, 99).map(lambda train: (train, 100 - train))
    three = (
        st.tuples(st.integers(1, 98), st.integers(1, 98))
        .filter(lambda t: sum(t) < 100)
        .map(lambda t: (t[0], t[1], 100 - sum(t)))
    )
    return st.one_of(st.just(()), two, three)


learning_rates = st.one_of(
    st.builds(lambda m, e: float(f"{m}e-{e}"), st.integers(1, 999), st.integers(0, 12)).filter(
        lambda rate: rate <= LEARNING_RATE.high
    ),
    st.floats(min_value=1e-12, max_value=LEARNING_RATE.high, allow_nan=False, allow_infinity=False),
)
lr_factors = st.one_of(
    st.integers(1, 99).map(lambda d: d / 100),
    st.floats(min_value=1e-6, max_value=0.999999, exclude_min=True),
)

common_fields = {
    "dataset": st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True),
    "loss": st.sampled_from(LOSSES),
    "epochs": st.integers(1, 500),
    "batch_size": st.integers(1, 4096),
    "n_classes": st.integers(1, 40),
    "learning_rate": learning_rates,
    "lr_factor": lr_factors,
    "l1_normed": st.booleans(),
    "augmentations": st.lists(st.sampled_from(AUGMENTATIONS), unique=True).map(tuple),
    "uncertainty": st.sampled_from(UNCERTAINTY_POLICIES + tuple(UNCERTAINTY_PRESETS)),
    "split": _split(),
    "optimizer": st.sampled_from(OPTIMIZERS),
    "upsampled": st.booleans(),
    "seed": st.integers(0, 2**31),
}
image_benchmarks = st.builds(
    Benchmark,
    **common_fields,
    image_size=st.integers(IMAGE_SIZE.low, 2048),
    crop=st.booleans(),
    transformations=st.builds(
        lambda tokens, chosen, at: tuple(tokens[:at] + ([chosen] if chosen else []) + tokens[at:]),
        st.lists(transform, max_size=4),
        resize_filter,
        st.integers(0, 4),
    ),
    enumeration=st.sampled_from(tuple(ENUMERATIONS)),
    dimension=st.just(2),
)
volume_benchmarks = st.builds(
    Benchmark,
    **common_fields,
    image_size=st.integers(VOLUME_SIZE.low, VOLUME_SIZE.high),
    dimension=st.just(3),
    depth=st.one_of(st.none(), st.integers(VOLUME_SIZE.low, VOLUME_SIZE.high)),
)
benchmarks = st.one_of(image_benchmarks, volume_benchmarks)


@settings(max_examples=600, deadline=None)
@given(benchmarks)
def test_every_benchmark_round_trips_through_its_name(benchmark: Benchmark) -> None:
    assert Benchmark.from_name(benchmark.name) == benchmark
    assert Benchmark.from_name(benchmark.name).name == benchmark.name


@given(benchmarks)
def test_to_dict_round_trips(benchmark: Benchmark) -> None:
    assert Benchmark.from_dict(benchmark.to_dict()) == benchmark


def test_issue_example_is_canonical() -> None:
    benchmark = Benchmark.from_name(EXAMPLE_NAME)
    assert benchmark.loss == "CWBCE" and benchmark.l1_normed
    assert benchmark.epochs == 5 and benchmark.batch_size == 32 and not benchmark.crop
    assert benchmark.n_classes == 12 and benchmark.augmentations == ("affine",)
    assert benchmark.transformations == ("sharp21",) and benchmark.uncertainty == "U75"
    assert benchmark.image_size == 256 and benchmark.split == (95, 5)
    assert benchmark.learning_rate == 1e-4 and benchmark.lr_factor == 0.5
    assert benchmark.optimizer == "Adam" and benchmark.upsampled
    assert benchmark.name == EXAMPLE_NAME


@pytest.mark.parametrize(
    ("legacy", "field", "value"),
    [
        ("chexpert_BCE_E3_B32_C0_N12_D256_1LR4_LF5", "optimizer", "Adam"),
        ("chexpert_BCE_E3_B32_C0_N12_Uzero_D256_1LR4_LF5_Adam", "uncertainty", "zeros"),
        ("chexpert_BCE_E3_B32_C0_N12_Uone_D256_1LR4_LF5_Adam", "uncertainty", "ones"),
        ("chexpert_BCE_E3_B32_C0_N12_D256_D9505_1LR4_LF5_Adam", "split", (95, 5)),
        ("chexpert_BCE_E3_B32_C1_N5_D1024_D9505_5LR5_LF1_SGD", "image_size", 1024),
    ],
)
def test_original_spellings_still_parse(legacy: str, field: str, value: object) -> None:
    assert getattr(Benchmark.from_name(legacy), field) == value


@pytest.mark.parametrize(
    ("name", "must_mention"),
    [
        ("chexpert_XBCE_E3_B32_C0_N12_D256_1LR4_LF5", ["'XBCE'", "BCE, WBCE, CWBCE"]),
        ("chexpert_BCE_E3_B32_C2_N12_D256_1LR4_LF5", ["'C2'", "C0 or C1"]),
        ("chexpert_BCE_E3_B32_C0_N12_U99_D256_1LR4_LF5", ["'U99'", "U75"]),
        ("chexpert_BCE_E3_B32_C0_N12_D256_1LR4_LF5_Adam_foo", ["'foo'", "position 11", "upsampled"]),
        ("chexpert_BCE_E3_B32_C0_N12_D256_1LR4", ["learning factor", "end of the name"]),
        ("chexpert_BCE_E3_B32_C0_N12_AugRotate_D256_1LR4_LF5", ["AugRotate"]),
        ("chexpert_BCE_E3_B32_C0_N12_D256_DS9595_1LR4_LF5", ["(95, 95)", "DS9505"]),
        ("chexpert_BCE_E3__B32_C0_N12_D256_1LR4_LF5", ["empty token"]),
        ("Chexpert_BCE_E3_B32_C0_N12_D256_1LR4_LF5", ["'Chexpert'", "lowercase"]),
        ("", ["non-empty"]),
    ],
)
def test_bad_names_name_the_token_and_the_valid_forms(name: str, must_mention: list[str]) -> None:
    with pytest.raises(BenchmarkNameError) as error:
        Benchmark.from_name(name)
    for text in must_mention:
        assert text in str(error.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"loss": "MSE"},
        {"epochs": 0},
        {"lr_factor": 1.0},
        {"learning_rate": -1.0},
        {"augmentations": ("affine", "affine")},
        {"transformations": ("sharpen",)},
        {"optimizer": "adam"},
        {"split": (50, 30)},
    ],
)
def test_invalid_fields_are_rejected(changes: dict) -> None:
    with pytest.raises(BenchmarkNameError):
        Benchmark(dataset="chexpert", **changes)


def test_learning_rate_tokens() -> None:
    assert encode_learning_rate(1e-4) == "1LR4"
    assert encode_learning_rate(2.5e-5) == "25LR6"
    assert encode_learning_rate(1.0) == "1LR0"
    assert decode_learning_rate("25LR6") == 2.5e-5


def test_presets_are_consistent_with_their_names() -> None:
    for token, preset in UNCERTAINTY_PRESETS.items():
        assert token == f"U{len(preset.uzeros)}{len(preset.uones)}"
        assert not set(preset.uzeros) & set(preset.uones)


# --------------------------------------------------------------------------------------------------
# A name that parses can run; the original platform's names are read with legacy=True
# --------------------------------------------------------------------------------------------------


def _number(valid_low: int, valid_high: int) -> st.SearchStrategy[int]:
    """Mostly valid values, with the degenerate ones around the range mixed in."""
    edges = [0, 1, valid_low - 1, valid_high + 1, 99999]
    return st.one_of(st.integers(valid_low, valid_high), st.sampled_from([e for e in edges if e >= 0]))


any_transform = st.one_of(
    st.builds(lambda r, a: f"sharp{r}{a}", st.integers(0, 9), st.integers(0, 9)),
    st.just("histeq"),
    st.builds(lambda n: f"clahe{n}", st.one_of(st.just(""), _number(1, 100).map(str))),
    _number(1, 50).map(lambda n: f"blur{n}"),
    _number(2, 51).map(lambda n: f"median{n}"),
    st.builds(lambda c, w: f"window{c}w{w}", _number(0, 255), _number(1, 510)),
    st.sampled_from(COLOR_SPACES + RESIZE_FILTERS),
)

names = st.builds(
    lambda e, b, n, transforms, d, mantissa, exponent, factor, seed: "_".join(
        [
            "demo",
            "BCE",
            f"E{e}",
            f"B{b}",
            "C0",
            f"N{n}",
            *(["-".join(transforms)] if transforms else []),
            f"D{d}",
            "DS8020",
            f"{mantissa}LR{exponent}",
            f"LF{factor}",
            "Adam",
            *([f"S{seed}"] if seed else []),
        ]
    ),
    _number(1, 1000),
    _number(1, 4096),
    _number(1, 1000),
    st.lists(any_transform, max_size=3),
    _number(8, 4096),
    st.integers(0, 999),
    st.integers(0, 12),
    st.integers(0, 99).map(str),
    st.one_of(st.just(0), st.integers(1, 2**33)),
)


@settings(max_examples=300, deadline=None)
@given(names)
def test_every_name_that_parses_builds_its_preprocessing_and_options(name: str) -> None:
    import numpy as np

    from medbench.benchmark import ExperimentSpec
    from medbench.preprocessing.params import PreprocessParams, preprocess_image  # noqa: F401
    from medbench.preprocessing.transforms import compose
    from medbench.training.schedule import Schedule

    try:
        benchmark = Benchmark.from_name(name)
    except BenchmarkNameError as error:
        assert "expected" in str(error)
        return
    colour = any(token in COLOR_SPACES for token in benchmark.transformations)
    params = PreprocessParams.for_benchmark(benchmark, channels=3 if colour else 1)
    image = np.random.default_rng(0).integers(0, 256, (40, 48, 3) if colour else (40, 48), dtype=np.uint8)
    assert compose(params.transformations)(image).shape == image.shape
    spec = ExperimentSpec(benchmark)
    schedule = Schedule.for_spec(spec)
    assert 0 < schedule.learning_rate and 0 < schedule.lr_factor < 1 and schedule.epochs >= 1
    np.random.default_rng(benchmark.seed)
    np.random.seed(benchmark.seed)  # keras.utils.set_random_seed seeds NumPy's legacy generator with it


@pytest.mark.parametrize(
    ("token", "replaces", "must_mention"),
    [
        ("E0", "E1", ["E0", "1..1000"]),
        ("B0", "B16", ["B0", "1..4096"]),
        ("N0", "N5", ["N0", "1..1000"]),
        ("D0", "D32", ["D0", "8..4096"]),
        ("D100000", "D32", ["D100000", "8..4096"]),
        ("0LR3", "1LR3", ["learning_rate 0.0", "(0, 10]"]),
        ("11LR0", "1LR3", ["learning_rate 11.0", "(0, 10]"]),
        ("LF0", "LF5", ["lr_factor 0.0", "(0, 1)"]),
        ("S4294967296", "Adam", ["S4294967296", "0..4294967295"]),
    ],
)
def test_degenerate_numbers_are_refused_with_their_range(token: str, replaces: str, must_mention: list[str]) -> None:
    name = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
    bad = name.replace(f"_{replaces}", f"_{replaces}_{token}" if replaces == "Adam" else f"_{token}", 1)
    with pytest.raises(BenchmarkNameError) as caught:
        Benchmark.from_name(bad)
    for text in must_mention:
        assert text in str(caught.value)


@pytest.mark.parametrize(
    ("token", "parameter"),
    [
        ("window128w0", "width 0"),
        ("window300w10", "center 300"),
        ("sharp01", "radius 0"),
        ("sharp20", "amount 0"),
        ("blur0", "sigma 0"),
        ("blur99999", "sigma 99999"),
        ("median1", "size 1"),
        ("clahe0", "clip_limit 0"),
    ],
)
def test_degenerate_transformations_are_refused_at_parse_time(token: str, parameter: str) -> None:
    with pytest.raises(BenchmarkNameError) as caught:
        Benchmark.from_name(f"demo_BCE_E1_B8_C0_N5_{token}_D64_DS8020_1LR3_LF5_Adam")
    assert f"'{token}'" in str(caught.value) and parameter in str(caught.value) and "in " in str(caught.value)


@pytest.mark.parametrize(
    ("original", "canonical"),
    [
        (
            "Chexpert_BCE_E3_B32_C0_N12_Uones_D256_DS9505_2LR1_LF5_SGD_Upsampled_1",
            "chexpert_BCE_E3_B32_C0_N12_Uone_D256_DS9505_2LR1_LF5_SGD_upsampled",
        ),
        (
            "Chexpert_CWBCE_L1Normed_E3_B32_C0_N12_AugAffineColor_sharp21_U75_D256_DS9505_5LR1_LF1_SGD_Upsampled",
            "chexpert_CWBCE_L1Normed_E3_B32_C0_N12_AugAffineColor_sharp21_U75_D256_DS9505_5LR1_LF1_SGD_upsampled",
        ),
        ("Chexpert_CWBCE_E9_B32_C0_N12_D320", "chexpert_CWBCE_E9_B32_C0_N12_D320_1LR3_LF1_Adam"),
        ("Chexpert_BCE_E5_B32_C0_N5_D256_DS9010_LR4", "chexpert_BCE_E5_B32_C0_N5_D256_DS9010_1LR4_LF1_Adam"),
        ("chexpert_BCE_E3_B32_C0_N12_UONES_D256_1LR4_LF5", "chexpert_BCE_E3_B32_C0_N12_Uone_D256_1LR4_LF5_Adam"),
        ("chexpert_BCE_E3_B32_C0_N12_UZEROES_D256_1LR4_LF5", "chexpert_BCE_E3_B32_C0_N12_D256_1LR4_LF5_Adam"),
        (
            "Chexpert_WBCE_NoNorm_E3_B32_C1_N12_NoAug_hist_gb_D256_DS9505_1LR4_LF5_Adam",
            "chexpert_WBCE_E3_B32_C1_N12_histeq-blur1_D256_DS9505_1LR4_LF5_Adam",
        ),
        ("chexpert_BCE_E3_B32_C0_N12_gb_hist_D256", "chexpert_BCE_E3_B32_C0_N12_blur1-histeq_D256_1LR3_LF1_Adam"),
    ],
)
def test_original_names_are_read_into_the_nearest_benchmark(original: str, canonical: str) -> None:
    with pytest.raises(BenchmarkNameError):
        Benchmark.from_name(original)
    assert Benchmark.from_name(original, legacy=True).name == canonical
    assert Benchmark.from_name(canonical, legacy=True).name == canonical, "canonical names read the same either way"


@pytest.mark.parametrize(
    ("original", "must_mention"),
    [
        ("Chexpert_FOCAL_E3_B32_C0_N12_D256", ["'FOCAL'", "BCE, WBCE, CWBCE"]),
        ("Chexpert_BCE_E3_B32_C0_N12_Umaybe_D256", ["'Umaybe'"]),
        ("Chexpert_BCE_E3_B32_C0_N12_D256_DS9505_2LR1_LF5_SGD_extra", ["'extra'"]),
        ("Chexpert_BCE_E0_B32_C0_N12_D256", ["E0"]),
    ],
)
def test_legacy_reading_still_refuses_what_it_cannot_read(original: str, must_mention: list[str]) -> None:
    with pytest.raises(BenchmarkNameError) as caught:
        Benchmark.from_name(original, legacy=True)
    for text in must_mention:
        assert text in str(caught.value)
    assert repr(original) in str(caught.value), "the error names the name as given"


# --------------------------------------------------------------------------------------------------
# The dimension token: 3D benchmarks of volumes
# --------------------------------------------------------------------------------------------------

VOLUME_NAME = "ctdemo_3D_BCE_E2_B4_C0_N2_AugAffineColor_D32_DS602020_1LR3_LF5_Adam"


def test_the_3d_token_follows_the_dataset_and_2d_names_are_unchanged() -> None:
    volume = Benchmark.from_name(VOLUME_NAME)
    assert volume.dimension == 3 and volume.depth is None and volume.spatial_shape == (32, 32, 32)
    assert volume.name == VOLUME_NAME
    image = Benchmark.from_name(VOLUME_NAME.replace("_3D", "").replace("ctdemo", "demo"))
    assert image.dimension == 2 and image.spatial_shape == (32, 32) and "3D" not in image.name
    assert Benchmark.from_name(EXAMPLE_NAME).dimension == 2
    assert Benchmark.from_name(VOLUME_NAME.replace("_3D", "_2D")).dimension == 2, "2D may be written, is left out"


def test_a_depth_token_makes_a_non_cubic_volume_and_a_cube_has_one_spelling() -> None:
    deep = Benchmark.from_name(VOLUME_NAME.replace("_D32_", "_D32_Z16_"))
    assert deep.depth == 16 and deep.spatial_shape == (16, 32, 32) and "_D32_Z16_" in deep.name
    assert Benchmark.from_name(VOLUME_NAME.replace("_D32_", "_D32_Z32_")).name == VOLUME_NAME
    assert Benchmark(dataset="ct", dimension=3, image_size=32, depth=32) == Benchmark(
        dataset="ct", dimension=3, image_size=32
    )


@pytest.mark.parametrize(
    ("name", "must_mention"),
    [
        (VOLUME_NAME.replace("_C0_", "_C1_"), ["C1", "2D only", "C0"]),
        (VOLUME_NAME.replace("_D32_", "_clahe_D32_"), ["'clahe'", "2D image filters", "3D"]),
        (VOLUME_NAME.replace("_D32_", "_D600_"), ["D600", "8..512"]),
        (VOLUME_NAME.replace("_D32_", "_D32_Z4_"), ["Z4", "8..512"]),
        (VOLUME_NAME.replace("_3D_", "_").replace("_D32_", "_D32_Z16_"), ["Z16", "only a 3D benchmark"]),
        (VOLUME_NAME.replace("_3D_", "_4D_"), ["'4D'", "position 2"]),
        (VOLUME_NAME.replace("_3D_", "_").replace("_BCE_", "_BCE_3D_"), ["'3D'", "position 3"]),
    ],
    ids=["crop", "transformation", "size", "depth", "2d-depth", "4d", "late-token"],
)
def test_what_a_volume_cannot_carry_is_refused_naming_the_token(name: str, must_mention: list[str]) -> None:
    with pytest.raises(BenchmarkNameError) as caught:
        Benchmark.from_name(name)
    for text in must_mention:
        assert text in str(caught.value)


def test_an_older_dict_without_the_new_fields_reads_as_2d() -> None:
    data = Benchmark.from_name(EXAMPLE_NAME).to_dict()
    del data["dimension"], data["depth"]
    assert Benchmark.from_dict(data) == Benchmark.from_name(EXAMPLE_NAME)
