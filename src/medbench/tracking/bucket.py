"""The bucket's side of Google Cloud Storage: its name rules, a client, and network calls bounded by a deadline.

Nothing here may wait longer than the caller's deadline: every request gets connect and read timeouts
no longer than the time left (and never more than CONNECT_TIMEOUT_S / READ_TIMEOUT_S), listings are
fetched one bounded page at a time, and finding credentials (which may ask the GCE metadata server or
a token endpoint) runs in a daemon thread that is waited for only until the deadline. A bucket name is
checked against Cloud Storage's naming rules before any of that, so a typo is one clear error.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from medbench.errors import ConfigError, StorageError, shown
from medbench.settings import Settings

logger = logging.getLogger(__name__)

MAX_DEADLINE_S = 86400.0
DEADLINE_RANGE = f"(0, {MAX_DEADLINE_S:g}]"
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
MIN_TIMEOUT_S = 0.5
CREDENTIALS_TIMEOUT_S = 30.0
INITIAL_BACKOFF_S = 0.25
MAX_BACKOFF_S = 8.0
EMULATOR_PROJECT = "medbench-emulator"
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
NAMING_RULES_URL = "https://cloud.google.com/storage/docs/naming-buckets"
BUCKET_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
CREDENTIALS_HELP = (
    "no Google Cloud credentials found for MEDBENCH_GCS_BUCKET={bucket!r}: set GOOGLE_APPLICATION_CREDENTIALS "
    "to a service-account key file (or run `gcloud auth application-default login`), or unset "
    "MEDBENCH_GCS_BUCKET to keep runs local only"
)

T = TypeVar("T")


class Unreachable(Exception):
    """Transient errors went on until the deadline: the bucket is out of reach for now."""


class Mismatch(Exception):
    """An object in the bucket does not have the size or MD5 of the local file."""


def check_deadline(seconds: object, name: str = "deadline_s") -> float:
    """`seconds` as a float in (0, 86400]; NaN, infinities, zero, negatives and non-numbers are a ConfigError."""
    value = float(seconds) if isinstance(seconds, int | float) and not isinstance(seconds, bool) else math.nan
    if not 0 < value <= MAX_DEADLINE_S:
        raise ConfigError(f"{name}={str(seconds)[:50]!r}: expected a number of seconds in {DEADLINE_RANGE}")
    return value


def parse_deadline(text: str) -> float:
    """The value of a `--deadline` option: a number of seconds in (0, 86400]."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_DEADLINE_S:
        raise ConfigError(f"--deadline {text[:50]!r}: expected a number of seconds in {DEADLINE_RANGE}")
    return value


def bucket_name_problem(name: str) -> str | None:
    """The first Cloud Storage bucket-naming rule that `name` breaks, as a phrase; None for a valid name."""
    if name.startswith("gs://") or "/" in name:
        return "is not a bucket name alone; expected no gs:// and no '/' (a folder inside goes in MEDBENCH_GCS_PREFIX)"
    bad = sorted({char for char in name if char not in BUCKET_CHARACTERS})
    if bad:
        shown = ", ".join(repr(char) for char in bad[:10])
        return f"contains {shown}; expected only lowercase letters a-z, digits, '-', '_' and '.'"
    parts = name.split(".")
    longest = max(len(part) for part in parts)
    if len(name) < 3 or len(name) > 222 or longest > 63:
        return (
            f"is {len(name)} characters long (longest dot-separated part {longest}); expected 3 to 63 characters, "
            "or up to 222 with dots and at most 63 between two dots"
        )
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "does not start and end with a letter or digit"
    if "" in parts:
        return "has two dots in a row; expected a letter or digit on both sides of each dot"
    if re.fullmatch(r"[0-9.]+", name):
        try:
            ipaddress.IPv4Address(name)
            return "is an IP address in dotted-decimal notation; expected a name"
        except ValueError:
            pass
    if name.startswith("goog"):
        return "begins with 'goog', which Cloud Storage reserves"
    if "google" in name.replace("0", "o"):
        return "contains 'google' (or a close misspelling), which Cloud Storage reserves"
    return None


def check_bucket_name(name: str) -> None:
    """Raise ConfigError naming the rule that `name` breaks (before any network call)."""
    problem = bucket_name_problem(name)
    if problem is not None:
        raise ConfigError(
            f"MEDBENCH_GCS_BUCKET={name[:100]!r} is not a valid bucket name: it {problem} (see {NAMING_RULES_URL}); "
            "fix it, or unset MEDBENCH_GCS_BUCKET to keep runs local only"
        )


