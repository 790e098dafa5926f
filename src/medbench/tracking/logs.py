"""The JSON experiment logs in `logs/`: atomic, locked writes that many processes can share.

Each log file is a JSON list of entries (dicts with an "id"). Every change holds the file's lock,
writes a temporary file beside it, fsyncs and renames it over the old one, so a reader (or a
process killed mid-write) only ever sees a complete old or a complete new file.

A log that is not a JSON list is never overwritten: every change stops with a `LogCorruptError`
naming it. One entry that is not an object with an "id" is one bad entry: readers (`scan_entries`,
the leaderboard, `validate_entries`) report it with its file and position and go on with the others.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


def by_id(entry: dict[str, Any]) -> Any:
    """The key of the run logs: the run id."""
    return entry["id"]


class ExperimentLog:
    """One JSON log file: a list of entries, each with a unique "id"."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S)

    def read_items(self) -> list[Any]:
        """The JSON list as stored, whatever its items are (an absent file is an empty log).

        A file that cannot be read, is not JSON or not a list raises LogCorruptError naming it.
        """
        if not self.path.exists():
            return []
        try:
            items = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise LogCorruptError(
                f"{self.path}: not valid JSON ({error}); expected a list of experiment entries"
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            problem = error.strerror if isinstance(error, OSError) and error.strerror else str(error)[:200]
            raise LogCorruptError(
                f"{self.path}: cannot be read as UTF-8 text ({problem}); expected a list of experiment entries"
            ) from None
        if not isinstance(items, list):
            raise LogCorruptError(
                f"{self.path}: holds a JSON {type(items).__name__}; "
                "expected a JSON list of experiment entries (objects)"
            )
        return items

    def read(self) -> list[dict[str, Any]]:
        """All entries (an absent file is an empty log); LogCorruptError naming the first that is not an object."""
        entries = self.read_items()
        bad = [index for index, entry in enumerate(entries) if not isinstance(entry, dict)]
        if bad:
            raise LogCorruptError(
                f"{self.path}: entry {bad[0] + 1} of {len(entries)} is a JSON {type(entries[bad[0]]).__name__}"
                f"{f' ({len(bad)} such entries)' if len(bad) > 1 else ''}; "
                "expected a JSON list of experiment entries (objects)"
            )
        return entries

    def remove_stale_temporaries(self) -> None:
        """Delete temporary files of writers that died mid-write; call with the lock held (no live writer then)."""
        for temp in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            temp.unlink(missing_ok=True)

    @contextmanager
    def editing(self) -> Iterator[list[Any]]:
        """Hold the lock, yield the items for changing in place, then write them back atomically.

        Items that are not entries (`entry_problem`) are yielded too and written back as they were: one
        damaged entry neither stops a run's log write nor is lost by it.
        """
        with self.lock:
            self.remove_stale_temporaries()
            entries = self.read_items()
            yield entries
            write_json_atomic(self.path, entries)

    def append(self, entry: dict[str, Any]) -> None:
        if "id" not in entry:
            raise ValueError("a log entry needs an 'id'")
        with self.editing() as entries:
            entries.append(entry)

    def upsert(self, entry: dict[str, Any], key: Callable[[dict[str, Any]], Any] = by_id) -> None:
        """Replace the entry with the same key, or append it."""
        with self.editing() as entries:
            wanted = key(entry)
            entries[:] = [existing for existing in entries if keyed(key, existing) != wanted]
            entries.append(entry)

    def ids(self) -> set[str]:
        return {item["id"] for item in self.read_items() if entry_problem(item) is None}


def entry_problem(entry: Any) -> str | None:
    """What keeps `entry` from being a log entry (an object with a non-empty string "id"), or None."""
    if not isinstance(entry, dict):
        return f"is a JSON {type(entry).__name__}, not an object"
    if not isinstance(entry.get("id"), str) or not entry["id"]:
        return "has no 'id' (a non-empty string)"
    return None


def keyed(key: Callable[[dict[str, Any]], Any], item: Any) -> Any:
    """`key(item)`, or None for an item that is not an entry (or lacks a key field): it matches nothing."""
    if entry_problem(item) is not None:
        return None
    try:
        return key(item)
    except (KeyError, TypeError):
        return None


ENTRY_EXPECTED = "expected an experiment entry written by medbench"


def _where(path: Path, index: int, count: int) -> str:
    return f"{path}: entry {index + 1} of {count}"


@dataclass(frozen=True)
class LoggedEntry:
    """A log entry and where it is (`<log>: entry N of M`), for messages about it."""

    entry: dict[str, Any]
    where: str


@dataclass
class LogScan:
    """The readable entries of the logs, each id once, and one line per entry left out (where and why)."""

    entries: list[LoggedEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def scan_entries(logs_dir: str | Path, names: Iterable[str] = (UNVALIDATED_LOG, VALIDATED_LOG)) -> LogScan:
    """The entries of the named logs (later logs win for an id), reporting the entries that are not entries.

    A log that is not a JSON list at all still raises LogCorruptError: nothing in it can be trusted.
    """
    logs_dir = Path(logs_dir)
    seen: dict[str, LoggedEntry] = {}
    scan = LogScan()
    for name in names:
        path = logs_dir / name
        items = ExperimentLog(path).read_items()
        for index, item in enumerate(items):
            problem = entry_problem(item)
            if problem is not None:
                scan.problems.append(f"{_where(path, index, len(items))}: {problem}; {ENTRY_EXPECTED}")
                continue
            seen[item["id"]] = LoggedEntry(item, _where(path, index, len(items)))
    scan.entries = list(seen.values())
    return scan


def validate_entries(
    logs_dir: str | Path, ids: Iterable[str] | None = None, *, skipped: list[str] | None = None
) -> list[str]:
    """Move entries from the unvalidated log to the validated one; returns the ids moved.

    The validated log is written first, then the entries leave the unvalidated log, both under
    their locks (always taken in the same order), so a crash in between leaves an entry in both
    logs, never in neither. An unvalidated entry that is not an entry (not an object, no "id") stays
    where it is, unchanged, and is named in `skipped` (or a warning); a log that is not a JSON list
    stops the validation before anything is written.
    """
    logs_dir = Path(logs_dir)
    source = ExperimentLog(logs_dir / UNVALIDATED_LOG)
    target = ExperimentLog(logs_dir / VALIDATED_LOG)
    wanted = set(ids) if ids is not None else None
    with source.lock, target.lock:
        source.remove_stale_temporaries()
        target.remove_stale_temporaries()
        pending = source.read_items()
        problems = {index: entry_problem(entry) for index, entry in enumerate(pending)}
        for index, problem in problems.items():
            if problem is not None:
                line = f"{_where(source.path, index, len(pending))}: {problem}; {ENTRY_EXPECTED} (left in place)"
                logger.warning("not validated: %s", line)
                if skipped is not None:
                    skipped.append(line)
        moving = [
            entry
            for index, entry in enumerate(pending)
            if problems[index] is None and (wanted is None or entry["id"] in wanted)
        ]
        if not moving:
            return []
        validated = target.read_items()
        known = {entry.get("id") for entry in validated if isinstance(entry, dict)}
        write_json_atomic(target.path, validated + [entry for entry in moving if entry["id"] not in known])
        moved = {id(entry) for entry in moving}
        write_json_atomic(source.path, [entry for entry in pending if id(entry) not in moved])
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
        pending = source.read_items()
        if entry["id"] in {keyed(by_id, item) for item in (*pending, *target.read_items())}:
            return False
        write_json_atomic(source.path, [*pending, entry])
    logger.warning("run %s was completed but missing from the logs: logged now in %s", entry["id"], source.path)
    return True


def repair_logs(models_dir: str | Path, logs_dir: str | Path, *, skipped: list[str] | None = None) -> list[str]:
    """Log every completed run under `models_dir` that no log has (`log_if_missing`); returns their ids.

    A run whose config.json or result.json cannot be read is reported (in `skipped` when given, and as
    a warning) and left out; the others are still logged. A log entry that is not an entry is reported
    too and kept as it is; a log that cannot be read at all stops it before anything is written.
    """
    from medbench.runs.saved_run import json_problem, scan_runs

    problems = [] if skipped is None else skipped
    for line in scan_entries(logs_dir).problems:
        logger.warning("skipping %s (left in place)", line)
        problems.append(f"{line} (left in place)")
    scan = scan_runs(Path(models_dir))
    problems.extend(str(item) for item in scan.damaged)
    logged = []
    for saved in scan.runs:
        if not saved.run_dir.is_complete():
            continue
        path = saved.run_dir.result_path
        try:
            result = saved.run_dir.read_result()
        except (OSError, ValueError) as error:
            result, problem = None, json_problem(error)
        else:
            problem = entry_problem(result)
        if problem is not None:
            line = f"{path}: {problem}; expected the run's result written by medbench"
            logger.warning("skipping %s", line)
            problems.append(line)
            continue
        if log_if_missing(logs_dir, result):
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
            entries = log.read_items()
            hits = [entry for entry in entries if keyed(by_id, entry) == run_id]
            for entry in hits:
                change(entry)
            if hits:
                write_json_atomic(log.path, entries)
                found = True
    return found


def all_entries(logs_dir: str | Path) -> list[dict[str, Any]]:
    """Validated and unvalidated entries, each id once (the validated copy wins); bad entries left out, warned."""
    scan = scan_entries(logs_dir)
    for problem in scan.problems:
        logger.warning("skipped %s", problem)
    return [logged.entry for logged in scan.entries]
