"""`medbench exec BENCHMARK --option key=value` for every ExperimentOptions field; usage errors through argparse;
log lines and progress bars that do not garble each other."""

from __future__ import annotations

import json
import re

import pytest
from cli_process import run_medbench

from medbench.benchmark import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.cli import build_parser, main
from medbench.settings import Settings

BASE = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: medbench exec") and "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("max_train_sample=10", "unknown option 'max_train_sample'; valid: weights, fcl,"),
        ("max_train_samples=many", "max_train_samples 'many': expected int or none"),
        ("strategy=tpu", "strategy 'tpu': expected one of default, mirrored, multiworker"),
        ("tensorboard", "expected key=value, e.g. max_train_samples=400"),
        ("upsample_factors={Edema: 0}", "upsample_factors['Edema'] 0"),
    ],
)
def test_bad_options_are_usage_errors(option: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = _usage_error(["exec", BASE, "--option", option, "--dry-run"], capsys)
    assert line.startswith("medbench exec: error: argument --option: ") and message in line


def test_exactly_one_of_benchmark_and_batch(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["exec", "--dry-run"], ["exec", BASE, "--batch", "x.yaml", "--dry-run"]):
        message = _usage_error(argv, capsys)
        assert message.endswith("error: give one of --batch FILE, --table FILE.csv or one BENCHMARK name")


def test_every_option_is_reachable_and_defaults_come_from_the_vocabulary() -> None:
    parser = build_parser()
    exec_parser = parser._subparsers._group_actions[0].choices["exec"]  # noqa: SLF001 - argparse keeps them there
    text = exec_parser.format_help()
    for key in ExperimentOptions.keys():
        assert key in text
    args = parser.parse_args(["exec", BASE, "--option", "max_train_samples=400", "--option", "weights=none"])
    assert args.architecture is None  # the spec takes the default of the benchmark's dimension
    assert ExperimentSpec(BASE, args.architecture).architecture == "2D.SmallCNN"
    volume_name = "ctdemo_3D_BCE_E2_B2_C0_N2_D24_DS602020_1LR3_LF5_Adam"
    assert ExperimentSpec(volume_name, args.architecture).architecture == "3D.SmallCNN"
    assert args.option == [("max_train_samples", 400), ("weights", None)]
    strategy = next(action for action in exec_parser._actions if action.dest == "strategy")  # noqa: SLF001
    assert tuple(strategy.choices) == ("default", "mirrored", "multiworker")


@pytest.mark.slow
def test_options_reach_the_run_and_logs_do_not_garble_the_progress_bar(settings: Settings) -> None:
    result = run_medbench(
        [
            "exec",
            BASE.replace("_E1_", "_E2_"),
            "--option",
            "tensorboard=false",
            "--option",
            "max_train_samples=48",
            "--option",
            "plateau_patience=2",
        ],
        settings,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [config_path] = settings.models_dir.glob("*/*/config.json")
    options = json.loads(config_path.read_text())["options"]
    assert options["tensorboard"] is False and options["max_train_samples"] == 48 and options["plateau_patience"] == 2
    assert json.loads(config_path.read_text())["sizes"]["train"] == 48
    assert not (config_path.parent / "tensorboard").exists()
    # Every log line starts on a line of its own: after the last carriage return of its line (and the
    # cursor moves tqdm writes to clear its bars) comes the timestamp, never the tail of a progress bar.
    epoch_lines = [line for line in result.stderr.split("\n") if "INFO medbench.training.callbacks: epoch" in line]
    assert len(epoch_lines) == 2, result.stderr[-3000:]
    for line in epoch_lines:
        start = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line.split("\r")[-1])
        assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO ", start), repr(line)
