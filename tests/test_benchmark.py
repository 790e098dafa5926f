"""Benchmark names: every valid benchmark round-trips; every bad token is named in the error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medbench.benchmark import EXAMPLE_NAME, Benchmark, decode_learning_rate, encode_learning_rate
from medbench.benchmark.vocabulary import (
    AUGMENTATIONS,
    IMAGE_SIZE,
    LEARNING_RATE,
    LOSSES,
    OPTIMIZERS,
    TRANSFORMS,
    UNCERTAINTY_POLICIES,
    UNCERTAINTY_PRESETS,
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
)


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

benchmarks = st.builds(
    Benchmark,
    dataset=st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True),
    loss=st.sampled_from(LOSSES),
    epochs=st.integers(1, 500),
    batch_size=st.integers(1, 4096),
    n_classes=st.integers(1, 40),
    image_size=st.integers(IMAGE_SIZE.low, 2048),
    learning_rate=learning_rates,
    lr_factor=lr_factors,
    l1_normed=st.booleans(),
    crop=st.booleans(),
    augmentations=st.lists(st.sampled_from(AUGMENTATIONS), unique=True).map(tuple),
    transformations=st.lists(transform, max_size=4).map(tuple),
    uncertainty=st.sampled_from(UNCERTAINTY_POLICIES + tuple(UNCERTAINTY_PRESETS)),
    split=_split(),
    optimizer=st.sampled_from(OPTIMIZERS),
    upsampled=st.booleans(),
    seed=st.integers(0, 2**31),
)


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
