"""No lost run: a run whose log write failed is logged by the next command that meets it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_process import run_medbench

from medbench.settings import Settings

BENCHMARK = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
UNREADABLE = b'[{"id": "earlier"} this is not JSON\n'

pytestmark = pytest.mark.slow


def _run_dirs(settings: Settings) -> list[Path]:
    return sorted(path.parent for path in settings.models_dir.glob("*/*/config.json"))


def _break_the_log(settings: Settings) -> Path:
    """An unreadable unvalidated log: the run's final log write fails for real (and must not overwrite it)."""
    log = settings.logs_dir / "unvalidated-experiment-log.json"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(UNREADABLE)
    return log


def test_a_run_whose_log_write_failed_is_logged_by_the_rerun(settings: Settings) -> None:
    log = _break_the_log(settings)
    failed = run_medbench(["exec", BENCHMARK], settings)
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr
    assert log.read_bytes() == UNREADABLE, "a log medbench cannot read is never overwritten"
    (run_dir,) = _run_dirs(settings)
    assert (run_dir / "result.json").is_file(), "the run trained and wrote its result before the log write"

    log.write_text("[]\n")  # the user fixes the log and runs the same command again, as the message advises
    again = run_medbench(["exec", BENCHMARK], settings)
    assert again.returncode == 0, again.stderr
    assert f"skipped {run_dir.name}" in " ".join(again.stdout.split())
    entries = json.loads(log.read_text())
    assert [entry["id"] for entry in entries] == [run_dir.name]
    assert entries[0] == json.loads((run_dir / "result.json").read_text())

    third = run_medbench(["exec", BENCHMARK], settings)
    assert third.returncode == 0, third.stderr
    assert len(json.loads(log.read_text())) == 1, "logged once, not once per rerun"


def test_repair_logs_finds_every_completed_run_missing_from_the_logs(settings: Settings) -> None:
    first = run_medbench(["exec", BENCHMARK], settings)
    assert first.returncode == 0, first.stderr
    (run_dir,) = _run_dirs(settings)
    log = settings.logs_dir / "unvalidated-experiment-log.json"
    log.write_text("[]\n")  # the index lost the run
    validated = settings.logs_dir / "experiment-log.json"

    repaired = run_medbench(["repair-logs"], settings)
    assert repaired.returncode == 0, repaired.stderr
    assert f"logged 1 completed run(s) missing from the logs: {run_dir.name}" in repaired.stdout
    assert [entry["id"] for entry in json.loads(log.read_text())] == [run_dir.name]

    assert run_medbench(["validate"], settings).returncode == 0
    assert json.loads(log.read_text()) == [] and len(json.loads(validated.read_text())) == 1
    again = run_medbench(["repair-logs"], settings)
    assert "logged 0 completed run(s)" in again.stdout, "a validated run is logged already"
    assert json.loads(log.read_text()) == []
