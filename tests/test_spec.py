"""ExperimentSpec: one value for benchmark + architecture + options, one check() for everything (no TensorFlow)."""

from __future__ import annotations

import json

import pytest

from medbench.benchmark import Benchmark, ExperimentOptions, ExperimentSpec
from medbench.errors import BenchmarkNameError, ConfigError

BASE = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"


def test_a_spec_names_its_experiment_and_normalizes_the_architecture() -> None:
    spec = ExperimentSpec(BASE, " densenet121 ", {"max_train_samples": 10})
    assert spec.architecture == "2D.DenseNet121" and spec.name == f"DenseNet121_{BASE}"
    assert spec.benchmark == Benchmark.from_name(BASE) and spec.options == ExperimentOptions(max_train_samples=10)
    assert ExperimentSpec(BASE) == ExperimentSpec(Benchmark.from_name(BASE), "2D.SmallCNN", ExperimentOptions())
    assert spec.with_options(fcl=True).options == ExperimentOptions(max_train_samples=10, fcl=True)


def test_to_dict_round_trips_through_json() -> None:
    spec = ExperimentSpec(
        Benchmark.from_name(BASE).with_(upsampled=True),
        "2D.SmallCNN",
        ExperimentOptions(upsample_factors={"Edema": 3}, early_stopping_patience=2, strategy="mirrored"),
    )
    assert ExperimentSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert set(spec.to_dict()) == {"benchmark", "architecture", "options"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (lambda: ExperimentSpec("nosuchset_BCE_E1_B16_C0_N5_D32_1LR3_LF5"), "unknown dataset 'nosuchset'"),
        (lambda: ExperimentSpec("demo_BCE_E1_B16_C0_N7_D32_1LR3_LF5"), "7-class"),
        (lambda: ExperimentSpec("demo_BCE_E1_B16_C0_N5_U75_D32_1LR3_LF5"), "U75"),
        (lambda: ExperimentSpec("demo_BCE_E1_B16_C0_N5_D16_1LR3_LF5"), "D16 is below the 32 px"),
        (lambda: ExperimentSpec("demo_BCE_E1_B16_C0_N5_D64_1LR3_LF5", "2D.InceptionV3"), "below the 75 px"),
        (lambda: ExperimentSpec(BASE, options={"weights": "imagenet"}), "SmallCNN has no ImageNet weights"),
        (
            lambda: ExperimentSpec(
                BASE.replace("_Adam", "_Adam_upsampled"), options={"upsample_factors": {"Oedema": 2}}
            ),
            "'Oedema'",
        ),
    ],
    ids=["dataset", "label-set", "preset", "image-size", "inception-size", "weights", "upsample-class"],
)
def test_check_refuses_what_would_fail_part_way(spec, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        spec().check()
    assert message in str(caught.value) and "demo" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lr_schedule": "cosine"}, "lr_schedule 'cosine'"),
        ({"unmentioned": "one"}, "unmentioned 'one'"),
        ({"strategy": "tpu"}, "strategy 'tpu'"),
        ({"max_train_samples": 0}, "max_train_samples 0"),
        ({"max_train_samples": "many"}, "max_train_samples 'many': expected int or none"),
        ({"fcl": "yes"}, "fcl 'yes': expected bool"),
        ({"plateau_patience": True}, "plateau_patience True: expected int"),
        ({"upsample_factors": {"Edema": 0}}, "upsample_factors['Edema'] 0"),
        ({"max_train_sample": 10}, "unknown experiment options ['max_train_sample']"),
    ],
)
def test_options_are_checked_when_made(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        ExperimentOptions.from_dict(options)


def test_a_spec_of_an_unknown_architecture_or_name_is_refused_at_once() -> None:
    with pytest.raises(ConfigError, match="unknown architecture '2D.NoSuchNet'"):
        ExperimentSpec(BASE, "2D.NoSuchNet")
    with pytest.raises(BenchmarkNameError, match="'E0'|E0"):
        ExperimentSpec(BASE.replace("_E1_", "_E0_"))
