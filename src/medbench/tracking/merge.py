"""Merging the logs of shards that ran with separate log folders into one folder, losing nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medbench.tracking.logs import (
    ENTRY_EXPECTED,
    EPOCH_REEVALUATION_LOG,
    FAILED_LOG,
    REEVALUATION_LOG,
    UNVALIDATED_LOG,
    VALIDATED_LOG,
    ExperimentLog,
    by_id,
    entry_problem,
    keyed,
)

logger = logging.getLogger(__name__)

LOG_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    UNVALIDATED_LOG: by_id,
    VALIDATED_LOG: by_id,
    REEVALUATION_LOG: by_id,
    EPOCH_REEVALUATION_LOG: lambda entry: (entry["id"], entry["epoch_model"]),
    FAILED_LOG: by_id,
}


def merge_logs(
    sources: Sequence[str | Path], target: str | Path, *, skipped: list[str] | None = None
) -> dict[str, int]:
    """Add every entry of each source folder's logs to the same-named log in `target`.

    Entries are keyed as the logs key them (run id; run id and epoch for the epoch log): an entry
    already in the target is kept as it is, so merging twice changes nothing. A source item that is
    not an entry (or lacks a key field) is left out and named in `skipped` (or a warning); a source log
    that is not a JSON list stops the merge before anything is written. Returns the number of entries
    added per log file.
    """
    target = Path(target)
    incoming = {name: _readable(sources, name, key, skipped) for name, key in LOG_KEYS.items()}
    added: dict[str, int] = {}
    for name, key in LOG_KEYS.items():
        if not incoming[name]:
            continue
        with ExperimentLog(target / name).editing() as entries:
            known = {keyed(key, entry) for entry in entries}
            count = 0
            for entry in incoming[name]:
                if key(entry) not in known:
                    entries.append(entry)
                    known.add(key(entry))
                    count += 1
        added[name] = count
        logger.info("%s: %d new entries from %d folders", name, count, len(sources))
    return added


def _readable(
    sources: Sequence[str | Path], name: str, key: Callable[[dict[str, Any]], Any], skipped: list[str] | None
) -> list[dict[str, Any]]:
    """The entries of log `name` in every source folder; items that are not entries are named and left out."""
    entries = []
    for source in sources:
        path = Path(source) / name
        items = ExperimentLog(path).read_items()
        for index, item in enumerate(items):
            if keyed(key, item) is not None:
                entries.append(item)
                continue
            line = f"{path}: entry {index + 1} of {len(items)}: {_problem(item)}; {ENTRY_EXPECTED} (not merged)"
            logger.warning("skipping %s", line)
            if skipped is not None:
                skipped.append(line)
    return entries


def _problem(item: object) -> str:
    """Why a log item cannot be merged: not an entry, or without the field its log is keyed by."""
    return entry_problem(item) or "lacks a field its log is keyed by ('epoch_model' in the epoch log)"
