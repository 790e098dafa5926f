"""Google Cloud Storage for run folders: an outbox of pending uploads, `sync` to upload them, `pull` to fetch one.

A finished run is first written to the outbox (`logs/outbox/<run id>.json`, no network), so a run never
fails or waits because the bucket is down; `sync` uploads what is pending and removes an item only when
every file of it is in the bucket with the right size and MD5. Objects are named
`gs://<bucket>/<prefix>/runs/<experiment name>/<run id>/<relative path>`, and the log entry is stored as
`gs://<bucket>/<prefix>/logs/<run id>.json`. `STORAGE_EMULATOR_HOST` points the client at an emulator
(anonymous credentials); otherwise Google's default credentials are used. The client, the bucket-name
rules and the deadline that bounds every request are in `medbench.tracking.bucket`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from medbench.atomic import write_bytes_atomic, write_json_atomic
from medbench.errors import ConfigError, MedbenchError, StorageError
from medbench.runs.run_dir import CONFIG, RESULT, RunDir
from medbench.runs.run_id import is_folder_name, is_run_id
from medbench.runs.saved_run import SavedRun, find_runs, saved_runs, scan_runs
from medbench.settings import Settings
from medbench.tracking.bucket import Deadline, Mismatch, Unreachable, check_deadline, list_objects, make_client
from medbench.tracking.logs import update_entry

__all__ = ["SyncReport", "enqueue_run", "make_client", "pending_items", "pull", "sync", "upload_run"]

logger = logging.getLogger(__name__)

OUTBOX_VERSION = 1
DEFAULT_DEADLINE_S = 60.0
RUN_END_DEADLINE_S = 15.0


@dataclass
class SyncReport:
    """What one `sync` did: run ids uploaded, still pending (bucket unreachable), failed (with the reason)."""

    uploaded: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    remote: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    warning: str | None = None

    @property
    def complete(self) -> bool:
        """True when the outbox was emptied."""
        return not self.pending and not self.failed


@dataclass(frozen=True)
class OutboxItem:
    """A run waiting for upload: its folder, the files to upload (relative paths) and its log entry."""

    path: Path
    run_id: str
    experiment: str
    run_dir: Path
    files: tuple[str, ...]
    entry: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> OutboxItem:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                path,
                str(data["run_id"]),
                str(data["experiment"]),
                Path(data["run_dir"]),
                tuple(str(name) for name in data["files"]),
                dict(data["entry"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(
                f"{path}: unreadable outbox item ({error}); expected JSON with run_id, experiment, run_dir, "
                "files and entry"
            ) from None


def enqueue_run(
    run_dir: str | Path, entry: dict[str, Any], settings: Settings, *, all_checkpoints: bool = False
) -> Path:
    """Write an outbox item for a finished run (no network); returns the item's path."""
    run_dir = Path(run_dir).resolve()
    run_id = str(entry.get("id", ""))
    if not is_run_id(run_id):
        raise ConfigError(f"log entry id {run_id!r}: expected a run id of letters, digits, '.', '_' or '-'")
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: run folder not found; nothing to upload for run {run_id}")
    item = {
        "version": OUTBOX_VERSION,
        "run_id": run_id,
        "experiment": str(entry.get("name") or run_dir.parent.name),
        "run_dir": str(run_dir),
        "files": RunDir(run_dir).upload_files(entry.get("best_epoch"), all_checkpoints=all_checkpoints),
        "entry": entry,
        "queued": datetime.now(UTC).isoformat(),
    }
    path = settings.outbox_dir / f"{run_id}.json"
    write_json_atomic(path, item)
    logger.debug("queued run %s for upload (%d files)", run_id, len(item["files"]))
    return path


def pending_items(settings: Settings) -> list[Path]:
    """Outbox items in run-id order (temporary files of interrupted writes excluded)."""
    if not settings.outbox_dir.is_dir():
        return []
    return sorted(path for path in settings.outbox_dir.glob("*.json") if not path.name.startswith("."))


def remote_run_uri(settings: Settings, experiment: str, run_id: str) -> str:
    return f"gs://{settings.gcs_bucket}/{_run_prefix(settings, experiment, run_id).rstrip('/')}"