MAX_PREFIX_LENGTH = 512


def prefix_problem(prefix: str) -> str | None:
    """Why `prefix` cannot be the folder runs are kept under in the bucket, as a phrase; None when it can."""
    if len(prefix.encode("utf-8", "surrogatepass")) > MAX_PREFIX_LENGTH:
        return f"is {len(prefix):,} characters long; expected at most {MAX_PREFIX_LENGTH} bytes"
    if any(ord(char) < 32 or ord(char) == 127 for char in prefix):
        return "contains a control character (a line break, a tab…); expected printable folder names"
    for part in prefix.split("/"):
        if part in ("", ".", ".."):
            return f"has the folder {part!r}; expected folder names separated by single '/', none '.' or '..'"
        if "\\" in part:
            return "contains '\\'; expected folder names separated by '/'"
    return None


def check_prefix(prefix: str) -> None:
    """Raise ConfigError naming what is wrong with MEDBENCH_GCS_PREFIX (before any network call)."""
    problem = prefix_problem(prefix) if prefix else None
    if problem is not None:
        raise ConfigError(
            f"MEDBENCH_GCS_PREFIX={shown(prefix)} is not a folder in the bucket: it {problem}; fix it, or unset it "
            "to keep runs at the bucket's top level"
        )


def make_client(settings: Settings, *, deadline: Deadline | None = None) -> Any:
    """A storage client: anonymous against STORAGE_EMULATOR_HOST, else Google's credentials, found and
    refreshed before `deadline` (and within CREDENTIALS_TIMEOUT_S).

    Raises ConfigError when no bucket is configured, its name is invalid or no credentials can be found
    (or the token endpoint refuses them), StorageError when finding them did not finish in time.
    """
    if not settings.gcs_bucket:
        raise ConfigError("MEDBENCH_GCS_BUCKET is not set: no bucket to upload runs to or pull them from")
    check_bucket_name(settings.gcs_bucket)
    check_prefix(settings.gcs_prefix)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    if settings.gcs_emulator_host:
        project = settings.gcp_project or EMULATOR_PROJECT
        options = {"api_endpoint": settings.gcs_emulator_host}
        return storage.Client(project=project, credentials=AnonymousCredentials(), client_options=options)
    left = deadline.remaining() if deadline is not None else CREDENTIALS_TIMEOUT_S
    seconds = round(max(MIN_TIMEOUT_S, min(left, CREDENTIALS_TIMEOUT_S)), 2)
    budget = deadline.seconds if deadline is not None and left <= CREDENTIALS_TIMEOUT_S else CREDENTIALS_TIMEOUT_S
    gave_up = f"gave up after {budget:g} s finding Google Cloud credentials for gs://{settings.gcs_bucket}"
    return _within(seconds, lambda: _google_client(settings, seconds, gave_up), gave_up)


def _google_client(settings: Settings, seconds: float, gave_up: str) -> Any:
    """Find the credentials, refresh their token (the only network I/O a client needs up front), make the client."""
    import google.auth
    import google.auth.transport.requests
    from google.auth.exceptions import DefaultCredentialsError, RefreshError, TransportError
    from google.cloud import storage

    key_file = settings.gcs_credentials_file
    try:
        if key_file:
            credentials, project = google.auth.load_credentials_from_file(key_file, scopes=list(storage.Client.SCOPE))
        else:
            credentials, project = google.auth.default(scopes=list(storage.Client.SCOPE))
    except DefaultCredentialsError as error:
        detail = f" ({str(error)[:300]})" if key_file else ""
        raise ConfigError(CREDENTIALS_HELP.format(bucket=settings.gcs_bucket) + detail) from None
    try:
        if not credentials.valid:
            credentials.refresh(functools.partial(google.auth.transport.requests.Request(), timeout=seconds))
        return storage.Client(project=project, credentials=credentials)
    except RefreshError as error:
        raise ConfigError(
            f"the Google Cloud credentials for MEDBENCH_GCS_BUCKET={settings.gcs_bucket!r} were refused "
            f"({str(error)[:200]}); expected a valid service-account key or `gcloud auth application-default login`"
        ) from None
    except TransportError as error:
        raise StorageError(f"{gave_up} ({type(error).__name__}: {str(error)[:200]})") from None


