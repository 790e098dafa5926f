"""Commands and modules that need no TensorFlow never import it (a fresh interpreter each time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
from medbench.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules}))
"""

GRID_24 = """
architectures: [2D.SmallCNN]
grid:
  - base: {dataset: demo, epochs: 1, n_classes: 5, image_size: 32, learning_rate: 0.001, split: [80, 20]}
    vary: {loss: [BCE, WBCE, CWBCE], batch_size: [16, 32], epochs: [1, 2], crop: [false, true]}
"""


def _probe(args: list[str], cwd: Path) -> tuple[dict, str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["ensemble", "--help"],
        ["exec", "--help"],
        ["report", "--help"],
        ["inspect", "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"],
        ["inspect", "--legacy", "Chexpert_BCE_E3_B32_C0_N12_Uones_D256_DS9505_2LR1_LF5_SGD_Upsampled_1"],
        ["list", "architectures"],
        ["list", "datasets"],
        ["list", "benchmarks"],
        ["leaderboard"],
        ["exec", "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam", "--dry-run", "--option", "max_train_samples=40"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_light_commands_never_import_tensorflow(args: list[str], tmp_path: Path) -> None:
    outcome, _ = _probe(args, tmp_path)
    assert outcome["code"] == 0
    assert not outcome["tensorflow"] and not outcome["keras"]


def test_a_24_experiment_dry_run_never_imports_tensorflow(tmp_path: Path) -> None:
    batch = tmp_path / "grid.yaml"
    batch.write_text(GRID_24)
    outcome, stdout = _probe(["exec", "--batch", str(batch), "--dry-run"], tmp_path)
    assert outcome["code"] == 0 and not outcome["tensorflow"]
    names = stdout.strip().splitlines()[:-1]
    assert len(names) == 24 and len(set(names)) == 24 and all(name.startswith("SmallCNN_demo_") for name in names)


def test_reading_runs_specs_and_schedules_needs_no_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import medbench.runs, medbench.training.schedule, medbench.benchmark.spec, medbench.experiment_exec\n"
        "import medbench.architectures, medbench.tracking.storage, medbench.demo, medbench.experiment_data\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
