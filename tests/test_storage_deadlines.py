"""No hang on the network: `sync` and `pull` give up at their deadline against a server that accepts
connections and never answers; deadlines and bucket names are checked before any network call."""

from __future__ import annotations

import json
import math
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cli_process import run_medbench

from medbench.atomic import write_json_atomic
from medbench.errors import ConfigError
from medbench.settings import Settings
from medbench.tracking.bucket import bucket_name_problem, check_bucket_name, check_prefix, prefix_problem
from medbench.tracking.logs import UNVALIDATED_LOG, ExperimentLog
from medbench.tracking.storage import enqueue_run, pending_items, pull, sync, upload_run

BUCKET = "medbench-test"
RUN_ID = "20260101T000000Z-abc123"
EXPERIMENT = "SmallCNN_demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
# Far beyond a deadline of a few seconds, far below the 300 s the client's read timeout used to wait.
PROCESS_TIMEOUT_S = 60


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.socket.settimeout(0.1)  # so that the accepting thread sees stop() at once
        self.stopped = threading.Event()
        self.port = self.socket.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by stop()
                return
            self.connections.append(connection)
            self.answer(connection)

    def answer(self, connection: socket.socket) -> None:
        """What the server does with a new connection: nothing at all."""

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(10)
        self.socket.close()
        for connection in self.connections:
            connection.close()


class TricklingServer(SilentServer):
    """Answers every request with a 200 and a long JSON body sent one byte every 0.2 s: each read succeeds in
    time, so only a bound on the whole transfer stops a client."""

    def answer(self, connection: socket.socket) -> None:
        threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                request += chunk
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            while not self.stopped.wait(0.2):
                connection.sendall(b" ")
        except OSError:
            return


@pytest.fixture
def trickling() -> Iterator[TricklingServer]:
    server = TricklingServer()
    yield server
    server.stop()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.stop()


