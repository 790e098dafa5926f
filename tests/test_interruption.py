"""SIGINT and SIGTERM stop a command after the write in progress, in one line, with 130/143 and no traceback."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_process import start_medbench

from medbench.atomic import write_bytes_atomic
from medbench.interruption import Interrupted, deferred, install_handlers
from medbench.settings import Settings

BENCHMARK = "demo_BCE_E6_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"


@pytest.fixture
def handlers() -> Iterator[None]:
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    install_handlers()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_a_signal_inside_a_write_waits_for_its_end(handlers: None, tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    reached_the_end = False
    with pytest.raises(Interrupted) as stopped:
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            write_bytes_atomic(target, b"complete")
            reached_the_end = True
    assert reached_the_end and target.read_bytes() == b"complete"
    assert stopped.value.exit_code == 143 and stopped.value.name == "SIGTERM"


def test_a_signal_outside_a_write_stops_at_once(handlers: None) -> None:
    with pytest.raises(Interrupted) as stopped:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert stopped.value.exit_code == 130


def _history(settings: Settings) -> tuple[Path | None, list[dict]]:
    for config in settings.models_dir.glob("*/*/config.json"):
        path = config.parent / "history.json"
        return config.parent, json.loads(path.read_text()) if path.is_file() else []
    return None, []


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_exec_stops_cleanly_and_says_how_to_go_on(settings: Settings, signum: int, code: int) -> None:
    process = start_medbench(["exec", BENCHMARK], settings)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            run_dir, history = _history(settings)
            if history:
                process.send_signal(signum)
                break
            time.sleep(0.05)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    (last,) = [line for line in stderr.splitlines() if "medbench: " in line]
    assert last.startswith(f"medbench: interrupted by {signal.Signals(signum).name}: run "), stderr[-2000:]
    assert "stopped and epochs 1–" in last and f"to go on, run: medbench exec {BENCHMARK}" in last
    run_dir, history = _history(settings)
    assert run_dir is not None and history and not (run_dir / "result.json").exists()
    assert all((run_dir / row["checkpoint"]).is_file() for row in history)
    assert not [path.name for path in run_dir.rglob("*.tmp*")], "no partial file is left"
    assert not (settings.logs_dir / "unvalidated-experiment-log.json").exists()
