"""Shared parts of the benchmark scripts: image sets, interleaved repeats, summaries, the AUCMEDI worker.

Every script measures its contenders side by side in one run, interleaving the repeats (A, B, A, B,
...) so that machine noise hits all of them alike, and reports the median with the min-max spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO = BENCHMARKS_DIR.parent
DEFAULT_WORK_DIR = REPO / "data" / "benchmarks"
DEFAULT_NIH_DIR = REPO.parent / "shared" / "data" / "nih-cxr14-sample" / "images"
DEFAULT_AUCMEDI_PYTHON = Path("/work/aucmedi-venv/bin/python")
AUCMEDI_WORKER = BENCHMARKS_DIR / "_aucmedi_worker.py"
REPLY_MARKER = "@@medbench-benchmark "
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEMO_IMAGES_PER_PATIENT = 2.3


class BenchmarkError(RuntimeError):
    """A benchmark cannot run as asked (missing interpreter, too few images, a worker that failed)."""


def cached_pipeline_inputs(
    images: list[Path], args: argparse.Namespace, augmentations: tuple[str, ...]
) -> tuple[Any, Any, Any]:
    """medbench's side of a run: the 1-channel cache of `images` (built or reused), their rows, the pipeline config.

    The pipeline yields uint8 (batch, size, size, 1) batches: the model standardizes them itself.
    """
    from medbench.pipeline.config import PipelineConfig
    from medbench.preprocessing import PreprocessParams, build_cache

    paths = [str(path) for path in images]
    params = PreprocessParams(image_size=args.image_size, channels=1)
    cache = build_cache(paths, params, args.work_dir / "cache", progress=False)
    config = PipelineConfig(
        image_size=args.image_size, batch_size=args.batch_size, augmentations=augmentations, seed=args.seed
    )
    return cache, cache.rows(paths), config


def run_script(main: Callable[[], int], script: str) -> None:
    """Exit with `main()`'s status; a BenchmarkError becomes one `<script>: error:` line and status 2."""
    try:
        sys.exit(main())
    except BenchmarkError as error:
        print(f"benchmarks/{script}: error: {error}", file=sys.stderr)
        sys.exit(2)


def add_common_arguments(parser: argparse.ArgumentParser, *, default_repeats: int = 5) -> None:
    """--source/--images/--work-dir/--repeats/--quick, shared by every script."""
    parser.add_argument(
        "--source",
        choices=("demo", "nih"),
        default="demo",
        help="demo: CheXpert-sized synthetic JPEGs (320x390) written into --work-dir; "
        "nih: the real NIH PNGs (512 px) from --images (default %(default)s)",
    )
    parser.add_argument(
        "--images",
        type=Path,
        default=None,
        help=f"folder of PNG/JPEG files to use instead (searched recursively; default for nih: {DEFAULT_NIH_DIR})",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=DEFAULT_WORK_DIR,
        help="where demo images, caches and scratch files go (default %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=default_repeats, help="timed repeats per contender")
    parser.add_argument("--seed", type=int, default=0, help="seed of the demo data and the pipelines")
    parser.add_argument("--quick", action="store_true", help="a tiny run that only checks the script works")


def add_aucmedi_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--aucmedi-python",
        type=Path,
        default=DEFAULT_AUCMEDI_PYTHON,
        help="interpreter of the virtualenv with aucmedi==0.11.0 (default %(default)s; see benchmarks/README.md)",
    )
    parser.add_argument("--no-aucmedi", action="store_true", help="measure medbench only (no AUCMEDI virtualenv)")


def find_images(folder: Path) -> list[Path]:
    """Every PNG/JPEG under `folder`, sorted, so that each contender gets the same list."""
    if not folder.is_dir():
        raise BenchmarkError(f"image folder {folder} does not exist; expected a folder of PNG/JPEG files")
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())


def demo_images(work_dir: Path, count: int, seed: int) -> list[Path]:
    """At least `count` demo JPEGs, written once per (count, seed) under `work_dir` and reused afterwards."""
    from medbench.demo import write_demo_dataset

    patients = max(4, int(count / DEMO_IMAGES_PER_PATIENT * 1.3) + 4)
    out_dir = work_dir / f"demo-{patients}p-s{seed}"
    if not (out_dir / "done").exists():
        write_demo_dataset(out_dir, n_train_patients=patients, n_valid_patients=2, seed=seed)
        (out_dir / "done").write_text("written\n")
    return find_images(out_dir)


def select_images(args: argparse.Namespace, count: int) -> list[Path]:
    """`count` image files from --images, --source nih or the demo data (the first `count` in sorted order)."""
    if args.images is not None:
        images = find_images(args.images)
    elif args.source == "nih":
        images = find_images(DEFAULT_NIH_DIR)
    else:
        images = demo_images(args.work_dir, count, args.seed)
    if len(images) < count:
        raise BenchmarkError(f"{len(images)} image(s) available but {count} needed; pass fewer batches or images")
    return images[:count]


@dataclass
class Summary:
    """The repeats of one measured quantity (higher is better, e.g. images/s)."""

    name: str
    values: list[float]
    unit: str = "img/s"

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def line(self) -> str:
        spread = f"{min(self.values):,.1f}-{max(self.values):,.1f}"
        return f"{self.name:<52} {self.median:>10,.1f} {self.unit:<6} (min-max {spread}, n={len(self.values)})"


