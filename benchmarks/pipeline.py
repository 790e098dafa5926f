"""Input pipelines side by side: batches ready for the model's first layer, and an epoch of `fit` fed by each.

medbench's pipeline hands the model uint8 batches (1 channel from its preprocessing cache, built once
beforehand, untimed): its models standardize and expand to RGB in their first layer, on the device.
AUCMEDI's DataGenerator hands over float32 (224, 224, 3) batches it has standardized itself ("torch"
by default), decoding and resizing the files for every batch as it does by default; a second AUCMEDI
row uses its own `prepare_images=True` disk cache. Both sides get the same image files, batch size
and number of batches, on the same cores. Repeats are interleaved (medbench, AUCMEDI, medbench, ...).

- **batches**: each repeat times one pass over all images: a fresh medbench iterator over a new epoch,
  from its first batch to its last (its prefetch buffer starts empty; the start-up until the first
  batch, paid once per training run since `fit` keeps one iterator over all epochs, is reported
  apart), or consecutive `__getitem__` calls of AUCMEDI's generator after a warm-up batch; every batch
  is pulled into NumPy and a checksum taken over
  every 8th row and column (alike on both sides: the consumer proves each batch is there without
  re-reading all of it, which no model's first layer does on the host either).
- **fit**: `fit` of a model whose compute is tiny (a 1x1 convolution, pooling and a dense layer at 224
  px), so that what an epoch costs is feeding it: medbench's twin takes uint8 and begins with
  `Standardization`, AUCMEDI's takes its float batches. Each repeat is one `fit` call of two epochs, and
  the second is timed (the data iterator is running by then, as in a real run); one untimed call first
  (tracing). A third row fits the same tiny model on its uint8 batches already in memory: the ceiling.

    python benchmarks/pipeline.py                      # demo JPEGs (320x390), 5 repeats
    python benchmarks/pipeline.py --source nih         # the real NIH PNGs (512 px)
    python benchmarks/pipeline.py --quick --no-aucmedi # seconds: checks the script runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import (
    DEFAULT_NIH_DIR,
    AucmediWorker,
    BenchmarkError,
    Summary,
    add_aucmedi_arguments,
    add_common_arguments,
    cached_pipeline_inputs,
    cpu_count,
    epoch_timer,
    find_images,
    interleave,
    print_header,
    python_versions,
    ratio_line,
    run_script,
    select_images,
)

SPEEDUP_GOAL = 10.0
PREPARED_SPEEDUP_GOAL = 4.0
AFFINE_SPEEDUP_GOAL = 4.0
FIT_SPEEDUP_GOAL = 3.0
TARGET_COLUMNS = 2
DEFAULT_BATCHES = 20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    add_aucmedi_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--batches",
        type=int,
        default=None,
        help=f"batches per repeat, one pass over the images (default {DEFAULT_BATCHES}, fewer if fewer images)",
    )
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--standardize", default="torch", help="mode on both sides (torch, tf or caffe)")
    parser.add_argument(
        "--workers", type=int, default=cpu_count(), help="AUCMEDI DataGenerator threads (default: the CPU count)"
    )
    parser.add_argument(
        "--augment",
        choices=("none", "affine", "both"),
        default="both",
        help="measure without augmentation, with affine augmentation, or both (default)",
    )
    parser.add_argument(
        "--skip-prepared", action="store_true", help="leave out AUCMEDI with prepare_images=True (its disk cache)"
    )
    parser.add_argument("--no-fit", action="store_true", help="leave out the end-to-end fit rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_size, args.batches, args.image_size, args.repeats = 8, 2, 64, 1
    return args


STARTUPS: list[float] = []
"""Seconds from creating a medbench training iterator to its first batch (reported apart, not in the rates)."""


def medbench_contender(images: list[Path], args: argparse.Namespace, augmentations: tuple[str, ...]) -> Callable:
    """A function timing one epoch of medbench's training pipeline from its first batch on, in images/s.

    Each repeat makes a fresh iterator over a new epoch (its prefetch buffer starts empty, so nothing
    produced while the other contenders ran is counted); the time runs from its first batch to its
    last, and the start-up until that first batch (paid once per training run, since `fit` keeps one
    iterator over all epochs) goes into `STARTUPS`.
    """
    from medbench.pipeline.dataset import training_dataset

    cache, rows, config = cached_pipeline_inputs(images, args, augmentations)
    targets = np.zeros((len(rows), TARGET_COLUMNS), dtype=np.float32)
    epoch = iter(range(0, 1_000_000))

    def one_epoch() -> tuple[int, float, float]:
        """Images after the first batch, seconds from the first batch to the last, and the start-up seconds."""
        number = next(epoch)
        began = time.perf_counter()
        iterator = iter(training_dataset(cache, rows, targets, config, first_epoch=number, epochs=number + 1))
        count, checksum, started = 0, 0.0, 0.0
        for index in range(args.batches):
            x, y = next(iterator)
            array = x.numpy()
            if array.dtype != np.uint8 or array.shape[1:] != (args.image_size, args.image_size, 1):
                raise BenchmarkError(f"medbench produced {array.dtype} batches of shape {array.shape}")
            checksum += float(array[:, ::8, ::8].sum()) + float(y.numpy().sum())
            if index == 0:
                started = time.perf_counter()
            else:
                count += array.shape[0]
        finished = time.perf_counter()
        del iterator
        return count, finished - started, started - began

    one_epoch()  # graph tracing and the cache's first touch, untimed

    def measure() -> float:
        count, seconds, startup = one_epoch()
        STARTUPS.append(startup)
        return count / seconds

    return measure


def second_epoch_rate(model: object, data: object, args: argparse.Namespace) -> float:
    """Images/s of the second of two `fit` epochs in one call: the data iterator is already running then."""
    timer = epoch_timer()
    model.fit(data, epochs=2, steps_per_epoch=args.batches, verbose=0, shuffle=False, callbacks=[timer])
    return args.batches * args.batch_size / timer.durations[-1]


def tiny_model(image_size: int, standardize: str) -> object:
    """medbench's twin of the AUCMEDI worker's tiny model: uint8 in, standardized in its first layer."""
    import keras

    from medbench.architectures.standardization import Standardization

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((image_size, image_size, 1), dtype="uint8"),
            Standardization(standardize),
            keras.layers.Conv2D(4, 1),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def medbench_fit_contender(images: list[Path], args: argparse.Namespace) -> Callable:
    """A function timing one epoch of `fit` of the tiny model on medbench's pipeline, in images/s."""

    from medbench.pipeline.dataset import training_dataset

    cache, rows, config = cached_pipeline_inputs(images, args, ())
    targets = np.zeros((len(rows), TARGET_COLUMNS), dtype=np.float32)
    model = tiny_model(args.image_size, args.standardize)
    # One dataset over many epochs, as an experiment's fit gets it.
    dataset = training_dataset(cache, rows, targets, config, first_epoch=0, epochs=10_000)
    second_epoch_rate(model, dataset, args)  # tracing
    return lambda: second_epoch_rate(model, dataset, args)


