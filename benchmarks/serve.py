"""`medbench serve` under load: 8 concurrent clients for 30 s, with and without micro-batching, side by side.

For each model (a SmallCNN run at 64 px and a DenseNet121 run at 224 px with random weights, both trained
for one short epoch on the demo data so that they are real run folders) the script starts `medbench serve`
three times on 127.0.0.1: batching concurrent requests into one model call (``--max-batch 32``) with a 5 ms
window and with none (what arrived while the model ran is the next batch), and one model call per request
(``--max-batch 1``). The same clients post a demo image to ``/rest/classify`` against each in turn, in
interleaved slices (A, B, C, A, B, C, ...), so a noisy machine slows all three alike. Figures: requests/s,
p50/p95/p99 latency, errors and the server's CPU per request (from /proc); then, in this process, what
one upload's decode and the model call at batch 1, 4 and 8 cost, which bound what batching can gain.
Goals (issue 11): 0 errors; p99 <= 3 x p50; batching >= 2x the requests/s of one request per call at 8
clients.

    python benchmarks/serve.py                 # both models, 30 s per contender in 3 slices
    python benchmarks/serve.py --quick         # SmallCNN only, 3 s, 2 clients (checks the script works)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import BenchmarkError, print_header, python_versions, run_script

MODELS = {
    "SmallCNN 64 px": ("2D.SmallCNN", "demo_BCE_E1_B16_C0_N5_D64_DS8020_1LR3_LF5_Adam"),
    "DenseNet121 224 px": ("2D.DenseNet121", "demo_BCE_E1_B8_C0_N5_D224_DS8020_1LR4_LF5_Adam"),
}
MODES = {
    "batched, 5 ms": ["--max-batch", "32", "--batch-window-ms", "5"],
    "batched, 0 ms": ["--max-batch", "32", "--batch-window-ms", "0"],
    "one per call": ["--max-batch", "1"],
}
BASELINE = "one per call"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/medbench-serve-bench"), help="project folder")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="load per contender")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=3, help="slices per contender, interleaved (A, B, C, A, ...)")
    parser.add_argument("--quick", action="store_true", help="SmallCNN only, 3 s, 2 clients, 1 slice")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.seconds, args.clients, args.repeats = ["SmallCNN 64 px"], 3.0, 2, 1
    return args


def _settings(work: Path):  # type: ignore[no-untyped-def]
    from medbench.settings import Settings

    return Settings(work, work / "data", work / "models", work / "logs", work / "weights")


def _run(work: Path, architecture: str, benchmark: str) -> str:
    """The id of a completed run of `benchmark` on `architecture` (trained once, then reused)."""
    from medbench.benchmark.spec import ExperimentSpec
    from medbench.demo import write_demo_dataset
    from medbench.experiment import Experiment
    from medbench.runs.saved_run import saved_runs

    settings = _settings(work)
    if not (settings.data_dir / "demo").is_dir():
        write_demo_dataset(settings.data_dir / "demo", n_train_patients=20, n_valid_patients=6, seed=0)
    spec = ExperimentSpec(benchmark, architecture, {"max_train_samples": 16, "tensorboard": False})
    done = [run for run in saved_runs(settings.models_dir, spec.name) if run.run_dir.is_complete()]
    return done[0].run_id if done else Experiment(spec, settings).run()["id"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(work: Path, run_id: str, extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    settings = _settings(work)
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEDBENCH_")}
    folders = {"ROOT": work, "DATA_DIR": settings.data_dir, "MODELS_DIR": settings.models_dir}
    folders.update(LOGS_DIR=settings.logs_dir, WEIGHTS_DIR=settings.weights_dir)
    env.update({f"MEDBENCH_{name}": str(path) for name, path in folders.items()}, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "medbench.cli", "serve", run_id, "--port", str(port), *extra]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchmarkError(f"medbench serve exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    raise BenchmarkError("medbench serve did not become ready in 180 s")


def _request(port: int, image: bytes) -> bytes:
    """A keep-alive POST of `image` to /rest/classify, encoded once."""
    boundary = "medbench-serve-benchmark"
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n'.encode(),
            b"Content-Type: image/jpeg\r\n\r\n",
            image,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    head = (
        f"POST /rest/classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Connection:
    """One client's keep-alive connection: send the request, read the whole response, return its status."""

    def __init__(self, port: int, request: bytes):
        self.port, self.request = port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        try:
            self.writer.write(self.request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if length is None:
                raise BenchmarkError(f"a response without Content-Length: {head[:200]!r}")
            await self.reader.readexactly(int(length.group(1)))
            return int(head.split(b" ", 2)[1])
        except (OSError, asyncio.IncompleteReadError):
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _load(url: str, image: bytes, clients: int, seconds: float) -> tuple[list[float], int, float]:
    """`clients` connections posting `image` in a loop for `seconds`: the 200s' latencies, errors, elapsed.

    The client is a raw asyncio HTTP/1.1 exchange of a pre-encoded request: on a 2-core machine the load
    generator shares the CPU with the server, and an httpx client spent about a millisecond per request.
    """
    port = int(url.rsplit(":", 1)[1])
    connections = [_Connection(port, _request(port, image)) for _ in range(clients)]
    for connection in connections:  # warm-up, one connection at a time: the first calls trace the model
        for _ in range(3):
            await connection.exchange()
    latencies: list[float] = []
    errors = 0

    async def client(connection: _Connection, stop: float) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            began = time.perf_counter()
            try:
                status = await connection.exchange()
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                continue
            if status != 200:
                errors += 1
                continue
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(client(connection, began + seconds) for connection in connections))
    elapsed = time.perf_counter() - began
    for connection in connections:
        connection.close()
    return latencies, errors, elapsed