def _object_root(settings: Settings) -> str:
    return f"{settings.gcs_prefix.strip('/')}/" if settings.gcs_prefix.strip("/") else ""


def _run_prefix(settings: Settings, experiment: str, run_id: str) -> str:
    return f"{_object_root(settings)}runs/{experiment}/{run_id}/"


def _log_object(settings: Settings, run_id: str) -> str:
    return f"{_object_root(settings)}logs/{run_id}.json"


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def _file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode("ascii")


def _check(blob: Any, size: int, md5: str) -> None:
    if blob.size is not None and int(blob.size) != size:
        raise Mismatch(f"gs://{blob.bucket.name}/{blob.name}: {blob.size} bytes in the bucket, {size} expected")
    if blob.md5_hash is not None and blob.md5_hash != md5:
        raise Mismatch(f"gs://{blob.bucket.name}/{blob.name}: MD5 {blob.md5_hash} in the bucket, {md5} expected")


def _upload(bucket: Any, name: str, deadline: Deadline, *, path: Path | None = None, data: bytes | None = None) -> None:
    """Upload a file or bytes unless an identical object is there already; verify size and MD5 after."""
    if path is not None:
        size, md5 = path.stat().st_size, _file_md5(path)
    else:
        assert data is not None
        size, md5 = len(data), _md5(data)

    def attempt(timeout: tuple[float, float]) -> None:
        existing = bucket.get_blob(name, retry=None, timeout=timeout)
        if existing is not None and existing.size == size and existing.md5_hash == md5:
            return
        blob = bucket.blob(name)
        if path is not None:
            blob.upload_from_filename(str(path), retry=None, timeout=timeout, checksum="md5")
        else:
            blob.upload_from_string(data, retry=None, timeout=timeout, checksum="md5")
        if blob.size is None or blob.md5_hash is None:
            blob.reload(retry=None, timeout=timeout)
        _check(blob, size, md5)

    deadline.call(f"upload of gs://{bucket.name}/{name}", attempt)


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8")


def _with_remote(record: dict[str, Any], uri: str) -> dict[str, Any]:
    storage = dict(record.get("storage") or {})
    storage["remote"] = uri
    return {**record, "storage": storage}


def _sync_item(item: OutboxItem, bucket: Any, settings: Settings, deadline: Deadline) -> str:
    """Upload one run; on success record the remote URI locally and drop the outbox item. Returns the URI."""
    uri = remote_run_uri(settings, item.experiment, item.run_id)
    prefix = _run_prefix(settings, item.experiment, item.run_id)
    missing = [name for name in item.files if not (item.run_dir / name).is_file()]
    if missing:
        raise ConfigError(f"{item.path}: files of run {item.run_id} missing under {item.run_dir}: {missing}")
    for name in item.files:
        if name != RESULT:
            _upload(bucket, prefix + name, deadline, path=item.run_dir / name)
    result_bytes = None
    if RESULT in item.files:
        result = RunDir(item.run_dir).read_result()
        result_bytes = _json_bytes(_with_remote(result, uri))
        _upload(bucket, prefix + RESULT, deadline, data=result_bytes)
    _upload(bucket, _log_object(settings, item.run_id), deadline, data=_json_bytes(_with_remote(item.entry, uri)))

    if result_bytes is not None:
        write_bytes_atomic(item.run_dir / RESULT, result_bytes)

    def record(entry: dict[str, Any]) -> None:
        entry["storage"] = _with_remote(entry, uri)["storage"]

    if not update_entry(settings.logs_dir, item.run_id, record):
        logger.debug("run %s is in no experiment log; remote URI recorded in result.json only", item.run_id)
    item.path.unlink(missing_ok=True)
    return uri