@pytest.fixture
def project(tmp_path: Path) -> Settings:
    """Private folders with the bucket set and one run waiting in the outbox."""
    root = tmp_path / "project"
    settings = Settings(root, root / "data", root / "models", root / "logs", root / "weights", None, BUCKET, "")
    run_dir = settings.models_dir / EXPERIMENT / RUN_ID
    entry: dict[str, Any] = {"id": RUN_ID, "name": EXPERIMENT, "status": "completed", "best_epoch": None}
    write_json_atomic(run_dir / "config.json", {"id": RUN_ID, "name": EXPERIMENT})
    write_json_atomic(run_dir / "result.json", entry)
    ExperimentLog(settings.logs_dir / UNVALIDATED_LOG).append(entry)
    enqueue_run(run_dir, entry, settings)
    return settings


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _key_file(path: Path, token_uri: str) -> Path:
    """A real service-account key file (a fresh RSA key) whose token endpoint is `token_uri`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    info = {
        "type": "service_account",
        "project_id": "medbench-test-project",
        "private_key_id": "test",
        "private_key": pem,
        "client_email": "medbench@medbench-test-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return path


def _error_line(stderr: str) -> str:
    """The one `medbench: error:` line of a refusal (and no traceback)."""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("medbench: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_sync_against_a_server_that_never_answers_gives_up_at_the_deadline(
    project: Settings, silent: SilentServer
) -> None:
    before = _files(project.root)
    done = run_medbench(
        ["sync", "--deadline", "3"],
        project,
        timeout=PROCESS_TIMEOUT_S,
        MEDBENCH_GCS_BUCKET=BUCKET,
        STORAGE_EMULATOR_HOST=silent.url,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"pending   {RUN_ID}" in done.stdout
    warning = f"warning: bucket gs://{BUCKET} unreachable (gave up after 3 s: upload of gs://{BUCKET}/runs/"
    assert warning in done.stderr
    assert f"1 run(s) stay in {project.outbox_dir} for the next `medbench sync`" in done.stderr
    assert silent.connections, "the client reached the server"
    assert _files(project.root) == before, "the outbox item and the run are kept byte for byte"


def test_pull_against_a_server_that_never_answers_gives_up_at_the_deadline(
    project: Settings, silent: SilentServer
) -> None:
    before = _files(project.root)
    done = run_medbench(
        ["pull", "20260102T000000Z-def456", "--deadline", "3"],
        project,
        timeout=PROCESS_TIMEOUT_S,
        MEDBENCH_GCS_BUCKET=BUCKET,
        STORAGE_EMULATOR_HOST=silent.url,
    )
    assert done.returncode == 2
    line = _error_line(done.stderr)
    assert line.startswith(
        f"medbench: error: could not pull run 20260102T000000Z-def456 from gs://{BUCKET}/runs/: bucket unreachable "
        "(gave up after 3 s: lookup of run 20260102T000000Z-def456: ReadTimeout: "
    )
    assert _files(project.root) == before


@pytest.mark.parametrize("command", ["sync", "pull"])
def test_a_server_that_trickles_its_answer_is_bounded_by_the_deadline(
    project: Settings, trickling: TricklingServer, command: str
) -> None:
    before = _files(project.root)
    args = ["sync"] if command == "sync" else ["pull", "20260102T000000Z-def456"]
    done = run_medbench(
        [*args, "--deadline", "3"],
        project,
        timeout=PROCESS_TIMEOUT_S,
        MEDBENCH_GCS_BUCKET=BUCKET,
        STORAGE_EMULATOR_HOST=trickling.url,
    )
    assert "Traceback" not in done.stderr
    assert "no complete answer within the 3 s deadline" in done.stderr, done.stderr[-2000:]
    if command == "sync":
        assert done.returncode == 1 and f"pending   {RUN_ID}" in done.stdout
    else:
        assert done.returncode == 2
        assert _error_line(done.stderr).startswith(
            f"medbench: error: could not pull run 20260102T000000Z-def456 from gs://{BUCKET}/runs/: bucket unreachable "
            "(gave up after 3 s: lookup of run 20260102T000000Z-def456: TimeoutError: no complete answer within the"
        )
    assert trickling.connections and _files(project.root) == before


def test_a_token_endpoint_that_never_answers_is_bounded_by_the_deadline(
    project: Settings, silent: SilentServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    key = _key_file(tmp_path / "key.json", f"{silent.url}/token")
    before = _files(project.root)
    env = {"MEDBENCH_GCS_BUCKET": BUCKET, "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    done = run_medbench(["sync", "--deadline", "3"], project, timeout=PROCESS_TIMEOUT_S, **env)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"warning: gave up after 3 s finding Google Cloud credentials for gs://{BUCKET} (" in done.stderr
    assert f"1 run(s) stay in {project.outbox_dir}" in done.stderr
    assert silent.connections, "the token request reached the server"

    pulled = run_medbench(["pull", RUN_ID, "--deadline", "2"], project, timeout=PROCESS_TIMEOUT_S, **env)
    assert pulled.returncode == 2
    assert _error_line(pulled.stderr).startswith(
        f"medbench: error: gave up after 2 s finding Google Cloud credentials for gs://{BUCKET} ("
    )
    assert _files(project.root) == before


def test_a_metadata_server_that_never_answers_is_bounded_by_the_deadline(
    project: Settings, silent: SilentServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(key, raising=False)
    env = {
        "MEDBENCH_GCS_BUCKET": BUCKET,
        "HOME": str(tmp_path),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "NO_GCE_CHECK": "false",  # google-auth asks the metadata server (here: the silent one) for credentials
        "GCE_METADATA_HOST": silent.host,
        "GCE_METADATA_IP": silent.host,
    }
    done = run_medbench(["pull", RUN_ID, "--deadline", "2"], project, timeout=PROCESS_TIMEOUT_S, **env)
    assert done.returncode == 2
    assert _error_line(done.stderr) == (
        f"medbench: error: gave up after 2 s finding Google Cloud credentials for gs://{BUCKET} "
        "(no answer from the metadata server or the token endpoint)"
    )
    assert silent.connections, "google-auth asked the silent metadata server"


@pytest.mark.parametrize(
    "args",
    [
        ["sync", "--deadline", "nan"],
        ["sync", "--deadline", "inf"],
        ["sync", "--deadline", "-5"],
        ["sync", "--deadline", "0"],
        ["sync", "--deadline", "1e9"],
        ["sync", "--deadline", "abc"],
        ["sync", "--deadline="],
        ["pull", RUN_ID, "--deadline", "nan"],
        ["pull", RUN_ID, "--deadline=-inf"],
    ],
    ids=["nan", "inf", "negative", "zero", "too-long", "text", "empty", "pull-nan", "pull-minus-inf"],
)
def test_out_of_range_deadlines_are_refused_in_one_line(
    project: Settings, silent: SilentServer, args: list[str]
) -> None:
    before = _files(project.root)
    done = run_medbench(
        args, project, timeout=PROCESS_TIMEOUT_S, MEDBENCH_GCS_BUCKET=BUCKET, STORAGE_EMULATOR_HOST=silent.url
    )
    value = args[-1].removeprefix("--deadline=") if args[-1].startswith("--deadline=") else args[-1]
    assert done.returncode == 2
    assert done.stderr.strip() == f"medbench: error: --deadline {value!r}: expected a number of seconds in (0, 86400]"
    assert not silent.connections, "refused before any network call"
    assert _files(project.root) == before


@pytest.mark.parametrize("deadline", [math.nan, math.inf, -math.inf, 0, -5, 86401, "5", True, None])
def test_the_python_api_refuses_out_of_range_deadlines(project: Settings, deadline: Any) -> None:
    before = _files(project.root)
    message = r"deadline_s=.*: expected a number of seconds in \(0, 86400\]"
    with pytest.raises(ConfigError, match=message):
        sync(project, deadline_s=deadline)
    with pytest.raises(ConfigError, match=message):
        pull(RUN_ID, project, deadline_s=deadline)
    run_dir = project.models_dir / EXPERIMENT / RUN_ID
    with pytest.raises(ConfigError, match=message):
        upload_run(run_dir, {"id": "20260103T000000Z-aaaaaa", "name": EXPERIMENT}, project, deadline_s=deadline)
    assert _files(project.root) == before, "nothing queued, nothing changed"


INVALID_BUCKETS = {
    "Bad Bucket!": "contains ' ', '!', 'B'; expected only lowercase letters a-z, digits, '-', '_' and '.'",
    "MyBucket": "contains 'B', 'M'; expected only lowercase letters a-z, digits, '-', '_' and '.'",
    "gs://my-bucket": "is not a bucket name alone; expected no gs:// and no '/'",
    "my-bucket/runs": "is not a bucket name alone; expected no gs:// and no '/'",
    "ab": "is 2 characters long (longest dot-separated part 2); expected 3 to 63 characters",
    "a" * 64: "is 64 characters long (longest dot-separated part 64); expected 3 to 63 characters",
    ".".join(["a" * 60] * 4): "is 243 characters long (longest dot-separated part 60)",
    "a." + "b" * 64: "is 66 characters long (longest dot-separated part 64)",
    "-bucket": "does not start and end with a letter or digit",
    "bucket_": "does not start and end with a letter or digit",
    "a..b": "has two dots in a row",
    "192.168.5.4": "is an IP address in dotted-decimal notation",
    "goog-runs": "begins with 'goog', which Cloud Storage reserves",
    "my-g00gle-runs": "contains 'google' (or a close misspelling), which Cloud Storage reserves",
    "bücket": "contains 'ü'",
    "tab\tname": "contains '\\t'",
}


@pytest.mark.parametrize("name", list(INVALID_BUCKETS), ids=range(len(INVALID_BUCKETS)))
def test_invalid_bucket_names_are_refused_with_the_rule_they_break(name: str) -> None:
    problem = bucket_name_problem(name)
    assert problem is not None and problem.startswith(INVALID_BUCKETS[name])
    with pytest.raises(ConfigError, match="is not a valid bucket name: it .*naming"):
        check_bucket_name(name)


@pytest.mark.parametrize(
    "name",
    ["medbench-test", "my_bucket", "abc", "a" * 63, "runs.example.com", ".".join(["a" * 63] * 3) + ".ab", "1.2.3"],
)
def test_valid_bucket_names_pass(name: str) -> None:
    assert bucket_name_problem(name) is None


INVALID_PREFIXES = {
    "a/../b": "has the folder '..'",
    "runs//x": "has the folder ''",
    "./runs": "has the folder '.'",
    "runs\nx": "contains a control character",
    "a\\b": "contains '\\'",
    "p" * 513: "is 513 characters long; expected at most 512 bytes",
}


@pytest.mark.parametrize("prefix", list(INVALID_PREFIXES), ids=range(len(INVALID_PREFIXES)))
def test_invalid_prefixes_are_refused_with_what_is_wrong(prefix: str) -> None:
    problem = prefix_problem(prefix)
    assert problem is not None and problem.startswith(INVALID_PREFIXES[prefix])
    with pytest.raises(ConfigError, match="^MEDBENCH_GCS_PREFIX=.* is not a folder in the bucket: it "):
        check_prefix(prefix)


@pytest.mark.parametrize("prefix", ["", "runs", "lab/medbench-2026", "a.b/c_d/e-f", "ü/é"])
def test_valid_prefixes_pass(prefix: str) -> None:
    check_prefix(prefix)


def test_an_invalid_prefix_is_one_line_before_any_network_call(project: Settings, silent: SilentServer) -> None:
    before = _files(project.root)
    done = run_medbench(
        ["sync", "--deadline", "5"],
        project,
        timeout=PROCESS_TIMEOUT_S,
        MEDBENCH_GCS_BUCKET=BUCKET,
        MEDBENCH_GCS_PREFIX="lab/../other",
        STORAGE_EMULATOR_HOST=silent.url,
    )
    assert done.returncode == 2
    assert _error_line(done.stderr) == (
        "medbench: error: MEDBENCH_GCS_PREFIX='lab/../other' is not a folder in the bucket: it has the folder '..'; "
        "expected folder names separated by single '/', none '.' or '..'; fix it, or unset it to keep runs at the "
        "bucket's top level"
    )
    assert not silent.connections and _files(project.root) == before


@pytest.mark.parametrize("credentials", ["emulator", "key-file"])
def test_an_invalid_bucket_name_is_one_line_before_any_network_call(
    project: Settings, silent: SilentServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, credentials: str
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    if credentials == "emulator":
        env = {"STORAGE_EMULATOR_HOST": silent.url}
    else:
        env = {"GOOGLE_APPLICATION_CREDENTIALS": str(_key_file(tmp_path / "key.json", f"{silent.url}/token"))}
    before = _files(project.root)
    expected = (
        "medbench: error: MEDBENCH_GCS_BUCKET='Bad Bucket!' is not a valid bucket name: it contains ' ', '!', 'B'; "
        "expected only lowercase letters a-z, digits, '-', '_' and '.' "
        "(see https://cloud.google.com/storage/docs/naming-buckets); fix it, or unset MEDBENCH_GCS_BUCKET to keep "
        "runs local only"
    )
    for args in (["sync"], ["pull", RUN_ID]):
        done = run_medbench(args, project, timeout=PROCESS_TIMEOUT_S, MEDBENCH_GCS_BUCKET="Bad Bucket!", **env)
        assert done.returncode == 2, args
        assert done.stderr.strip() == expected, args
    assert not silent.connections, "refused before any network call"
    assert _files(project.root) == before


def test_an_invalid_bucket_name_at_the_end_of_a_run_only_warns(project: Settings, silent: SilentServer) -> None:
    """What the end of Experiment.run() does (upload_run): the run is queued and the problem is a warning."""
    settings = replace(project, gcs_bucket="gs://my-bucket")
    run_dir = settings.models_dir / EXPERIMENT / RUN_ID
    report = upload_run(run_dir, {"id": RUN_ID, "name": EXPERIMENT, "best_epoch": None}, settings)
    assert report.pending == [RUN_ID] and report.uploaded == [] and report.failed == {}
    assert "MEDBENCH_GCS_BUCKET='gs://my-bucket' is not a valid bucket name" in (report.warning or "")
    assert [path.stem for path in pending_items(settings)] == [RUN_ID]


@pytest.mark.slow
def test_a_run_with_an_invalid_bucket_name_completes_is_logged_and_waits_in_the_outbox(
    settings: Settings, silent: SilentServer
) -> None:
    benchmark = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
    done = run_medbench(
        ["exec", benchmark], settings, MEDBENCH_GCS_BUCKET="Bad Bucket!", STORAGE_EMULATOR_HOST=silent.url
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "completed" in done.stdout
    (entry,) = ExperimentLog(settings.logs_dir / UNVALIDATED_LOG).read()
    assert entry["status"] == "completed" and entry["storage"]["remote"] is None
    assert not (settings.logs_dir / "failed-experiment-log.json").exists()
    assert [path.stem for path in pending_items(settings)] == [entry["id"]]
    assert "MEDBENCH_GCS_BUCKET='Bad Bucket!' is not a valid bucket name: it contains ' ', '!', 'B'" in done.stderr
    assert f"1 run(s) stay in {settings.outbox_dir}" in done.stderr
    assert not silent.connections
