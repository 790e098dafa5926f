"""A run killed with SIGKILL resumes from its last complete checkpoint and ends as if never interrupted."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
from cli_process import run_medbench, start_medbench

from medbench.settings import Settings

BENCHMARK = "demo_WBCE_E6_B16_C0_N5_AugAffine_D48_DS8020_1LR3_LF5_Adam"
EPOCHS = 6

pytestmark = pytest.mark.slow


def _run_dirs(settings: Settings) -> list[Path]:
    return sorted(path.parent for path in settings.models_dir.glob("*/*/config.json"))


def _history(run_dir: Path) -> list[dict]:
    path = run_dir / "history.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _kill_after_epochs(settings: Settings, epochs: int) -> tuple[Path, int]:
    """Start `medbench exec`, SIGKILL it as soon as `epochs` epochs are saved; (run dir, epochs saved at the kill)."""
    process = start_medbench(["exec", BENCHMARK], settings)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            runs = _run_dirs(settings)
            if runs and len(_history(runs[0])) >= epochs:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    (run_dir,) = _run_dirs(settings)
    return run_dir, len(_history(run_dir))


def test_killed_run_resumes_and_matches_uninterrupted(settings: Settings, tmp_path: Path) -> None:
    run_dir, saved = _kill_after_epochs(settings, 2)
    assert 2 <= saved < EPOCHS, "the run finished before it could be killed; make it longer"
    assert not (run_dir / "result.json").exists()

    resumed = run_medbench(["exec", BENCHMARK], settings)
    assert resumed.returncode == 0, resumed.stderr
    assert f"completed {run_dir.name}" in " ".join(resumed.stdout.split())
    assert _run_dirs(settings) == [run_dir], "the resumed run must reuse its folder, not start a new one"
    assert "resuming unfinished run" in resumed.stderr
    history = _history(run_dir)
    assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))
    assert not list(run_dir.rglob(".*.tmp*")), "a partial file was left behind"

    reference = replace(settings, models_dir=tmp_path / "reference-models", logs_dir=tmp_path / "reference-logs")
    uninterrupted = run_medbench(["exec", BENCHMARK], reference)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    (reference_dir,) = _run_dirs(reference)
    expected = _history(reference_dir)
    for got, want in zip(history, expected, strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-4), got["epoch"]
        assert got["learning_rate"] == pytest.approx(want["learning_rate"], rel=1e-6), got["epoch"]
        assert got["val_mean_auroc"] == pytest.approx(want["val_mean_auroc"], abs=1e-4), got["epoch"]
    last = keras.models.load_model(run_dir / "checkpoints" / f"epoch-{EPOCHS:03d}.keras", compile=False)
    last_reference = keras.models.load_model(reference_dir / "checkpoints" / f"epoch-{EPOCHS:03d}.keras", compile=False)
    for got, want in zip(last.get_weights(), last_reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)

    entries = json.loads((settings.logs_dir / "unvalidated-experiment-log.json").read_text())
    assert [entry["id"] for entry in entries] == [run_dir.name]
    assert entries[0]["epochs_run"] == EPOCHS


def test_completed_run_is_skipped_unless_rerun(settings: Settings) -> None:
    benchmark = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
    first = run_medbench(["exec", benchmark], settings)
    assert first.returncode == 0, first.stderr
    (run_dir,) = _run_dirs(settings)
    log = settings.logs_dir / "unvalidated-experiment-log.json"
    before = log.read_bytes()

    again = run_medbench(["exec", benchmark], settings)
    assert again.returncode == 0, again.stderr
    assert f"skipped {run_dir.name}" in " ".join(again.stdout.split())
    assert _run_dirs(settings) == [run_dir]
    assert log.read_bytes() == before

    rerun = run_medbench(["exec", benchmark, "--rerun"], settings)
    assert rerun.returncode == 0, rerun.stderr
    assert len(_run_dirs(settings)) == 2
    assert len(json.loads(log.read_text())) == 2


def test_a_second_process_on_a_running_run_is_refused(settings: Settings) -> None:
    from filelock import FileLock

    from medbench.benchmark.spec import ExperimentSpec
    from medbench.errors import ConfigError
    from medbench.experiment import Experiment

    experiment = Experiment(ExperimentSpec("demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"), settings)
    experiment.folder.mkdir(parents=True)
    with FileLock(experiment.folder / f".{experiment.run_id}.lock"):  # flock: held per open file, as by another process
        with pytest.raises(ConfigError, match=f"run {experiment.run_id} is being run by another process"):
            experiment.run()
    assert not experiment.run_dir.exists()