def sync(
    settings: Settings,
    *,
    deadline_s: float = DEFAULT_DEADLINE_S,
    on_missing_credentials: Literal["raise", "warn"] = "raise",
) -> SyncReport:
    """Upload every pending outbox item, retrying transient errors with backoff for up to `deadline_s`.

    Never raises on network failure, and never waits much past `deadline_s` (every request's timeouts are
    bounded by the time left): an unreachable bucket leaves the items pending with a warning. A missing
    or invalid bucket name or missing credentials raise ConfigError, or with `on_missing_credentials="warn"`
    (the end of an experiment run) leave everything pending with a warning. A `deadline_s` outside
    (0, 86400] is a ConfigError.
    """
    deadline = Deadline(check_deadline(deadline_s), logger)
    paths = pending_items(settings)
    report = SyncReport()
    try:
        client = make_client(settings, deadline=deadline)
    except ConfigError as error:
        if on_missing_credentials == "raise":
            raise
        return _left_pending(report, paths, f"{error}; {len(paths)} run(s) stay in {settings.outbox_dir}")
    except StorageError as error:
        stay = f"{len(paths)} run(s) stay in {settings.outbox_dir} for the next `medbench sync`"
        return _left_pending(report, paths, f"{error}; {stay}")
    bucket = client.bucket(settings.gcs_bucket)
    for index, path in enumerate(paths):
        try:
            item = OutboxItem.load(path)
            report.remote[item.run_id] = _sync_item(item, bucket, settings, deadline)
            report.uploaded.append(item.run_id)
            logger.info("uploaded run %s to %s", item.run_id, report.remote[item.run_id])
        except Unreachable as error:
            later = paths[index:]
            _left_pending(
                report,
                later,
                f"bucket gs://{settings.gcs_bucket} unreachable ({error}); "
                f"{len(later)} run(s) stay in {settings.outbox_dir} for the next `medbench sync`",
            )
            break
        except Exception as error:  # a bad item must not keep the others from uploading
            report.failed[path.stem] = f"{type(error).__name__}: {str(error)[:2000]}"
            logger.warning("upload of run %s failed, it stays in the outbox: %s", path.stem, str(error)[:2000])
    report.retries = deadline.retries
    return report


def _left_pending(report: SyncReport, paths: list[Path], warning: str) -> SyncReport:
    """Mark `paths` as still pending with `warning` (also logged)."""
    report.pending = [path.stem for path in paths]
    report.warning = warning
    logger.warning("%s", warning)
    return report


def upload_run(
    run_dir: str | Path, entry: dict[str, Any], settings: Settings, *, deadline_s: float = RUN_END_DEADLINE_S
) -> SyncReport:
    """End of an experiment run: queue the run, then sync; problems are warnings in the report, never exceptions
    (only a `deadline_s` outside (0, 86400] is a ConfigError)."""
    check_deadline(deadline_s)
    try:
        enqueue_run(run_dir, entry, settings)
    except (MedbenchError, OSError) as error:
        report = SyncReport(failed={str(entry.get("id")): f"{type(error).__name__}: {error}"})
        report.warning = f"run {entry.get('id')} not queued for upload: {error}"
        logger.warning("%s", report.warning)
        return report
    return sync(settings, deadline_s=deadline_s, on_missing_credentials="warn")


def _find_experiment(client: Any, settings: Settings, run_id: str, deadline: Deadline) -> str | None:
    """The experiment folder of a run in the bucket: from its log object, else by listing the experiments."""
    bucket = client.bucket(settings.gcs_bucket)
    log_blob = deadline.call(
        f"lookup of run {run_id}",
        lambda timeout: bucket.get_blob(_log_object(settings, run_id), retry=None, timeout=timeout),
    )
    candidates: list[str] = []
    if log_blob is not None:
        data = deadline.call("log download", lambda t: log_blob.download_as_bytes(timeout=t, retry=None))
        try:
            entry = json.loads(data)
        except ValueError as error:
            logger.warning(
                "gs://%s/%s: unreadable log object (%s); looking for the run by listing",
                settings.gcs_bucket,
                log_blob.name,
                error,
            )
            entry = None
        if isinstance(entry, dict) and entry.get("name"):
            candidates.append(str(entry["name"]))

    root = f"{_object_root(settings)}runs/"
    _, prefixes = list_objects(client, settings.gcs_bucket, deadline, f"listing of {root}", prefix=root, delimiter="/")
    for experiment in candidates + sorted(prefix.rstrip("/").rsplit("/", 1)[-1] for prefix in prefixes):
        prefix = _run_prefix(settings, experiment, run_id)
        found, _ = list_objects(
            client, settings.gcs_bucket, deadline, f"listing of {prefix}", prefix=prefix, max_results=1
        )
        if found:
            return experiment
    return None