def _measure(
    work: Path, run_id: str, image: bytes, clients: int, seconds: float, repeats: int
) -> dict[str, dict[str, float]]:
    """Every mode's server started at once, then loaded in turn, `repeats` slices each of seconds/repeats."""
    servers = {}
    try:
        for mode, extra in MODES.items():
            servers[mode] = _serve(work, run_id, extra)
        samples: dict[str, tuple[list[float], int, float, float]] = {mode: ([], 0, 0.0, 0.0) for mode in MODES}
        for _ in range(repeats):
            for mode, (server, url) in servers.items():
                cpu = _cpu_seconds(server.pid)
                latencies, errors, elapsed = asyncio.run(_load(url, image, clients, seconds / repeats))
                cpu = _cpu_seconds(server.pid) - cpu
                before = samples[mode]
                samples[mode] = (before[0] + latencies, before[1] + errors, before[2] + elapsed, before[3] + cpu)
    finally:
        for server, _ in servers.values():
            server.terminate()
        for server, _ in servers.values():
            server.wait(timeout=60)
    rows = {}
    for mode, (latencies, errors, elapsed, cpu) in samples.items():
        ms = np.asarray(latencies) * 1000 if latencies else np.asarray([np.nan])
        row = {f"p{q}": float(np.percentile(ms, q)) for q in (50, 95, 99)}
        row["cpu_ms"] = 1000 * cpu / len(latencies) if latencies else float("nan")
        rows[mode] = {**row, "rps": len(latencies) / elapsed, "errors": errors, "n": len(latencies)}
    return rows


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process `pid` has used (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _model_costs(work: Path, run_id: str, image: bytes) -> list[str]:
    """In this process, on the served run: one upload's decode + preprocessing, and the model call per batch size."""
    from medbench.runs.saved_run import saved_runs
    from medbench.serving.service import RunService
    from medbench.serving.uploads import check_upload

    run = next(run for run in saved_runs(_settings(work).models_dir) if run.run_id == run_id)
    service = RunService.load(run)
    upload = check_upload(image)
    pixels = service.image(upload)
    lines = [f"decode + preprocessing {_best_ms(lambda: service.image(upload), 20):6.2f} ms per upload"]
    single = None
    for size in (1, 4, 8):
        batch = np.repeat(pixels[np.newaxis], size, axis=0)
        service.predict(batch)  # the first call of a shape traces it
        per_image = _best_ms(lambda batch=batch: service.predict(batch), 5) / size
        single = single or per_image
        lines.append(f"model call, batch {size}: {per_image:7.2f} ms per image  ({per_image / single:.2f} of batch 1)")
    return lines


def _best_ms(call: Any, repeats: int) -> float:
    """The fastest of `repeats` calls, in ms (the least disturbed by whatever else runs)."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return 1000 * min(times)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    print_header(
        "medbench serve under load: /rest/classify, loopback",
        {
            "clients": args.clients,
            "seconds per contender": f"{args.seconds:g}, in {args.repeats} interleaved slice(s)",
            "versions": python_versions(),
        },
    )
    results: dict[str, dict[str, dict[str, float]]] = {}
    for model in args.models:
        architecture, benchmark = MODELS[model]
        run_id = _run(args.work_dir, architecture, benchmark)
        image = sorted((args.work_dir / "data" / "demo").rglob("*.jpg"))[0].read_bytes()
        results[model] = _measure(args.work_dir, run_id, image, args.clients, args.seconds, args.repeats)
        for mode, row in results[model].items():
            print(
                f"  {model:20s} {mode:13s} {row['rps']:8.1f} req/s  p50 {row['p50']:7.1f} ms  "
                f"p95 {row['p95']:7.1f} ms  p99 {row['p99']:7.1f} ms  errors {row['errors']}  (n={row['n']})  "
                f"server CPU {row['cpu_ms']:5.2f} ms/request"
            )
        for line in _model_costs(args.work_dir, run_id, image):
            print(f"  {model:20s} {line}")
    print("\n-- ratios --")
    for model, rows in results.items():
        single = rows[BASELINE]
        for mode in MODES:
            if mode != BASELINE:
                speedup = rows[mode]["rps"] / single["rps"] if single["rps"] else float("nan")
                print(f"{model:20s} {mode} / {BASELINE}     {speedup:6.2f}x requests/s  (goal >= 2x)")
        for mode, row in rows.items():
            print(f"{model:20s} {mode:13s} p99 / p50          {row['p99'] / row['p50']:6.2f}   (goal <= 3)")
    total_errors = sum(int(row["errors"]) for rows in results.values() for row in rows.values())
    print(f"\nerrors in all: {total_errors} (goal 0)")
    return 0


if __name__ == "__main__":
    run_script(main, "serve.py")
