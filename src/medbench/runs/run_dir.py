"""RunDir: one run's folder — where each file lives, how it is read and written, and the per-run lock.

Layout (``models/<experiment name>/<run id>/``)::

    config.json  checkpoints/epoch-NNN.keras  model.keras  history.json
    predictions/{val,test}.csv  result.json  tensorboard/

An ensemble's folder (`medbench.ensemble`) holds config.json, predictions/, result.json and, for
stacking, meta_learner.joblib.

Every module that touches a run asks its RunDir instead of spelling a file name. All writes are
atomic (`medbench.atomic`); a failed write on a full disk or read-only folder becomes one
`StorageError` that says what is saved and how to resume.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from medbench.atomic import TEMP_SUFFIX, copy_atomic, write_json_atomic
from medbench.errors import ConfigError, StorageError
from medbench.interruption import Interrupted
from medbench.runs.predictions import read_predictions, write_predictions

CONFIG = "config.json"
HISTORY = "history.json"
MODEL = "model.keras"
RESULT = "result.json"
CHECKPOINTS = "checkpoints"
PREDICTIONS = "predictions"
TENSORBOARD = "tensorboard"
META_LEARNER = "meta_learner.joblib"
"""A stacking ensemble's fitted meta-learner."""
CHECKPOINT_RE = re.compile(r"epoch-(\d+)\.keras")
UPLOADED_FILES = (CONFIG, HISTORY, MODEL, RESULT, META_LEARNER)
"""Files sent to the bucket (those present) besides the best checkpoint and the predictions."""

_STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG, errno.ENOTDIR}
)


def checkpoint_name(epoch: int) -> str:
    """``checkpoints/epoch-NNN.keras`` relative to the run folder (1-based epoch)."""
    return f"{CHECKPOINTS}/epoch-{epoch:03d}.keras"