def pull(run_id: str, settings: Settings, *, deadline_s: float = DEFAULT_DEADLINE_S) -> Path:
    """Download a run folder by id into `models/<experiment>/<run id>/` (atomically) and return it.

    Gives up after about `deadline_s` seconds (in (0, 86400]) with a StorageError when the bucket does not answer.
    """
    deadline = Deadline(check_deadline(deadline_s), logger)
    if not is_run_id(run_id):
        raise ConfigError(f"{run_id[:100]!r} is not a run id to pull: expected letters, digits, '.', '_' or '-'")
    from google.api_core.exceptions import GoogleAPICallError

    client = make_client(settings, deadline=deadline)
    where = f"gs://{settings.gcs_bucket}/{_object_root(settings)}runs/"
    try:
        experiment = _find_experiment(client, settings, run_id, deadline)
        if experiment is None:
            raise ConfigError(f"no run with id {run_id!r} in {where}")
        if not is_folder_name(experiment):
            raise StorageError(
                f"{where}: the bucket names the experiment of run {run_id} {experiment[:100]!r}, which is not one "
                f"folder name; expected a name without '/', '\\' or '..', so that the run stays inside "
                f"{settings.models_dir}. Nothing was downloaded"
            )
        target = settings.models_dir / experiment / run_id
        if (target / CONFIG).is_file():
            logger.info("run %s is already local at %s", run_id, target)
            return target
        if target.exists():
            raise ConfigError(f"{target}: exists without {CONFIG}; move it away to pull run {run_id}")
        prefix = _run_prefix(settings, experiment, run_id)
        blobs, _ = list_objects(client, settings.gcs_bucket, deadline, f"listing of {prefix}", prefix=prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.parent / f".{run_id}.pull-{secrets.token_hex(4)}"
        try:
            for blob in blobs:
                _download(blob, temp, blob.name[len(prefix) :], deadline)
            os.rename(temp, target)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    except Unreachable as error:
        raise StorageError(f"could not pull run {run_id} from {where}: bucket unreachable ({error})") from None
    except GoogleAPICallError as error:
        raise StorageError(f"could not pull run {run_id} from {where}: {str(error)[:300]}") from None
    logger.info("pulled run %s into %s", run_id, target)
    return target


def _download(blob: Any, root: Path, relative: str, deadline: Deadline) -> None:
    parts = Path(relative).parts
    if not parts or any(part in ("", ".", "..") for part in parts) or Path(relative).is_absolute():
        raise StorageError(f"gs://{blob.bucket.name}/{blob.name}: object name does not map to a file in the run")
    path = root.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)

    def attempt(timeout: tuple[float, float]) -> None:
        blob.download_to_filename(str(path), retry=None, timeout=timeout)
        _check(blob, path.stat().st_size, _file_md5(path))

    deadline.call(f"download of gs://{blob.bucket.name}/{blob.name}", attempt)


def find_or_pull_runs(settings: Settings, run_ids: Iterable[str] | None = None) -> list[SavedRun]:
    """Saved runs under models/ (`medbench.runs.find_runs`); ids not found locally are pulled from the bucket
    when one is configured, and an unknown id is an error otherwise. A local run folder whose config.json
    is damaged is reported as such, not pulled over."""
    if run_ids is None:
        return saved_runs(settings.models_dir)
    wanted = list(run_ids)
    scan = scan_runs(settings.models_dir)  # a run folder with a damaged config is local too: named, never pulled over
    local = {run.run_id for run in scan.runs} | {item.run_dir.run_id for item in scan.damaged}
    if settings.gcs_bucket:
        for run_id in wanted:
            if run_id not in local:
                pull(run_id, settings)
    return find_runs(settings.models_dir, wanted)