def ceiling_fit_contender(images: list[Path], args: argparse.Namespace) -> Callable:
    """The tiny model fitted on its uint8 batches already in memory: what `fit` costs with no input pipeline."""
    import tensorflow as tf

    cache, rows, _ = cached_pipeline_inputs(images, args, ())
    dataset = (
        tf.data.Dataset.from_tensor_slices((cache.images(rows), np.zeros((len(rows), TARGET_COLUMNS), np.float32)))
        .batch(args.batch_size)
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    model = tiny_model(args.image_size, args.standardize)
    second_epoch_rate(model, dataset, args)  # tracing
    return lambda: second_epoch_rate(model, dataset, args)


def aucmedi_fit_contender(worker: AucmediWorker, steps: int) -> Callable:
    def measure() -> float:
        result = worker.fit(steps)
        return result["images"] / result["seconds"]

    return measure


def aucmedi_contender(worker: AucmediWorker, batches: int) -> Callable:
    def measure() -> float:
        result = worker.run(batches)
        return result["images"] / result["seconds"]

    return measure


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.batches is None:
        available = DEFAULT_BATCHES * args.batch_size if args.source == "demo" and args.images is None else None
        if available is None:
            available = len(find_images(args.images or DEFAULT_NIH_DIR))
        args.batches = max(1, min(DEFAULT_BATCHES, available // args.batch_size))
    count = args.batches * args.batch_size
    images = select_images(args, count)
    scenarios = ("none", "affine") if args.augment == "both" else (args.augment,)
    print_header(
        "input pipelines: batches ready for the model's first layer, and fit fed by each (images/s)",
        {
            "images": f"{count} files under {os.path.commonpath([str(path.parent) for path in images])}",
            "batches": f"{args.batches} x {args.batch_size} at {args.image_size} px, standardize={args.standardize}",
            "cores": cpu_count(),
            "medbench": f"cache -> tf.data -> uint8 (batch, {args.image_size}, {args.image_size}, 1); "
            f"the model standardizes ({python_versions()})",
            "AUCMEDI": f"DataGenerator -> float32 (batch, {args.image_size}, {args.image_size}, 3), standardized",
            "repeats": f"{args.repeats}, interleaved",
        },
    )
    contenders: dict[str, Callable[[], float]] = {}
    workers: list[AucmediWorker] = []
    try:
        for scenario in scenarios:
            augmentations = () if scenario == "none" else ("affine",)
            contenders[f"medbench {scenario}"] = medbench_contender(images, args, augmentations)
            if args.no_aucmedi:
                continue
            variants = [scenario] if scenario == "none" else ["affine", "builtin"]
            for variant in variants:
                for prepared in (False, True) if scenario == "none" and not args.skip_prepared else (False,):
                    config = {
                        "paths": [str(path) for path in images],
                        "batch_size": args.batch_size,
                        "image_size": args.image_size,
                        "standardize": args.standardize,
                        "augmentation": variant,
                        "workers": args.workers,
                        "prepare_images": prepared,
                        "name": f"AUCMEDI {variant}" + (" prepare_images" if prepared else ""),
                    }
                    worker = AucmediWorker(args.aucmedi_python, config, args.work_dir / "scratch")
                    workers.append(worker)
                    contenders[config["name"]] = aucmedi_contender(worker, args.batches)
        if not args.no_fit:
            contenders["medbench fit"] = medbench_fit_contender(images, args)
            contenders["tiny model fit on tensors in memory"] = ceiling_fit_contender(images, args)
            if not args.no_aucmedi:
                config = {
                    "paths": [str(path) for path in images],
                    "batch_size": args.batch_size,
                    "image_size": args.image_size,
                    "standardize": args.standardize,
                    "augmentation": "none",
                    "workers": args.workers,
                    "prepare_images": False,
                    "name": "AUCMEDI fit",
                }
                worker = AucmediWorker(args.aucmedi_python, config, args.work_dir / "scratch")
                workers.append(worker)
                contenders["AUCMEDI fit"] = aucmedi_fit_contender(worker, args.batches)
        for worker in workers:  # started together, so their imports and warm-ups overlap
            info = worker.wait_ready()
            print(f"   {info.pop('name')}: {info}")
        results = interleave(contenders, args.repeats)
    finally:
        for worker in workers:
            worker.close()

    summaries = {name: Summary(name, values) for name, values in results.items()}
    if STARTUPS:
        startup = statistics.median(STARTUPS)
        print(f"\n   medbench iterator start-up (to its first batch, once per training run): median {startup:.3f} s")
    print("\n-- figures (median over repeats) --")
    for summary in summaries.values():
        print(summary.line())
    if args.no_aucmedi:
        print("\n(no ratios: AUCMEDI was left out with --no-aucmedi)")
        return 0
    print("\n-- ratios (medbench / AUCMEDI, ratio of medians) --")
    pairs = [
        ("medbench none", "AUCMEDI none", SPEEDUP_GOAL),
        ("medbench none", "AUCMEDI none prepare_images", PREPARED_SPEEDUP_GOAL),
        ("medbench affine", "AUCMEDI affine", AFFINE_SPEEDUP_GOAL),
        ("medbench affine", "AUCMEDI builtin", AFFINE_SPEEDUP_GOAL),
        ("medbench fit", "AUCMEDI fit", FIT_SPEEDUP_GOAL),
        ("tiny model fit on tensors in memory", "AUCMEDI fit", None),
        ("medbench fit", "tiny model fit on tensors in memory", None),
    ]
    for ours, theirs, goal in pairs:
        if ours in summaries and theirs in summaries:
            label = f"{ours} / {theirs}"
            print(ratio_line(label, summaries[ours], summaries[theirs], goal, per_repeat=True))
    return 0


if __name__ == "__main__":
    run_script(main, "pipeline.py")
