"""The JSON logs: atomic, locked, safe with many writers; validation never loses an entry."""

from __future__ import annotations

import json
import multiprocessing
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from medbench.atomic import write_json_atomic
from medbench.errors import LogCorruptError
from medbench.tracking.logs import (
    UNVALIDATED_LOG,
    VALIDATED_LOG,
    ExperimentLog,
    all_entries,
    update_entry,
    validate_entries,
)

WRITERS, PER_WRITER = 8, 50
KILL_ROUNDS = 6
BIG_PAYLOAD = 40_000


def _entry(writer: int, index: int) -> dict[str, Any]:
    return {
        "id": f"w{writer}-{index:03d}",
        "writer": writer,
        "index": index,
        "payload": f"{writer}:{index}:" + "x" * 200,
        "val": {"macro": {"auroc": index / PER_WRITER}, "per_class": [writer, index]},
    }


def _append_many(logs_dir: str, writer: int, go: Any) -> None:
    go.wait(60)
    log = ExperimentLog(Path(logs_dir) / UNVALIDATED_LOG)
    for index in range(PER_WRITER):
        log.append(_entry(writer, index))


def _validate_until(logs_dir: str, ready: Any, stop: Any, passes: Any) -> None:
    ready.set()
    deadline = time.monotonic() + 300
    while not stop.is_set() and time.monotonic() < deadline:
        validate_entries(logs_dir)
        with passes.get_lock():
            passes.value += 1


def test_eight_writers_and_a_validator_lose_nothing(tmp_path: Path) -> None:
    """8 processes append 50 entries each while another validates in a loop: 400 intact entries, none twice."""
    context = multiprocessing.get_context("spawn")
    go, ready, stop, passes = context.Event(), context.Event(), context.Event(), context.Value("i", 0)
    validator = context.Process(target=_validate_until, args=(str(tmp_path), ready, stop, passes))
    writers = [context.Process(target=_append_many, args=(str(tmp_path), w, go)) for w in range(WRITERS)]
    validator.start()
    assert ready.wait(60)
    for process in writers:
        process.start()
    started = time.monotonic()
    go.set()
    for process in writers:
        process.join(300)
    elapsed = time.monotonic() - started
    stop.set()
    validator.join(120)
    assert [process.exitcode for process in writers] == [0] * WRITERS and validator.exitcode == 0
    assert passes.value >= 1
    unvalidated = ExperimentLog(tmp_path / UNVALIDATED_LOG).read()
    validated = ExperimentLog(tmp_path / VALIDATED_LOG).read()
    everything = unvalidated + validated
    assert len(everything) == WRITERS * PER_WRITER  # no entry lost and none in both logs
    assert sorted(everything, key=lambda e: e["id"]) == sorted(
        (_entry(w, i) for w in range(WRITERS) for i in range(PER_WRITER)), key=lambda e: e["id"]
    )
    validate_entries(tmp_path)
    assert len(ExperimentLog(tmp_path / VALIDATED_LOG).read()) == WRITERS * PER_WRITER
    assert ExperimentLog(tmp_path / UNVALIDATED_LOG).read() == []
    print(f"{WRITERS}x{PER_WRITER} appends with {passes.value} validation passes: {elapsed:.2f} s")


WRITER_SCRIPT = """
import sys
from medbench.tracking.logs import ExperimentLog
log = ExperimentLog(sys.argv[1])
for index in range(10_000):
    entry_id = f"{sys.argv[2]}-{index:04d}"
    log.append({"id": entry_id, "payload": entry_id * (int(sys.argv[3]) // len(entry_id))})
    print(entry_id, flush=True)
"""


def _kill_mid_write(path: Path, tag: str, rng: random.Random) -> tuple[list[str], bool]:
    """Start a writer, SIGKILL it while a temporary file of the log exists (or after a random pause).

    Returns the ids the writer reported written and whether a write was in flight when it was killed.
    """
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(path), tag, str(BIG_PAYLOAD)], stdout=subprocess.PIPE, text=True
    )
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(line.strip() for line in writer.stdout or ()))
    reader.start()
    mid_write = False
    try:
        wait_for_temp = rng.random() < 0.7
        not_before = time.monotonic() + rng.uniform(0.3, 1.5)  # let it write some entries first
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up and writer.poll() is None:
            if time.monotonic() >= not_before:
                in_flight = any(path.parent.glob(f".{path.name}.*.tmp"))
                if in_flight or not wait_for_temp:
                    mid_write = in_flight
                    break
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(30)
        reader.join(30)
    return printed, mid_write