@dataclass(frozen=True, eq=False)
class RunDir:
    """The folder of one run; `path.name` is the run id and `path.parent` the experiment folder.

    It stands in for its path where a path is expected: ``run_dir / "history.json"``, ``os.fspath``
    and comparison with a `Path` of the same folder.
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RunDir):
            return self.path == other.path
        if isinstance(other, os.PathLike):
            return self.path == Path(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def parent(self) -> Path:
        """The experiment folder ``models/<experiment name>/``, which holds one folder per run."""
        return self.path.parent

    def __truediv__(self, relative: str | os.PathLike[str]) -> Path:
        """A path inside the run folder (``run_dir / "history.json"``)."""
        return self.path / relative

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    # ---------------------------------------------------------------------------------------- paths

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def history_path(self) -> Path:
        return self.path / HISTORY

    @property
    def model_path(self) -> Path:
        """The best epoch's model (a copy of its checkpoint)."""
        return self.path / MODEL

    @property
    def result_path(self) -> Path:
        return self.path / RESULT

    @property
    def meta_learner_path(self) -> Path:
        """A stacking ensemble's fitted meta-learner (joblib)."""
        return self.path / META_LEARNER

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def lock_path(self) -> Path:
        return self.parent / f".{self.run_id}.lock"

    def checkpoint_path(self, epoch: int) -> Path:
        return self.path / checkpoint_name(epoch)

    def predictions_path(self, part: str) -> Path:
        return self.path / PREDICTIONS / f"{part}.csv"

    def relative(self, path: Path) -> str:
        """`path` relative to the run folder, as history rows and the outbox record it."""
        return path.relative_to(self.path).as_posix()

    # ---------------------------------------------------------------------------------------- state

    def exists(self) -> bool:
        """True once the run folder has been created."""
        return self.path.is_dir()

    def has_config(self) -> bool:
        """True once the run's config.json is written (a run folder without it is not a run)."""
        return self.config_path.is_file()

    def is_complete(self) -> bool:
        """A finished run has its result.json."""
        return self.result_path.is_file()

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every complete checkpoint, in epoch order."""
        found = []
        for path in (self.path / CHECKPOINTS).glob("epoch-*.keras"):
            match = CHECKPOINT_RE.fullmatch(path.name)
            if match:
                found.append((int(match[1]), path))
        return sorted(found)

    # ------------------------------------------------------------------------------------ read/write

    def read_config(self) -> dict[str, Any]:
        return _read_json(self.config_path)

    def write_config(self, config: dict[str, Any]) -> None:
        write_json_atomic(self.config_path, config)

    def read_history(self) -> list[dict[str, Any]]:
        """History rows so far (none when the first epoch has not finished).

        A history that is not JSON, or whose rows are not the epochs 1, 2, … with their own checkpoint,
        is a ConfigError naming the file: a run is never resumed from epochs it cannot account for.
        """
        if not self.history_path.is_file():
            return []
        try:
            rows = _read_json(self.history_path)
        except (OSError, ValueError) as error:
            problem = json_problem(error)
        else:
            problem = _history_problem(rows)
        if problem is not None:
            raise ConfigError(
                f"{self.history_path}: {problem}; expected the epoch history medbench writes (one object per "
                f"finished epoch), so run {self.run_id} cannot be resumed from it: start it over with "
                "`medbench exec --rerun` (this folder is left as it is)"
            )
        return rows

    def write_history(self, history: list[dict[str, Any]]) -> None:
        write_json_atomic(self.history_path, history)

    def completed_history(self) -> list[dict[str, Any]]:
        """History rows whose checkpoint is on disk: where a resumed run continues."""
        return [row for row in self.read_history() if (self.path / row["checkpoint"]).is_file()]

    def read_result(self) -> dict[str, Any]:
        return _read_json(self.result_path)

    def write_result(self, result: dict[str, Any]) -> None:
        write_json_atomic(self.result_path, result)

    def keep_as_model(self, epoch: int) -> Path:
        """Copy the checkpoint of `epoch` to model.keras (byte-identical) and return the checkpoint."""
        checkpoint = self.checkpoint_path(epoch)
        copy_atomic(checkpoint, self.model_path)
        return checkpoint

    def write_predictions(
        self, part: str, classes: Sequence[str], ids: Sequence[str], targets: np.ndarray, predictions: np.ndarray
    ) -> None:
        write_predictions(self.predictions_path(part), classes, ids, targets, predictions)

    def read_predictions(self, part: str) -> tuple[list[str], np.ndarray, np.ndarray, tuple[str, ...]]:
        return read_predictions(self.predictions_path(part))

    def remove_partial_checkpoints(self) -> None:
        """Delete checkpoint temporaries a killed run left behind."""
        for orphan in (self.path / CHECKPOINTS).glob(f".*{TEMP_SUFFIX}*"):
            orphan.unlink(missing_ok=True)

    def upload_files(self, best_epoch: int | None, *, all_checkpoints: bool = False) -> list[str]:
        """Relative paths to upload: model, best checkpoint (every one on ask), config, history, result, predictions."""
        names = [name for name in UPLOADED_FILES if (self.path / name).is_file()]
        if all_checkpoints:
            names += [self.relative(path) for _, path in self.checkpoints()]
        elif best_epoch is not None and self.checkpoint_path(int(best_epoch)).is_file():
            names.append(checkpoint_name(int(best_epoch)))
        names += [f"{PREDICTIONS}/{path.name}" for path in sorted((self.path / PREDICTIONS).glob("*.csv"))]
        return names

    # ------------------------------------------------------------------------------ process safety

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """One process per run: a second one gets a clear error instead of writing beside the first."""
        with self.guard_writes(lambda: 0):
            self.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.lock_path, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise ConfigError(f"run {self.run_id} is being run by another process (lock {self.lock_path})") from None
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def guard_writes(self, saved_epochs: Callable[[], int]) -> Iterator[None]:
        """Turn a failed write (full disk, read-only folder) into one clear error that says what is safe."""
        try:
            yield
        except Interrupted as stop:
            try:  # the folder is the truth: the signal may land between an epoch's write and its count
                saved = len(self.completed_history())
            except (OSError, ValueError, KeyError, TypeError):
                saved = saved_epochs()
            done = f"epochs 1–{saved} are saved" if saved else "no epoch was saved yet"
            stop.saved = f"run {self.run_id} stopped and {done} (partial files were removed)"
            raise
        except StorageError:
            raise
        except Exception as error:
            cause = _os_error(error)
            if cause is None or cause.errno not in _STORAGE_ERRNOS:
                raise
            where = cause.filename or f"in {self.path}"
            saved = saved_epochs()
            done = f"epochs 1–{saved} are saved" if saved else "no epoch was saved"
            raise StorageError(
                f"cannot write {where}: {cause.strerror or os.strerror(cause.errno)}; the run stopped and {done} "
                f"(partial files were removed). Free space or fix the folder's permissions, then run the same "
                f"command again to resume run {self.run_id}"
            ) from None


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def json_problem(error: Exception) -> str:
    """What is wrong with a JSON file that could not be read, in a few bounded words."""
    if isinstance(error, json.JSONDecodeError):
        return f"is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
    if isinstance(error, UnicodeDecodeError):
        return f"is not UTF-8 text ({str(error)[:200]})"
    if isinstance(error, OSError):
        return f"cannot be read ({error.strerror or str(error)[:200]})"
    return f"cannot be read ({type(error).__name__}: {str(error)[:200]})"


def _history_problem(rows: Any) -> str | None:
    """Why `rows` is not a run's epoch history (epochs 1, 2, … each naming its checkpoint), or None."""
    if not isinstance(rows, list):
        return f"holds a JSON {type(rows).__name__}, not a list"
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            return f"row {index + 1} is a JSON {type(row).__name__}, not an object"
        if row.get("epoch") != index + 1 or isinstance(row.get("epoch"), bool):
            return f"row {index + 1} has epoch {str(row.get('epoch'))[:40]!r}; expected {index + 1}"
        if row.get("checkpoint") != checkpoint_name(index + 1):
            shown = str(row.get("checkpoint"))[:80]
            return f"row {index + 1} names checkpoint {shown!r}; expected {checkpoint_name(index + 1)!r}"
    return None


def _os_error(error: BaseException) -> OSError | None:
    """The OSError behind `error`, however deep a library wrapped it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno is not None:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
