"""A full disk or a read-only models/ stops a run with a clear message and leaves no corrupt file.

The folders are real tmpfs mounts (a 3 MB one that fills up during training, and a read-only
one), so the errors are the kernel's own ENOSPC and EROFS.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import keras
import pytest
from cli_process import run_medbench

from medbench.settings import Settings

BENCHMARK = "demo_BCE_E4_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"

pytestmark = pytest.mark.slow


def _mount(target: Path, options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True, check=False
    )
    return result.returncode == 0


@pytest.fixture
def small_models_dir(tmp_path: Path) -> Iterator[Path]:
    """models/ on a 3 MB tmpfs: room for two 1.3 MB checkpoints of the run, not for a third."""
    target = tmp_path / "models"
    if os.geteuid() != 0 or not _mount(target, "size=3m"):
        pytest.skip("needs root and permission to mount a tmpfs (a real full disk); not available here")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def read_only_models_dir(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "models"
    if os.geteuid() != 0 or not _mount(target, "size=1m,ro"):
        pytest.skip("needs root and permission to mount a read-only tmpfs; not available here")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _error_line(stderr: str) -> str:
    (line,) = [line for line in stderr.splitlines() if "medbench: error:" in line]
    return line[line.index("medbench: error:") :]


def _log_bytes(settings: Settings) -> bytes | None:
    path = settings.logs_dir / "unvalidated-experiment-log.json"
    return path.read_bytes() if path.exists() else None


def test_full_disk_stops_cleanly_and_resumes_after_space_is_freed(settings: Settings, small_models_dir: Path) -> None:
    settings = replace(settings, models_dir=small_models_dir)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    (settings.logs_dir / "unvalidated-experiment-log.json").write_text('[{"id": "earlier-run"}]')
    before = _log_bytes(settings)

    result = run_medbench(["exec", BENCHMARK], settings)
    assert result.returncode == 2, result.stdout + result.stderr
    message = _error_line(result.stderr)
    assert message.startswith("medbench: error: cannot write ")
    assert "No space left on device" in message
    assert "run the same command again to resume" in message
    assert "Traceback" not in result.stderr
    assert _log_bytes(settings) == before

    (run_dir,) = [path.parent for path in small_models_dir.glob("*/*/config.json")]
    assert not [path for path in run_dir.rglob("*") if ".tmp" in path.name], "a partial file was left behind"
    history = json.loads((run_dir / "history.json").read_text()) if (run_dir / "history.json").exists() else []
    checkpoints = sorted((run_dir / "checkpoints").glob("epoch-*.keras"))
    assert 1 <= len(checkpoints) == len(history) < 4
    assert f"epochs 1–{len(history)} are saved" in message
    for checkpoint in checkpoints:
        keras.models.load_model(checkpoint, compile=False)

    subprocess.run(["mount", "-o", "remount,size=20m", str(small_models_dir)], check=True)
    resumed = run_medbench(["exec", BENCHMARK], settings)
    assert resumed.returncode == 0, resumed.stderr
    assert f"completed {run_dir.name}" in " ".join(resumed.stdout.split())
    assert len(json.loads((run_dir / "history.json").read_text())) == 4


def test_read_only_models_dir_is_a_clear_error(settings: Settings, read_only_models_dir: Path) -> None:
    settings = replace(settings, models_dir=read_only_models_dir)
    result = run_medbench(["exec", BENCHMARK], settings)
    assert result.returncode == 2, result.stdout + result.stderr
    message = _error_line(result.stderr)
    assert message.startswith(f"medbench: error: cannot write {read_only_models_dir}")
    assert "Read-only file system" in message
    assert "Traceback" not in result.stderr
    assert _log_bytes(settings) is None
