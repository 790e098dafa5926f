"""End-to-end `fit`: images/s training on medbench's cached pipeline vs on tensors already in memory.

A small CNN (`2D.SmallCNN`, 128 px, 5 sigmoid outputs, Adam, BCE; it takes 1-channel uint8 images and
standardizes them itself) is where the input pipeline's cost shows on a CPU: the model is cheap, and
tf.data shares the same cores with training.
Two identical models (same initial weights) are fitted, each for one untimed epoch first (tracing),
then alternately (pipeline, in-memory, pipeline, ...) for --epochs epochs of --steps steps per repeat,
timed epoch by epoch (the `fit` call's own set-up and tear-down, paid once per run, left out):

- pipeline: `training_dataset` over the preprocessing cache (1-channel uint8 128 px batches, shuffled
  per epoch, prefetched);
- in memory: `tf.data.Dataset.from_tensor_slices` of the same uint8 images (n, 128, 128, 1), batched,
  repeated and prefetched (not shuffled: the cheapest input there is).

A second section fits the real model side by side with AUCMEDI: `2D.DenseNet121` at 224 px, batch 16,
random weights, the Dense(512) + Dropout head, Adam 1e-4 and BCE on both sides: medbench's
`SimpleBaseArchitecture` on its cached uint8 pipeline against AUCMEDI 0.11's
`NeuralNetwork(architecture="2D.DenseNet121").train` on its DataGenerator (in the AUCMEDI virtualenv),
the same images. Steady epochs are timed; the first epoch of each (graph tracing) is reported apart.

    python benchmarks/fit.py
    python benchmarks/fit.py --augment affine    # with the pipeline's affine augmentation on
    python benchmarks/fit.py --no-densenet       # the SmallCNN section only
    python benchmarks/fit.py --quick             # seconds: SmallCNN only (add --densenet to check that part)
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import (
    AucmediWorker,
    BenchmarkError,
    Summary,
    add_aucmedi_arguments,
    add_common_arguments,
    cached_pipeline_inputs,
    cpu_count,
    epoch_timer,
    interleave,
    print_header,
    python_versions,
    ratio_line,
    report_pair,
    run_script,
    select_images,
)

FIT_RATIO_GOAL = 0.95
DENSENET_RATIO_GOAL = 1.0
N_CLASSES = 5
ARCHITECTURE = "2D.SmallCNN"
DENSENET = "2D.DenseNet121"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch (one pass over the images)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per repeat")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--augment", choices=("none", "affine"), default="none", help="pipeline augmentation")
    add_aucmedi_arguments(parser)
    densenet = parser.add_mutually_exclusive_group()
    densenet.add_argument("--no-densenet", action="store_true", help="leave out the DenseNet121 section")
    densenet.add_argument("--densenet", action="store_true", help="run the DenseNet121 section even with --quick")
    parser.add_argument("--densenet-steps", type=int, default=8, help="steps per DenseNet121 epoch (batch 16)")
    parser.add_argument("--densenet-repeats", type=int, default=3, help="timed DenseNet121 epochs per contender")
    args = parser.parse_args(argv)
    args.densenet_batch, args.densenet_size = 16, 224
    if args.quick:
        args.batch_size, args.steps, args.epochs, args.image_size, args.repeats = 8, 2, 1, 32, 1
        args.densenet_batch, args.densenet_size, args.densenet_steps, args.densenet_repeats = 2, 32, 1, 1
        args.no_densenet = args.no_densenet or not args.densenet
    return args


def build_model(image_size: int, seed: int) -> object:
    import keras

    from medbench.architectures.base import SimpleBaseArchitecture

    keras.utils.set_random_seed(seed)
    model = SimpleBaseArchitecture(ARCHITECTURE, N_CLASSES, input_shape=(image_size, image_size, 1))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model


def fit_contender(model: object, dataset_for: Callable[[int], object], args: argparse.Namespace) -> Callable:
    """Fit once untimed (tracing), then a function timing `args.epochs` more epochs, in images/s.

    The time is the sum of the epochs' durations (Keras `on_epoch_begin` to `on_epoch_end`, which
    includes creating the data iterator in the first epoch); the set-up and tear-down of the `fit` call
    itself, paid once per training run, are left out (they varied by whole seconds on a busy machine,
    for both contenders alike).
    """
    model.fit(dataset_for(0), epochs=1, steps_per_epoch=args.steps, shuffle=False, verbose=0)
    first = iter(range(1, 1_000_000, args.epochs))

    def measure() -> float:
        dataset = dataset_for(next(first))
        timer = epoch_timer()
        model.fit(dataset, epochs=args.epochs, steps_per_epoch=args.steps, shuffle=False, verbose=0, callbacks=[timer])
        if len(timer.durations) != args.epochs:
            raise BenchmarkError(f"fit ran {len(timer.durations)} of {args.epochs} epochs")
        return args.epochs * args.steps * args.batch_size / sum(timer.durations)

    return measure


def densenet_section(args: argparse.Namespace) -> None:
    """DenseNet121 at 224 px, batch 16: medbench's fit from its cache vs AUCMEDI's NeuralNetwork.train."""
    import argparse as _argparse

    import keras

    from medbench.architectures.base import SimpleBaseArchitecture
    from medbench.pipeline.dataset import training_dataset

    count = args.densenet_steps * args.densenet_batch
    images = select_images(args, count)
    size, batch, steps = args.densenet_size, args.densenet_batch, args.densenet_steps
    medbench_args = _argparse.Namespace(**{**vars(args), "image_size": size, "batch_size": batch})
    cache, rows, config = cached_pipeline_inputs(images, medbench_args, ())
    targets = np.random.default_rng(args.seed).integers(0, 2, (count, 2)).astype(np.float32)
    keras.utils.set_random_seed(args.seed)
    model = SimpleBaseArchitecture(DENSENET, 2, input_shape=(size, size, 1), fcl=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy")
    epochs = iter(range(0, 1_000_000))
    first: dict[str, float] = {}

    def medbench_epoch() -> float:
        number = next(epochs)
        dataset = training_dataset(cache, rows, targets, config, first_epoch=number, epochs=number + 1)
        timer = epoch_timer()
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=[timer])
        return count / timer.durations[0]

    print_header(
        "DenseNet121 fit side by side: images per second",
        {
            "images": f"{count} files under {os.path.commonpath([str(Path(path).parent) for path in images])}",
            "model": f"{DENSENET}, {size} px, random weights, Dense(512)+Dropout head, 2 sigmoid outputs, Adam 1e-4",
            "medbench": "SimpleBaseArchitecture on the cached uint8 pipeline (1 channel, standardized in the model)",
            "AUCMEDI": "NeuralNetwork(architecture='2D.DenseNet121').train on its DataGenerator (torch, 3 channels)",
            "per repeat": f"one epoch of {steps} steps x batch {batch}",
            "repeats": f"{args.densenet_repeats}, interleaved, after one first (tracing) epoch each",
        },
    )
    began = time.perf_counter()
    medbench_epoch()
    first["medbench"] = time.perf_counter() - began
    contenders: dict[str, Callable[[], float]] = {"medbench DenseNet121 fit": medbench_epoch}
    worker = None
    try:
        if not args.no_aucmedi:
            worker = AucmediWorker(
                args.aucmedi_python,
                {
                    "paths": [str(path) for path in images],
                    "batch_size": batch,
                    "image_size": size,
                    "standardize": "torch",
                    "augmentation": "none",
                    "workers": cpu_count(),
                    "architecture": DENSENET,
                    "n_labels": 2,
                    "name": "AUCMEDI NeuralNetwork.train",
                },
                args.work_dir / "scratch",
            )
            info = worker.wait_ready()
            print(f"   {info.pop('name')}: {info}")
            reply = worker.fit(steps)
            first["AUCMEDI"] = reply["first_epoch_seconds"] + reply["seconds"]

            def aucmedi_epoch() -> float:
                result = worker.fit(steps)
                return result["images"] / result["seconds"]

            contenders["AUCMEDI NeuralNetwork.train"] = aucmedi_epoch
        results = interleave(contenders, args.densenet_repeats)
    finally:
        if worker is not None:
            worker.close()
    print("\n-- first epochs (graph tracing included), seconds --")
    for name, seconds in first.items():
        print(f"{name:<52} {seconds:>10.1f} s")
    summaries = {name: Summary(name, values) for name, values in results.items()}
    print("\n-- steady epochs (median over repeats) --")
    for summary in summaries.values():
        print(summary.line())
    if "AUCMEDI NeuralNetwork.train" in summaries:
        print("\n-- ratio (ratio of medians) --")
        print(
            ratio_line(
                "medbench / AUCMEDI (DenseNet121)",
                summaries["medbench DenseNet121 fit"],
                summaries["AUCMEDI NeuralNetwork.train"],
                DENSENET_RATIO_GOAL,
                per_repeat=True,
            )
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    count = args.steps * args.batch_size
    images = select_images(args, count)

    import tensorflow as tf

    from medbench.pipeline.dataset import training_dataset

    augmentations = () if args.augment == "none" else (args.augment,)
    cache, rows, config = cached_pipeline_inputs(images, args, augmentations)
    targets = np.random.default_rng(args.seed).integers(0, 2, (count, N_CLASSES)).astype(np.float32)
    in_memory = cache.images(rows)
    if in_memory.shape != (count, args.image_size, args.image_size, 1):
        raise BenchmarkError(f"cached images have shape {in_memory.shape}")
    memory_dataset = (
        tf.data.Dataset.from_tensor_slices((in_memory, targets))
        .batch(args.batch_size)
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )

    def pipeline_dataset(first_epoch: int) -> object:
        epochs = first_epoch + (args.epochs if first_epoch else 1)
        return training_dataset(cache, rows, targets, config, first_epoch=first_epoch, epochs=epochs)

    print_header(
        "end-to-end fit: images per second",
        {
            "images": f"{count} files under {os.path.commonpath([str(Path(path).parent) for path in images])}",
            "model": f"{ARCHITECTURE}, {args.image_size} px uint8 x 1 (standardized in the model), {N_CLASSES} outputs",
            "per repeat": f"{args.epochs} epochs x {args.steps} steps x batch {args.batch_size}",
            "pipeline": f"uint8 batches, augmentations={list(augmentations) or 'none'}",
            "cores": cpu_count(),
            "versions": python_versions(),
            "repeats": f"{args.repeats}, interleaved (after one untimed tracing epoch each)",
        },
    )
    pipeline_model = build_model(args.image_size, args.seed)
    memory_model = build_model(args.image_size, args.seed)
    contenders = {
        "fit on medbench pipeline": fit_contender(pipeline_model, pipeline_dataset, args),
        "fit on tensors in memory": fit_contender(memory_model, lambda _: memory_dataset, args),
    }
    results = interleave(contenders, args.repeats)
    report_pair(results, "pipeline / in memory", "fit on medbench pipeline", "fit on tensors in memory", FIT_RATIO_GOAL)
    if not args.no_densenet:
        densenet_section(args)
    return 0


if __name__ == "__main__":
    run_script(main, "fit.py")
