"""GPU: is the input ever the bottleneck? medbench's `fit` from its cache ÷ the same model fed on the device.

For each model (DenseNet121, EfficientNetB0 at 224 px), precision (float32, mixed_float16), XLA (off, on)
and batch size (64, 128), two identical models are trained:

- **medbench**: `SimpleBaseArchitecture` (uint8 1-channel input, standardized in its first layer) fitted
  with `model.fit` on `training_dataset` over the preprocessing cache, as an experiment trains;
- **limit**: the same model trained step by step (`train_on_batch`) on one uint8 batch already on the
  device: no input pipeline, no host-to-device copy, the fastest it can train.

Both run one untimed warm-up epoch (tracing and XLA compilation), then `--steps` timed steps. GPU busy
time is the mean utilisation `nvidia-smi` reports while medbench's epoch runs (sampled every 0.1 s).
Goal: medbench ≥ 0.9 of the limit, i.e. the input is never what the GPU waits for.

    python benchmarks/gpu.py                    # on a machine with an NVIDIA GPU: one table
    python benchmarks/gpu.py --quick            # CPU, tiny: checks the script runs (no figures worth quoting)
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import subprocess
import threading
import time

import numpy as np
from common import (
    add_common_arguments,
    cached_pipeline_inputs,
    print_header,
    python_versions,
    run_script,
    select_images,
)

LIMIT_GOAL = 0.9
MODELS = ("2D.DenseNet121", "2D.EfficientNetB0")
BATCHES = (64, 128)
PRECISIONS = ("float32", "mixed_float16")
N_CLASSES = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, default_repeats=1)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="registry keys (default %(default)s)")
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES), help="batch sizes")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), help="Keras dtype policies")
    parser.add_argument("--xla", nargs="+", choices=("off", "on"), default=["off", "on"], help="jit_compile settings")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per configuration and contender")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.batches, args.precisions, args.xla = ["2D.SmallCNN"], [4], ["float32"], ["off"]
        args.image_size, args.steps = 32, 2
    args.batch_size = max(args.batches)
    return args


class GpuBusy:
    """Mean GPU utilisation (%) reported by nvidia-smi while the block runs; None without nvidia-smi."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuBusy:
        if shutil.which("nvidia-smi"):
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            result = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0 and result.stdout.strip():
                self.samples.append(float(result.stdout.split()[0]))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.samples) if self.samples else None


def build(key: str, size: int, precision: str, xla: bool) -> object:
    import keras

    from medbench.architectures.base import SimpleBaseArchitecture

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        model = SimpleBaseArchitecture(key, N_CLASSES, input_shape=(size, size, 1))
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy", jit_compile=xla)
    finally:
        keras.config.set_dtype_policy(previous)
    return model


def measure(args: argparse.Namespace, images: list, key: str, batch: int, precision: str, xla: bool) -> dict:
    """Images/s of medbench's fit and of the on-device limit for one configuration, and the GPU busy share."""
    import keras
    import tensorflow as tf

    from medbench.pipeline.dataset import training_dataset

    cache, rows, config = cached_pipeline_inputs(images, argparse.Namespace(**{**vars(args), "batch_size": batch}), ())
    rows = rows[: (len(rows) // batch) * batch]
    targets = np.zeros((len(rows), N_CLASSES), dtype=np.float32)
    steps_per_epoch = len(rows) // batch

    model = build(key, args.image_size, precision, xla)
    epochs = itertools.count()

    def epoch(steps: int) -> float:
        first = next(epochs)
        data = training_dataset(
            cache, rows, targets, config, first_epoch=first, epochs=first + 1 + steps // steps_per_epoch
        )
        began = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        return time.perf_counter() - began

    epoch(min(steps_per_epoch, args.steps))  # tracing / compilation
    with GpuBusy() as busy:
        seconds = epoch(args.steps)
    ours = args.steps * batch / seconds

    limit_model = build(key, args.image_size, precision, xla)
    device = "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"
    with tf.device(device):
        x = tf.constant(cache.images(rows[:batch]))
        y = tf.constant(targets[:batch])
    limit_model.train_on_batch(x, y)
    keras.ops.convert_to_numpy(limit_model.train_on_batch(x, y, return_dict=False))
    began = time.perf_counter()
    for _ in range(args.steps):
        loss = limit_model.train_on_batch(x, y, return_dict=False)
    keras.ops.convert_to_numpy(loss)
    limit = args.steps * batch / (time.perf_counter() - began)
    return {"medbench": ours, "limit": limit, "ratio": ours / limit, "gpu_busy": busy.mean}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    count = max(args.batches) * max(4, args.steps // 4)
    images = select_images(args, count)
    print_header(
        "GPU: medbench fit from the cache / the same model on one batch already on the device (images/s)",
        {
            "device": ", ".join(device.name for device in gpus) or "CPU only (no figures worth quoting)",
            "images": f"{count} files, {args.image_size} px, cached as 1-channel uint8",
            "timed": f"{args.steps} steps per contender after one warm-up epoch",
            "versions": python_versions(),
        },
    )
    rows = []
    for key, precision, xla, batch in itertools.product(args.models, args.precisions, args.xla, args.batches):
        result = measure(args, images, key, batch, precision, xla == "on")
        rows.append((key, precision, xla, batch, result))
        print(f"  {key} {precision} xla={xla} batch={batch}: {result}", flush=True)
    print("\n-- figures --")
    print(
        f"{'model':<18} {'precision':<14} {'xla':<4} {'batch':>5} {'medbench':>10} {'limit':>10} {'ratio':>6} "
        f"{'GPU busy':>9}  goal >= {LIMIT_GOAL:g}"
    )
    for key, precision, xla, batch, result in rows:
        busy = "n/a" if result["gpu_busy"] is None else f"{result['gpu_busy']:.0f} %"
        verdict = "MET" if result["ratio"] >= LIMIT_GOAL else "NOT MET"
        print(
            f"{key:<18} {precision:<14} {xla:<4} {batch:>5} {result['medbench']:>10,.1f} {result['limit']:>10,.1f} "
            f"{result['ratio']:>6.2f} {busy:>9}  {verdict}"
        )
    return 0


if __name__ == "__main__":
    run_script(main, "gpu.py")
