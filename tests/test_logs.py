"""The JSON logs: atomic, locked, safe with many writers; validation never loses an entry."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from medbench.tracking.logs import (
    UNVALIDATED_LOG,
    VALIDATED_LOG,
    ExperimentLog,
    LogCorruptError,
    all_entries,
    validate_entries,
    write_json_atomic,
)

WRITERS, PER_WRITER = 4, 25


def _append_many(logs_dir: str, writer: int) -> None:
    log = ExperimentLog(Path(logs_dir) / UNVALIDATED_LOG)
    for index in range(PER_WRITER):
        log.append({"id": f"{writer}-{index}", "payload": "x" * 200})


def _validate_repeatedly(logs_dir: str) -> None:
    for _ in range(20):
        validate_entries(logs_dir)


def test_concurrent_writers_and_validation_lose_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_append_many, args=(str(tmp_path), w)) for w in range(WRITERS)]
    processes.append(context.Process(target=_validate_repeatedly, args=(str(tmp_path),)))
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    validate_entries(tmp_path)
    validated = ExperimentLog(tmp_path / VALIDATED_LOG).read()
    assert sorted(e["id"] for e in validated) == sorted(f"{w}-{i}" for w in range(WRITERS) for i in range(PER_WRITER))
    assert all(e["payload"] == "x" * 200 for e in validated)
    assert ExperimentLog(tmp_path / UNVALIDATED_LOG).read() == []


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
