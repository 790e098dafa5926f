"""Preprocessing: medbench's cache build (first pass and cache hit) vs bare OpenCV decode + resize.

The same files, the same output (1-channel uint8 at --image-size, area interpolation), the same
number of workers. Per round, in this order: medbench's first pass into a fresh, empty cache folder
(`build_cache`: decode, grayscale, resize, write shards + manifest); the second run of the same
`build_cache` call (a cache hit: opens the manifest, checks it); bare OpenCV (`cv2.imread` grayscale +
`cv2.resize` INTER_AREA, results kept in memory) on 1 thread and on N threads; medbench's first
pass on 1 worker. The files are in the OS page cache for every contender after the first read.

    python benchmarks/preprocessing.py                 # 2000 demo JPEGs (320x390)
    python benchmarks/preprocessing.py --source nih    # the 403 real NIH PNGs (512 px)
    python benchmarks/preprocessing.py --quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from common import (
    BenchmarkError,
    Summary,
    add_common_arguments,
    cpu_count,
    interleave,
    print_header,
    python_versions,
    ratio_line,
    run_script,
    select_images,
)

FIRST_PASS_GOAL = 0.8
CACHE_HIT_GOAL = 20.0
NIH_COUNT = 403
DEMO_COUNT = 2000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--count", type=int, default=None, help="images (default: 2000 demo, 403 NIH)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=cpu_count(), help="N for medbench and OpenCV")
    parser.add_argument("--skip-single", action="store_true", help="leave out the 1-worker contenders")
    args = parser.parse_args(argv)
    if args.count is None:
        args.count = NIH_COUNT if args.source == "nih" and args.images is None else DEMO_COUNT
    if args.quick:
        args.count, args.image_size, args.repeats = 40, 64, 1
    return args


def opencv_contender(paths: list[str], size: int, workers: int) -> Callable[[], float]:
    """Bare OpenCV on `workers` threads (OpenCV releases the GIL; its own threading off), in images/s."""

    def load(path: str) -> np.ndarray:
        image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise BenchmarkError(f"OpenCV cannot read {path}")
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)

    def measure() -> float:
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            began = time.perf_counter()
            if workers <= 1:
                results = [load(path) for path in paths]
            else:
                with ThreadPoolExecutor(workers) as pool:
                    results = list(pool.map(load, paths))
            seconds = time.perf_counter() - began
        finally:
            cv2.setNumThreads(threads)
        if len(results) != len(paths) or results[0].shape != (size, size):
            raise BenchmarkError("OpenCV baseline produced the wrong number or shape of images")
        return len(paths) / seconds

    return measure


class MedbenchBuilds:
    """medbench's cache build: each first pass into a fresh folder; the cache hit on the last one built."""

    def __init__(self, paths: list[str], image_size: int, scratch: Path) -> None:
        from medbench.preprocessing import PreprocessParams

        self.paths = paths
        self.params = PreprocessParams(image_size=image_size, channels=1)
        self.scratch = scratch
        self.last_root: Path | None = None
        self.roots: list[Path] = []

    def first_pass(self, workers: int) -> Callable[[], float]:
        from medbench.preprocessing import build_cache

        def measure() -> float:
            root = Path(tempfile.mkdtemp(prefix="cache-", dir=self.scratch))
            self.roots.append(root)
            began = time.perf_counter()
            cache = build_cache(self.paths, self.params, root, workers=workers, progress=False)
            seconds = time.perf_counter() - began
            if len(cache) != len(self.paths) or cache.failed or cache.summary.cache_reused:
                raise BenchmarkError(f"first pass did not build all images: {cache.summary}")
            self.last_root = root
            return len(self.paths) / seconds

        return measure

    def cache_hit(self, workers: int) -> Callable[[], float]:
        from medbench.preprocessing import build_cache

        def measure() -> float:
            assert self.last_root is not None, "a first pass runs before each cache hit"
            began = time.perf_counter()
            cache = build_cache(self.paths, self.params, self.last_root, workers=workers, progress=False)
            seconds = time.perf_counter() - began
            if not cache.summary.cache_reused:
                raise BenchmarkError(f"second run rebuilt the cache: {cache.summary}")
            return len(self.paths) / seconds

        return measure

    def clean(self) -> None:
        for root in self.roots:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    images = select_images(args, args.count)
    paths = [str(path) for path in images]
    workers = args.workers
    print_header(
        "preprocessing: images per second",
        {
            "images": f"{len(paths)} files under {os.path.commonpath([str(path.parent) for path in images])}",
            "output": f"1-channel uint8 {args.image_size} px, area interpolation",
            "cores": cpu_count(),
            "workers": f"N = {workers}",
            "versions": f"{python_versions(tensorflow=False)}, opencv {cv2.__version__}",
            "repeats": f"{args.repeats}, interleaved",
        },
    )
    scratch = args.work_dir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    builds = MedbenchBuilds(paths, args.image_size, scratch)
    contenders: dict[str, Callable[[], float]] = {
        f"medbench first pass, {workers} workers": builds.first_pass(workers),
        "medbench second run (cache hit)": builds.cache_hit(workers),
        f"bare OpenCV, {workers} threads": opencv_contender(paths, args.image_size, workers),
    }
    if not args.skip_single:
        contenders["bare OpenCV, 1 thread"] = opencv_contender(paths, args.image_size, 1)
        contenders["medbench first pass, 1 worker"] = builds.first_pass(1)
    try:
        results = interleave(contenders, args.repeats)
    finally:
        builds.clean()

    summaries = {name: Summary(name, values) for name, values in results.items()}
    print("\n-- figures (median over repeats) --")
    for summary in summaries.values():
        print(summary.line())
    first, hit = summaries[f"medbench first pass, {workers} workers"], summaries["medbench second run (cache hit)"]
    print("\n-- ratios (ratio of medians) --")
    print(
        ratio_line(
            "first pass / OpenCV (N workers)",
            first,
            summaries[f"bare OpenCV, {workers} threads"],
            FIRST_PASS_GOAL,
            per_repeat=True,
        )
    )
    if not args.skip_single:
        single = summaries["medbench first pass, 1 worker"]
        print(
            ratio_line(
                "first pass / OpenCV (1 worker)", single, summaries["bare OpenCV, 1 thread"], None, per_repeat=True
            )
        )
    print(ratio_line("cache hit / first pass (speed-up)", hit, first, CACHE_HIT_GOAL, per_repeat=True))
    return 0


if __name__ == "__main__":
    run_script(main, "preprocessing.py")
