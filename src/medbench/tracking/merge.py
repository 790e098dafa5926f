"""Merging the logs of shards that ran with separate log folders into one folder, losing nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medbench.tracking.logs import (
    EPOCH_REEVALUATION_LOG,
    FAILED_LOG,
    REEVALUATION_LOG,
    UNVALIDATED_LOG,
    VALIDATED_LOG,
    ExperimentLog,
    keyed,
)

logger = logging.getLogger(__name__)

LOG_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    UNVALIDATED_LOG: lambda entry: entry["id"],
    VALIDATED_LOG: lambda entry: entry["id"],
    REEVALUATION_LOG: lambda entry: entry["id"],
    EPOCH_REEVALUATION_LOG: lambda entry: (entry["id"], entry["epoch_model"]),
    FAILED_LOG: lambda entry: entry["id"],
}


def merge_logs(sources: Sequence[str | Path], target: str | Path) -> dict[str, int]:
    """Add every entry of each source folder's logs to the same-named log in `target`.

    Entries are keyed as the logs key them (run id; run id and epoch for the epoch log): an entry
    already in the target is kept as it is, so merging twice changes nothing. Returns the number of
    entries added per log file.
    """
    target = Path(target)
    added: dict[str, int] = {}
    for name, key in LOG_KEYS.items():
        incoming = [entry for source in sources for entry in ExperimentLog(Path(source) / name).read()]
        if not incoming:
            continue
        with ExperimentLog(target / name).editing() as entries:
            known = {keyed(key, entry) for entry in entries}
            count = 0
            for entry in incoming:
                if key(entry) not in known:
                    entries.append(entry)
                    known.add(key(entry))
                    count += 1
        added[name] = count
        logger.info("%s: %d new entries from %d folders", name, count, len(sources))
    return added
