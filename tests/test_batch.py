"""Batches: YAML/CSV expansion, grids, shards, dry runs and failures that do not stop the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from medbench.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.predefined import PREDEFINED, grid, loss_grid
from medbench.benchmark.spec import ExperimentSpec
from medbench.errors import ConfigError
from medbench.experiment_exec import load_batch, parse_shard, run_batch, shard
from medbench.settings import Settings
from medbench.tracking.logs import FAILED_LOG, UNVALIDATED_LOG, ExperimentLog

REPO = Path(__file__).resolve().parents[1]
BASE = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_batch_expands_lists_and_grids(tmp_path: Path) -> None:
    batch = write(
        tmp_path / "batch.yaml",
        f"""
architectures: [2D.SmallCNN, 2D.MobileNetV2]
options: {{max_train_samples: 10}}
benchmarks:
  - {BASE}
  - {{dataset: demo, n_classes: 5, image_size: 32, split: [80, 20]}}
grid:
  - base: {BASE}
    vary: {{loss: [BCE, WBCE, CWBCE], batch_size: [8, 16]}}
""",
    )
    items = load_batch(batch)
    assert len(items) == (2 + 6) * 2
    assert items[0].benchmark == Benchmark.from_name(BASE) and items[0].options == ExperimentOptions(
        max_train_samples=10
    )
    assert {item.architecture for item in items} == {"2D.SmallCNN", "2D.MobileNetV2"}
    assert sorted({(i.benchmark.loss, i.benchmark.batch_size) for i in items[4:]}) == sorted(
        (loss, size) for loss in ("BCE", "WBCE", "CWBCE") for size in (8, 16)
    )


def test_csv_batch_one_row_per_experiment(tmp_path: Path) -> None:
    batch = write(
        tmp_path / "batch.csv", f"benchmark,architecture\n{BASE},2D.SmallCNN\n{BASE.replace('BCE', 'WBCE', 1)},\n"
    )
    items = load_batch(batch)
    assert [i.benchmark.loss for i in items] == ["BCE", "WBCE"]
    assert [i.architecture for i in items] == ["2D.SmallCNN", "2D.SmallCNN"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.yaml", "", "holds no experiments"),
        ("nothing.yaml", f"grid:\n  - base: {BASE}\n    vary: {{loss: []}}\n", "expand to nothing"),
        ("token.yaml", "benchmarks:\n  - demo_BCE_E1_B16_C9_N5_D32_1LR3_LF5\n", "benchmarks[0]"),
        ("arch.yaml", f"architectures: [2D.NoSuchNet]\nbenchmarks: [{BASE}]\n", "NoSuchNet"),
        ("keys.yaml", f"benchmark: [{BASE}]\n", "unknown keys ['benchmark']"),
        ("cols.csv", f"name\n{BASE}\n", "missing column 'benchmark'"),
        ("row.csv", f"benchmark\n{BASE}\ndemo_XX\n", "row 3"),
        ("batch.txt", "x", ".yaml/.yml or .csv"),
        ("dataset.yaml", "benchmarks: [nosuchset_BCE_E1_B16_C0_N5_D32_1LR3_LF5]\n", "nosuchset"),
        ("labels.yaml", "benchmarks: [demo_BCE_E1_B16_C0_N7_D32_1LR3_LF5]\n", "7-class"),
        ("preset.yaml", "benchmarks: [demo_BCE_E1_B16_C0_N5_U75_D32_1LR3_LF5]\n", "U75"),
    ],
)
def test_bad_batches_are_named(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_batch(write(tmp_path / name, text))
    assert message in str(error.value) and name in str(error.value)


def test_shards_partition_the_batch_deterministically() -> None:
    items = [ExperimentSpec(b, "2D.SmallCNN") for b in loss_grid()]
    for count in (1, 3, 5, 24, 30):
        parts = [shard(items, index, count) for index in range(count)]
        assert sorted(i.name for part in parts for i in part) == sorted(i.name for i in items)
        assert parts == [shard(items, index, count) for index in range(count)]


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1/0", "a/b", "2"])
def test_out_of_range_shards_are_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(text)


def test_grid_expands_in_order_and_rejects_unknown_fields() -> None:
    base = Benchmark.from_name(BASE)
    benchmarks = grid(base, loss=["BCE", "WBCE"], epochs=[1, 2])
    assert [(b.loss, b.epochs) for b in benchmarks] == [("BCE", 1), ("BCE", 2), ("WBCE", 1), ("WBCE", 2)]
    assert grid(base, loss=[]) == []
    with pytest.raises(Exception, match="unknown fields"):
        grid(base, lossy=["BCE"])


def test_predefined_benchmarks_round_trip() -> None:
    for name, benchmark in PREDEFINED.items():
        assert Benchmark.from_name(name) == benchmark
    assert len(loss_grid()) == 24


@pytest.mark.slow
def test_one_failing_experiment_is_recorded_and_the_rest_run(settings: Settings) -> None:
    good = Benchmark.from_name(BASE)
    items = [
        ExperimentSpec(good, "2D.SmallCNN", {"tensorboard": False}),
        ExperimentSpec(good.with_(n_classes=7), "2D.SmallCNN"),  # the demo set has no 7-class label set
        ExperimentSpec(good.with_(loss="WBCE"), "2D.SmallCNN", {"tensorboard": False}),
    ]
    results = run_batch(items, settings, progress=False)
    assert [r["status"] for r in results] == ["completed", "failed", "completed"]
    failed = ExperimentLog(settings.logs_dir / FAILED_LOG).read()
    assert len(failed) == 1 and "7-class" in failed[0]["error"]
    assert len(ExperimentLog(settings.logs_dir / UNVALIDATED_LOG).read()) == 2


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medbench.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_cli_dry_run_and_shards(tmp_path: Path) -> None:
    result = run_cli("exec", "--batch", str(REPO / "examples" / "loss-grid.yaml"), "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = result.stdout.split()
    assert len(names) == 6 and all(n.startswith("SmallCNN_demo_") for n in names)
    halves = [
        run_cli(
            "exec", "--batch", str(REPO / "examples" / "loss-grid.yaml"), "--dry-run", "--shard", f"{i}/2", cwd=tmp_path
        ).stdout.split()
        for i in range(2)
    ]
    assert sorted(halves[0] + halves[1]) == sorted(names)


def test_cli_errors_name_the_problem(tmp_path: Path) -> None:
    result = run_cli("inspect", "chexpert_BCE_E3_B32_C0_N12_D256_1LR4_LF5_Adam_foo", cwd=tmp_path)
    assert result.returncode == 2 and "'foo'" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(
        "exec", "--batch", str(REPO / "examples" / "loss-grid.yaml"), "--shard", "2/2", "--dry-run", cwd=tmp_path
    )
    assert result.returncode == 2 and "--shard" in result.stderr
    assert run_cli("--help", cwd=tmp_path).returncode == 0
