"""The JSON experiment logs in `logs/`: atomic, locked writes that many processes can share.

Each log file is a JSON list of entries (dicts with an "id"). Every change holds the file's lock,
writes a temporary file beside it, fsyncs and renames it over the old one, so a reader (or a
process killed mid-write) only ever sees a complete old or a complete new file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

from medbench.atomic import write_json_atomic
from medbench.errors import LogCorruptError

logger = logging.getLogger(__name__)

UNVALIDATED_LOG = "unvalidated-experiment-log.json"
VALIDATED_LOG = "experiment-log.json"
REEVALUATION_LOG = "reevaluation_experiments.json"
EPOCH_REEVALUATION_LOG = "epoch_reevaluation_experiments.json"
FAILED_LOG = "failed-experiment-log.json"
LOCK_TIMEOUT_S = 120.0


class ExperimentLog:
    """One JSON log file: a list of entries, each with a unique "id"."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S)

    def read(self) -> list[dict[str, Any]]:
        """All entries (an absent file is an empty log)."""
        if not self.path.exists():
            return []
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise LogCorruptError(
                f"{self.path}: not valid JSON ({error}); expected a list of experiment entries"
            ) from None
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            raise LogCorruptError(f"{self.path}: expected a JSON list of experiment entries (objects)")
        return entries

    def remove_stale_temporaries(self) -> None:
        """Delete temporary files of writers that died mid-write; call with the lock held (no live writer then)."""
        for temp in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            temp.unlink(missing_ok=True)

    @contextmanager
    def editing(self) -> Iterator[list[dict[str, Any]]]:
        """Hold the lock, yield the entries for changing in place, then write them back atomically."""
        with self.lock:
            self.remove_stale_temporaries()
            entries = self.read()
            yield entries
            write_json_atomic(self.path, entries)

    def append(self, entry: dict[str, Any]) -> None:
        if "id" not in entry:
            raise ValueError("a log entry needs an 'id'")
        with self.editing() as entries:
            entries.append(entry)

    def upsert(self, entry: dict[str, Any], key: Callable[[dict[str, Any]], Any] = lambda e: e["id"]) -> None:
        """Replace the entry with the same key, or append it."""
        with self.editing() as entries:
            wanted = key(entry)
            entries[:] = [existing for existing in entries if key(existing) != wanted]
            entries.append(entry)

    def ids(self) -> set[str]:
        return {entry["id"] for entry in self.read() if "id" in entry}


def validate_entries(logs_dir: str | Path, ids: Iterable[str] | None = None) -> list[str]:
    """Move entries from the unvalidated log to the validated one; returns the ids moved.

    The validated log is written first, then the entries leave the unvalidated log, both under
    their locks (always taken in the same order), so a crash in between leaves an entry in both
    logs, never in neither.
    """
    logs_dir = Path(logs_dir)
    source = ExperimentLog(logs_dir / UNVALIDATED_LOG)
    target = ExperimentLog(logs_dir / VALIDATED_LOG)
    wanted = set(ids) if ids is not None else None
    with source.lock, target.lock:
        source.remove_stale_temporaries()
        target.remove_stale_temporaries()
        pending = source.read()
        moving = [entry for entry in pending if wanted is None or entry.get("id") in wanted]
        if not moving:
            return []
        validated = target.read()
        known = {entry.get("id") for entry in validated}
        write_json_atomic(target.path, validated + [entry for entry in moving if entry.get("id") not in known])
        moved = {entry.get("id") for entry in moving}
        write_json_atomic(source.path, [entry for entry in pending if entry.get("id") not in moved])
    logger.info("validated %d experiment(s)", len(moving))
    return [entry["id"] for entry in moving]


def log_if_missing(logs_dir: str | Path, entry: dict[str, Any]) -> bool:
    """Append a completed run's entry to the unvalidated log unless a log already has it; True if appended.

    The run folder is the truth and the logs an index of it: a run whose log write failed (a log
    unreadable at the time, a full disk) is logged by the next command that meets the run. Both locks
    are held, in `validate_entries`' order, so a validation meanwhile cannot hide or duplicate it.
    """
    logs_dir = Path(logs_dir)
    source, target = ExperimentLog(logs_dir / UNVALIDATED_LOG), ExperimentLog(logs_dir / VALIDATED_LOG)
    with source.lock, target.lock:
        source.remove_stale_temporaries()
        pending = source.read()
        if any(existing.get("id") == entry["id"] for existing in (*pending, *target.read())):
            return False
        write_json_atomic(source.path, [*pending, entry])
    logger.warning("run %s was completed but missing from the logs: logged now in %s", entry["id"], source.path)
    return True


def repair_logs(models_dir: str | Path, logs_dir: str | Path) -> list[str]:
    """Log every completed run under `models_dir` that no log has (`log_if_missing`); returns their ids.

    A run whose result.json cannot be read is reported and left out; the others are still logged.
    """
    from medbench.runs.saved_run import saved_runs

    logged = []
    for saved in saved_runs(Path(models_dir)):
        if not saved.run_dir.is_complete():
            continue
        try:
            result = saved.run_dir.read_result()
        except (OSError, ValueError) as error:
            logger.warning("skipping %s: unreadable result (%s)", saved.run_dir.result_path, error)
            continue
        if isinstance(result, dict) and "id" in result and log_if_missing(logs_dir, result):
            logged.append(str(result["id"]))
    return logged


def update_entry(logs_dir: str | Path, run_id: str, change: Callable[[dict[str, Any]], None]) -> bool:
    """Apply `change` in place to the entry `run_id` in the unvalidated and/or validated log; False if in neither.

    Both locks are held (in `validate_entries`' order) so a validation running meanwhile cannot move the
    entry away between finding and writing it.
    """
    logs_dir = Path(logs_dir)
    found = False
    logs = (ExperimentLog(logs_dir / UNVALIDATED_LOG), ExperimentLog(logs_dir / VALIDATED_LOG))
    with logs[0].lock, logs[1].lock:
        for log in logs:
            entries = log.read()
            hits = [entry for entry in entries if entry.get("id") == run_id]
            for entry in hits:
                change(entry)
            if hits:
                write_json_atomic(log.path, entries)
                found = True
    return found


def all_entries(logs_dir: str | Path) -> list[dict[str, Any]]:
    """Validated and unvalidated entries, each id once (the validated copy wins)."""
    logs_dir = Path(logs_dir)
    seen: dict[str, dict[str, Any]] = {}
    for name in (UNVALIDATED_LOG, VALIDATED_LOG):
        for entry in ExperimentLog(logs_dir / name).read():
            seen[entry["id"]] = entry
    return list(seen.values())