def ratio_line(name: str, numerator: Summary, denominator: Summary, goal: float | None, *, per_repeat: bool) -> str:
    """Ratio of the medians, with the spread of the per-repeat ratios when the repeats are paired."""
    value = numerator.median / denominator.median
    text = f"{name:<52} {value:>10.2f}x"
    if per_repeat:
        ratios = [a / b for a, b in zip(numerator.values, denominator.values)]
        text += f"  (per repeat: median {statistics.median(ratios):.2f}, min-max {min(ratios):.2f}-{max(ratios):.2f})"
    if goal is not None:
        text += f"  goal >= {goal:g}: {'MET' if value >= goal else 'NOT MET'}"
    return text


def interleave(contenders: dict[str, Callable[[], float]], repeats: int, *, verbose: bool = True) -> dict[str, list]:
    """Call each contender once per round, round after round (A, B, A, B, ...); their results per name."""
    results: dict[str, list] = {name: [] for name in contenders}
    for round_index in range(repeats):
        for name, measure in contenders.items():
            results[name].append(measure())
            if verbose:
                print(f"  repeat {round_index + 1}/{repeats} {name}: {results[name][-1]:,.1f}", flush=True)
    return results


def print_header(title: str, details: dict[str, Any]) -> None:
    print(f"\n== {title} ==")
    for key, value in details.items():
        print(f"   {key}: {value}")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class AucmediWorker:
    """`_aucmedi_worker.py` running in the AUCMEDI virtualenv, driven over stdin/stdout."""

    def __init__(self, python: Path, config: dict[str, Any], scratch: Path) -> None:
        if not python.exists():
            raise BenchmarkError(
                f"AUCMEDI interpreter {python} does not exist. Create the virtualenv as benchmarks/README.md "
                "says (python3 -m venv /work/aucmedi-venv && /work/aucmedi-venv/bin/pip install aucmedi==0.11.0 "
                "tensorflow-cpu==2.21.0), pass --aucmedi-python PATH, or measure medbench alone with --no-aucmedi"
            )
        scratch.mkdir(parents=True, exist_ok=True)
        self._config_file = tempfile.NamedTemporaryFile("w", suffix=".json", dir=scratch, delete=False)
        json.dump(config, self._config_file)
        self._config_file.close()
        self._stderr = tempfile.TemporaryFile("w+", dir=scratch)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)
        self._process = subprocess.Popen(
            [str(python), str(AUCMEDI_WORKER), "--config", self._config_file.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
            cwd=scratch,
        )
        self.info: dict[str, Any] = {}

    def wait_ready(self) -> dict[str, Any]:
        """Wait for the worker's warm-up to finish; its description (versions, batch shape, ...)."""
        if not self.info:
            self.info = self._read_reply()
        return self.info

    def _read_reply(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith(REPLY_MARKER):
                message = json.loads(line[len(REPLY_MARKER) :])
                if "error" in message:
                    raise BenchmarkError(f"AUCMEDI worker: {message['error']}")
                return message
        self._process.wait()
        self._stderr.seek(0)
        tail = self._stderr.read()[-3000:]
        raise BenchmarkError(f"AUCMEDI worker exited with code {self._process.returncode}:\n{tail}")

    def run(self, batches: int) -> dict[str, Any]:
        """Time `batches` consecutive batches of the generator."""
        return self._command({"cmd": "run", "batches": batches})

    def fit(self, steps: int) -> dict[str, Any]:
        """Time one epoch of `steps` steps of fitting the worker's tiny model on the generator."""
        return self._command({"cmd": "fit", "steps": steps})

    def _command(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        return self._read_reply()

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                assert self._process.stdin is not None
                self._process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self._process.stdin.flush()
                self._process.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._stderr.close()
        Path(self._config_file.name).unlink(missing_ok=True)

    def __enter__(self) -> AucmediWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def timed(function: Callable[[], Any]) -> float:
    """Seconds `function` takes."""
    began = time.perf_counter()
    function()
    return time.perf_counter() - began


def python_versions(*, tensorflow: bool = True) -> str:
    """Versions of Python, NumPy and (when asked) TensorFlow in this process."""
    import numpy as np

    versions = [f"python {sys.version.split()[0]}", f"numpy {np.__version__}"]
    if tensorflow:
        import tensorflow as tf

        versions.append(f"tensorflow {tf.__version__}")
    return ", ".join(versions)


def report_pair(
    results: dict[str, list[float]], label: str, ours: str, theirs: str, goal: float | None, *, unit: str = "img/s"
) -> dict[str, Summary]:
    """Print each contender's median figure, then `ours` ÷ `theirs` with its per-repeat range; the summaries."""
    summaries = {name: Summary(name, values, unit) for name, values in results.items()}
    print("\n-- figures (median over repeats) --")
    for summary in summaries.values():
        print(summary.line())
    print("\n-- ratio (ratio of medians) --")
    print(ratio_line(label, summaries[ours], summaries[theirs], goal, per_repeat=True))
    return summaries


def epoch_timer() -> Any:
    """A Keras callback whose `durations` lists each epoch's seconds (`on_epoch_begin` to `on_epoch_end`).

    The `fit` call's own set-up and tear-down, paid once per training run, are outside it.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.durations: list[float] = []
            self._began = 0.0

        def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
            self._began = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            self.durations.append(time.perf_counter() - self._began)

    return EpochTimer()