def _within(seconds: float, action: Callable[[], T], gave_up: str, *, silence: Exception | None = None) -> T:
    """`action()` in a daemon thread, waited for at most `seconds`; its errors re-raised here.

    When it has not finished by then, `silence` is raised (default: a StorageError saying `gave_up`).
    """
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, action()))
        except BaseException as error:  # handed to the waiting thread, which re-raises it
            outcome.append((False, error))

    worker = threading.Thread(target=target, name=f"medbench-gcs: {gave_up[:60]}", daemon=True)
    worker.start()
    worker.join(seconds + MIN_TIMEOUT_S)
    if not outcome:
        raise silence or StorageError(f"{gave_up} (no answer from the metadata server or the token endpoint)")
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    return value


def is_transient(error: BaseException) -> bool:
    """Connection problems, timeouts, 408/429/5xx and size/MD5 mismatches are worth another try."""
    import requests
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    if isinstance(error, Mismatch | ConnectionError | TimeoutError | auth_exceptions.TransportError):
        return True
    if isinstance(error, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return True
    if isinstance(error, api_exceptions.GoogleAPICallError):
        return error.code in TRANSIENT_STATUS
    status = getattr(getattr(error, "response", None), "status_code", None)
    return status in TRANSIENT_STATUS


class Deadline:
    """A shared time budget for the requests and retries of one `sync` or `pull` (retries logged to `log`)."""

    def __init__(self, seconds: float, log: logging.Logger = logger) -> None:
        self.seconds = check_deadline(seconds)
        self.end = time.monotonic() + self.seconds
        self.retries = 0
        self.log = log

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def timeout(self) -> tuple[float, float]:
        """(connect, read) timeouts for the next request: the time left, within [MIN_TIMEOUT_S, the caps]."""
        left = round(max(MIN_TIMEOUT_S, self.remaining()), 2)
        return (min(CONNECT_TIMEOUT_S, left), min(READ_TIMEOUT_S, left))

    def call(self, what: str, action: Callable[[tuple[float, float]], T]) -> T:
        """Run `action(timeout)`, retrying transient errors with exponential backoff until the deadline.

        Each attempt runs in a daemon thread waited for only until the deadline: the timeouts bound each
        socket operation, and a server that trickles a byte at a time would otherwise stretch one
        transfer far beyond it. An attempt still running then is left to the daemon thread (uploads are
        checked by size and MD5 before they count, so a late one does no harm).
        """
        delay = INITIAL_BACKOFF_S
        while True:
            try:
                return _within(
                    max(MIN_TIMEOUT_S, self.remaining()),
                    functools.partial(action, self.timeout()),
                    what[:200],
                    silence=TimeoutError(f"no complete answer within the {self.seconds:g} s deadline"),
                )
            except Exception as error:
                if not is_transient(error):
                    raise
                remaining = self.remaining()
                if remaining <= 0:
                    detail = f"{type(error).__name__}: {str(error)[:200]}"
                    raise Unreachable(f"gave up after {self.seconds:g} s: {what[:200]}: {detail}") from error
                pause = min(delay, remaining)
                self.log.info("retrying %s in %.2f s after %s", what, pause, type(error).__name__)
                self.retries += 1
                time.sleep(pause)
                delay = min(delay * 2, MAX_BACKOFF_S)


def list_objects(client: Any, bucket: str, deadline: Deadline, what: str, **query: Any) -> tuple[list[Any], set[str]]:
    """The objects and prefixes of a listing, one deadline-bounded request per page (`list_blobs` is lazy:
    its pages would otherwise be fetched later, with a timeout fixed when the listing was made)."""
    limit = query.get("max_results")
    blobs: list[Any] = []
    prefixes: set[str] = set()
    token: str | None = None
    while True:

        def page(timeout: tuple[float, float], token: str | None = token) -> tuple[list[Any], set[str], str | None]:
            listing = client.list_blobs(bucket, page_token=token, retry=None, timeout=timeout, **query)
            first = next(listing.pages, None)
            return (list(first) if first is not None else []), set(listing.prefixes), listing.next_page_token

        found, names, token = deadline.call(what, page)
        blobs += found
        prefixes |= names
        if not token or (limit is not None and len(blobs) >= limit):
            return blobs, prefixes
