"""Run ids (unique per run, shared by the workers of a multi-worker run) and which worker writes the run."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime

RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""What a run id may look like (it names a folder and a bucket prefix)."""


def new_run_id() -> str:
    """Sortable and unique: UTC time plus random hex."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def multiworker_run_id(name: str, tf_config: str | None) -> str:
    """The same run id on every worker of one multi-worker job (derived from TF_CONFIG's cluster)."""
    cluster = json.loads(tf_config or "{}").get("cluster", {})
    digest = hashlib.sha256(json.dumps([name, cluster], sort_keys=True).encode()).hexdigest()
    return f"multiworker-{digest[:12]}"


def is_run_id(text: str) -> bool:
    """True when `text` is a well-formed run id."""
    return isinstance(text, str) and RUN_ID_RE.fullmatch(text) is not None


def is_folder_name(text: str) -> bool:
    """True when `text` can name one folder inside another: no separator, no '.'/'..', printable, ≤ 255 chars.

    For names that come from outside (an experiment name read from a bucket) before they become paths.
    """
    return (
        isinstance(text, str)
        and 0 < len(text) <= 255
        and text not in (".", "..")
        and not any(character in text for character in "/\\")
        and text.isprintable()
    )


def is_chief(tf_config: str | None) -> bool:
    """True unless TF_CONFIG names this process a non-chief worker (only the chief writes run files)."""
    config = json.loads(tf_config or "{}")
    task = config.get("task") or {}
    cluster = config.get("cluster") or {}
    if task.get("type") == "chief":
        return True
    return task.get("type") in (None, "worker") and int(task.get("index", 0)) == 0 and "chief" not in cluster
