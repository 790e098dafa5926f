"""`medbench serve`: its arguments and command (FastAPI, uvicorn and TensorFlow load only when it runs)."""

from __future__ import annotations

import argparse


def add_serve_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `serve` to the command line's subcommands (it sets its own function)."""
    serve = commands.add_parser("serve", help="serve a saved run over HTTP: TIML's REST routes, /docs, /readyz")
    serve.add_argument("run", help="run id (pulled from MEDBENCH_GCS_BUCKET when not local) or run folder")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (8000)")
    serve.add_argument("--workers", type=int, default=1, help="server processes, each loading the model once (1)")
    serve.add_argument("--max-upload-mb", type=float, default=32.0, help="largest upload accepted, in MB (32)")
    serve.add_argument(
        "--batch-window-ms",
        type=float,
        default=5.0,
        help="after taking what queued while the model ran, how long a batch waits for more (5; 0: never)",
    )
    serve.add_argument("--max-batch", type=int, default=32, help="most images in one model call (32; 1: no batching)")
    serve.set_defaults(func=serve_command)
    return serve


def serve_command(args: argparse.Namespace) -> int:
    """Load the run and serve it until interrupted."""
    from pathlib import Path

    from medbench.runs.run_dir import RunDir
    from medbench.runs.saved_run import SavedRun
    from medbench.serving.app import ServeOptions
    from medbench.serving.workers import serve
    from medbench.settings import Settings
    from medbench.tracking.storage import find_or_pull_runs

    if args.workers < 1:
        raise SystemExit(f"medbench serve: error: --workers {args.workers}: expected 1 or more")
    folder = RunDir(Path(args.run))  # no TensorFlow here: the workers are forked before they load the model
    run = SavedRun.load(folder) if folder.has_config() else find_or_pull_runs(Settings.from_env(), [args.run])[0]
    options = ServeOptions(
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        batch_window_ms=args.batch_window_ms,
        max_batch=args.max_batch,
    )
    serve(run, options, args.host, args.port, args.workers)
    return 0
