"""A real Google Cloud Storage emulator (gcp-storage-emulator) run as a subprocess on 127.0.0.1 for tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

EMULATOR_SCRIPT = Path(sys.executable).parent / "gcp-storage-emulator"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StorageEmulator:
    """`gcp-storage-emulator start --in-memory` on a fixed port with one bucket; start/stop as often as wanted."""

    def __init__(self, bucket: str, port: int | None = None) -> None:
        self.bucket = bucket
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.output = tempfile.TemporaryFile()

    @property
    def url(self) -> str:
        """The value for STORAGE_EMULATOR_HOST."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until its bucket answers."""
        command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--in-memory", "--default-bucket", self.bucket, "--quiet"]
        self.process = subprocess.Popen(command, stdout=self.output, stderr=subprocess.STDOUT)
        end = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < end:
            if self.process.poll() is not None:
                self.output.seek(0)
                error = self.output.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"gcp-storage-emulator exited with {self.process.returncode}: {error}")
            if self.answers():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gcp-storage-emulator did not answer on {self.url} within {START_TIMEOUT_S} s")

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/storage/v1/b/{self.bucket}", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@contextmanager
def running_emulator(bucket: str) -> Iterator[StorageEmulator]:
    """A started emulator of `bucket` that STORAGE_EMULATOR_HOST points to (no credentials) for the block."""
    server = StorageEmulator(bucket)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STORAGE_EMULATOR_HOST", server.url)
        patch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        server.start()
        try:
            yield server
        finally:
            server.stop()
