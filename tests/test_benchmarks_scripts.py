"""The benchmark scripts in benchmarks/ keep working: each answers --help and finishes a tiny --quick run.

No timing is asserted; the runs only check that every contender is measured and reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
SCRIPTS = (
    "pipeline.py", "preprocessing.py", "fit.py", "labels.py", "gpu.py", "augmentation.py", "bootstrap.py", "serve.py",
)  # fmt: skip
AUCMEDI_PYTHON = Path(os.environ.get("MEDBENCH_AUCMEDI_PYTHON", "/work/aucmedi-venv/bin/python"))


def run_script(script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script: str) -> None:
    result = run_script(script, "--help", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--repeats" in result.stdout and "--quick" in result.stdout


def test_pipeline_quick_medbench_only(tmp_path: Path) -> None:
    result = run_script("pipeline.py", "--quick", "--no-aucmedi", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "medbench none " in result.stdout and "medbench affine " in result.stdout
    assert "AUCMEDI" not in result.stdout.split("-- figures")[1].split("(no ratios")[0]


def test_pipeline_reports_missing_aucmedi_interpreter(tmp_path: Path) -> None:
    missing = tmp_path / "no-venv" / "bin" / "python"
    result = run_script(
        "pipeline.py", "--quick", "--augment", "none", "--aucmedi-python", str(missing), "--work-dir", str(tmp_path)
    )
    assert result.returncode == 2
    assert str(missing) in result.stderr and "--no-aucmedi" in result.stderr


@pytest.mark.skipif(
    not AUCMEDI_PYTHON.exists(), reason=f"no AUCMEDI virtualenv at {AUCMEDI_PYTHON} (benchmarks/README.md)"
)
def test_pipeline_quick_against_aucmedi(tmp_path: Path) -> None:
    result = run_script(
        "pipeline.py",
        "--quick",
        "--augment",
        "none",
        "--skip-prepared",
        "--aucmedi-python",
        str(AUCMEDI_PYTHON),
        "--work-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = result.stdout.split("-- figures")[1]
    assert "AUCMEDI none " in figures and "medbench none / AUCMEDI none" in figures


def test_preprocessing_quick(tmp_path: Path) -> None:
    result = run_script("preprocessing.py", "--quick", "--workers", "2", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ("medbench first pass, 2 workers", "cache hit", "bare OpenCV, 1 thread", "cache hit / first pass"):
        assert row in result.stdout
    assert list((tmp_path / "scratch").iterdir()) == []  # the caches of the first passes are removed


def test_fit_quick(tmp_path: Path) -> None:
    result = run_script("fit.py", "--quick", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fit on medbench pipeline" in result.stdout and "pipeline / in memory" in result.stdout


def test_labels_quick(tmp_path: Path) -> None:
    result = run_script("labels.py", "--quick", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    for row in (
        "CheXpert format, 3,000 rows",
        "one-hot (ISIC layout), 3,000 rows",
        "generic path + labels, 3,000 rows",
    ):
        assert row in result.stdout
    assert "goal <= 3x" in result.stdout


def test_gpu_quick_on_the_cpu(tmp_path: Path) -> None:
    result = run_script("gpu.py", "--quick", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2D.SmallCNN" in result.stdout and "goal >= 0.9" in result.stdout


@pytest.mark.slow
def test_fit_quick_densenet_section_medbench_only(tmp_path: Path) -> None:
    result = run_script("fit.py", "--quick", "--densenet", "--no-aucmedi", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "medbench DenseNet121 fit" in result.stdout and "first epochs (graph tracing included)" in result.stdout


def test_augmentation_quick(tmp_path: Path) -> None:
    result = run_script("augmentation.py", "--quick", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "host / in the graph" in result.stdout


def test_bootstrap_quick(tmp_path: Path) -> None:
    result = run_script("bootstrap.py", "--quick", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "medbench / scikit-learn loop" in result.stdout and "res/s" in result.stdout


def test_serve_quick(tmp_path: Path) -> None:
    result = run_script("serve.py", "--quick", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    for mode in ("batched, 5 ms", "batched, 0 ms", "one per call"):
        assert f"SmallCNN 64 px       {mode}" in result.stdout
    assert "batched, 0 ms / one per call" in result.stdout and "errors in all: 0" in result.stdout
    assert "ms/request" in result.stdout and "model call, batch 8:" in result.stdout
