"""Several server processes on one listening socket: `--workers N`.

The socket is bound once in the parent; N children are forked before any of them imports TensorFlow,
and each builds the application and loads the model itself (once per worker), then accepts on the shared
socket (the kernel spreads connections among them). The parent waits, and stops every child when it is
stopped itself or when one child dies (a child whose run fails to load exits with 1).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from typing import Any

from medbench.errors import ConfigError
from medbench.runs.saved_run import SavedRun

__all__ = ["serve"]

logger = logging.getLogger(__name__)


def _run_server(run: SavedRun, options: Any, host: str, port: int, sock: socket.socket | None = None) -> None:
    """One uvicorn server for `run`, stopped when the run fails to load (then ConfigError names why)."""
    import uvicorn

    from medbench.serving.app import create_app

    failures: list[BaseException] = []

    def stop(error: BaseException) -> None:
        failures.append(error)
        server.should_exit = True

    config = uvicorn.Config(create_app(run, options, on_failure=stop), host=host, port=port, log_level="info")
    server = uvicorn.Server(config)
    server.run(sockets=[sock] if sock is not None else None)
    if failures:
        raise ConfigError(f"run {run.run_id} cannot be served: {failures[0]}") from failures[0]


def _worker(run: SavedRun, options: Any, sock: socket.socket, host: str, port: int) -> None:
    try:
        _run_server(run, options, host, port, sock)
    except ConfigError as error:
        logger.error("%s", error)
        raise SystemExit(1) from None


def serve(run: SavedRun, options: Any, host: str, port: int, workers: int = 1) -> None:
    """Serve `run` on host:port with `workers` processes (1: this process) until interrupted."""
    import uvicorn

    if workers < 1:
        raise ValueError(f"workers {workers}: expected 1 or more")
    if workers == 1:
        _run_server(run, options, host, port)
        return
    sock = uvicorn.Config(app=None, host=host, port=port).bind_socket()
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_worker, args=(run, options, sock, host, port)) for _ in range(workers)]
    for child in children:
        child.start()
    pids = ", ".join(str(child.pid) for child in children)
    logger.info("serving run %s on %s:%d with %d workers: %s", run.run_id, host, port, workers, pids)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping and all(child.is_alive() for child in children):
            time.sleep(0.5)
    finally:
        for child in children:
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)
        for child in children:
            child.join(timeout=30)
        sock.close()
    failed = [child for child in children if child.exitcode not in (0, -signal.SIGTERM, None)]
    if not stopping and failed:
        codes = ", ".join(f"{child.pid} exited with {child.exitcode}" for child in failed)
        raise ConfigError(f"medbench serve stopped: worker {codes} (its error is logged above)")