def test_a_writer_killed_mid_write_leaves_a_readable_log_with_every_reported_entry(tmp_path: Path) -> None:
    path = tmp_path / UNVALIDATED_LOG
    rng = random.Random(7)
    reported: list[str] = []
    kills_mid_write = 0
    for round_ in range(KILL_ROUNDS):
        printed, mid_write = _kill_mid_write(path, f"r{round_}", rng)
        kills_mid_write += mid_write
        reported += printed
        entries = ExperimentLog(path).read()  # raises LogCorruptError on a torn file
        ids = [entry["id"] for entry in entries]
        assert set(reported) <= set(ids), f"round {round_}: reported but missing {set(reported) - set(ids)}"
        assert len(ids) == len(set(ids))
        assert all(entry["payload"] == entry["id"] * (BIG_PAYLOAD // len(entry["id"])) for entry in entries)
    assert kills_mid_write >= 1  # at least one kill hit a write in flight (a temporary file existed)
    ExperimentLog(path).append({"id": "after"})  # the lock of a killed holder is free; stale temporaries go
    assert ExperimentLog(path).read()[-1] == {"id": "after"}
    assert list(tmp_path.glob("*.tmp")) == []


def test_validate_moves_only_the_named_entries(tmp_path: Path) -> None:
    log = ExperimentLog(tmp_path / UNVALIDATED_LOG)
    for run_id in ("a", "b", "c"):
        log.append({"id": run_id})
    assert validate_entries(tmp_path, ["b"]) == ["b"]
    assert [e["id"] for e in log.read()] == ["a", "c"]
    assert [e["id"] for e in ExperimentLog(tmp_path / VALIDATED_LOG).read()] == ["b"]
    assert sorted(e["id"] for e in all_entries(tmp_path)) == ["a", "b", "c"]


def test_an_entry_in_both_logs_after_a_crash_is_counted_once(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / UNVALIDATED_LOG, [{"id": "a", "v": 1}])
    write_json_atomic(tmp_path / VALIDATED_LOG, [{"id": "a", "v": 1}])
    assert len(all_entries(tmp_path)) == 1
    validate_entries(tmp_path)
    assert ExperimentLog(tmp_path / VALIDATED_LOG).read() == [{"id": "a", "v": 1}]


def test_a_failed_write_leaves_the_previous_file(tmp_path: Path) -> None:
    log = ExperimentLog(tmp_path / UNVALIDATED_LOG)
    log.append({"id": "a"})
    before = log.path.read_bytes()
    with pytest.raises(ValueError):
        log.append({"id": "b", "bad": float("nan")})  # NaN is not JSON: refused before the rename
    assert log.path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_corrupt_log_is_named(tmp_path: Path) -> None:
    (tmp_path / UNVALIDATED_LOG).write_text('{"id": 1}')
    with pytest.raises(LogCorruptError, match=UNVALIDATED_LOG):
        ExperimentLog(tmp_path / UNVALIDATED_LOG).read()
    (tmp_path / UNVALIDATED_LOG).write_text("[{")
    with pytest.raises(LogCorruptError, match="not valid JSON"):
        ExperimentLog(tmp_path / UNVALIDATED_LOG).append({"id": "x"})
    assert (tmp_path / UNVALIDATED_LOG).read_text() == "[{"


def test_upsert_replaces_by_key(tmp_path: Path) -> None:
    log = ExperimentLog(tmp_path / "log.json")
    log.upsert({"id": "a", "epoch": 1, "v": 1}, key=lambda e: (e["id"], e["epoch"]))
    log.upsert({"id": "a", "epoch": 2, "v": 2}, key=lambda e: (e["id"], e["epoch"]))
    log.upsert({"id": "a", "epoch": 1, "v": 3}, key=lambda e: (e["id"], e["epoch"]))
    assert sorted((e["epoch"], e["v"]) for e in log.read()) == [(1, 3), (2, 2)]
    assert json.loads(log.path.read_text())


def test_update_entry_changes_the_entry_where_it_lives(tmp_path: Path) -> None:
    ExperimentLog(tmp_path / UNVALIDATED_LOG).append({"id": "a", "storage": {"remote": None}})
    ExperimentLog(tmp_path / UNVALIDATED_LOG).append({"id": "b", "storage": {"remote": None}})
    validate_entries(tmp_path, ["b"])

    def set_remote(entry: dict[str, Any]) -> None:
        entry["storage"]["remote"] = f"gs://bucket/{entry['id']}"

    assert update_entry(tmp_path, "b", set_remote) and update_entry(tmp_path, "a", set_remote)
    assert not update_entry(tmp_path, "nope", set_remote)
    assert ExperimentLog(tmp_path / UNVALIDATED_LOG).read() == [{"id": "a", "storage": {"remote": "gs://bucket/a"}}]
    assert ExperimentLog(tmp_path / VALIDATED_LOG).read() == [{"id": "b", "storage": {"remote": "gs://bucket/b"}}]
