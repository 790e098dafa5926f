"""The memory and disk a piece of work needs, checked before it starts so that it is refused with the estimate
instead of dying half-way (an out-of-memory kill loses the run; a full disk stops it mid-write)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from medbench.errors import CapacityError

__all__ = ["available_memory", "free_disk", "gib", "require_disk", "require_memory"]


def gib(count: int | float) -> str:
    """A byte count as people read it: "2.5 GiB", "340 MiB"."""
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"


def available_memory() -> int | None:
    """Bytes of memory this process can still get (Linux MemAvailable, else the physical total), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def free_disk(path: str | os.PathLike[str]) -> int | None:
    """Free bytes on the file system that holds `path` (or its nearest existing parent), None if unknown."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def require_memory(need: int, what: str, *, advice: str) -> None:
    """Refuse `what` when it needs more memory than is available, naming both figures and what to change."""
    available = available_memory()
    if available is not None and need > available:
        raise CapacityError(
            f"{what} needs at least {gib(need)} of memory and {gib(available)} is available; expected less: {advice}"
        )


def require_disk(need: int, folder: str | os.PathLike[str], what: str, *, advice: str) -> None:
    """Refuse `what` when it will write more than `folder`'s file system has free, naming both figures."""
    free = free_disk(folder)
    if free is not None and need > free:
        raise CapacityError(
            f"{what} needs {gib(need)} of disk in {folder} and {gib(free)} is free; expected less: {advice}"
        )
