"""The AUCMEDI side of `benchmarks/pipeline.py`, run by the interpreter of a separate AUCMEDI virtualenv.

It imports only the standard library, NumPy and AUCMEDI (never medbench), builds one AUCMEDI
`DataGenerator` from a JSON configuration, pulls one untimed warm-up batch, and then answers
commands on stdin, one JSON object per line:

    {"cmd": "run", "batches": N}   ->  time N consecutive batches, reply {"seconds": s, "images": n, "checksum": c}
    {"cmd": "fit", "steps": N}     ->  time one epoch of N steps of `fit` of the tiny model (`tiny_model`), or of
                                       `NeuralNetwork.train` when the configuration names an "architecture",
                                       fed by the generator; reply {"seconds": s, "images": n}; the first call
                                       also runs one epoch first (tracing), reported as "first_epoch_seconds"
    {"cmd": "quit"}                ->  exit

Replies are single lines on stdout starting with `REPLY_MARKER`, because AUCMEDI and TensorFlow may
print to stdout themselves. Every batch is touched (a checksum over every 8th row and column, as medbench's
side does) so that no work is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPLY_MARKER = "@@medbench-benchmark "

# The augmentation configurations, as README.md describes them.
AUGMENTATIONS = ("none", "builtin", "affine")
ROTATION_DEG = 15.0
TRANSLATION = 0.05
SCALE = (0.95, 1.05)


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(REPLY_MARKER + json.dumps(message) + "\n")
    sys.stdout.flush()


def image_augmentation(mode: str) -> Any:
    """An AUCMEDI ImageAugmentation doing geometric work only (flips, colour, noise etc. off), or None.

    "builtin": AUCMEDI's own switches rotate=True (RandomRotate90) and scale=True (RandomScale, limits
    set to 0.95-1.05), both with probability 1; AUCMEDI pads/crops back to 224 px.
    "affine": the same ImageAugmentation object whose albumentations operator is one Affine transform
    with exactly medbench's ranges (rotation +-15 deg, translation +-5 %, scale 0.95-1.05, bilinear,
    constant zero fill, probability 1), i.e. the same geometric work as medbench's `affine`.
    """
    if mode == "none":
        return None
    import albumentations
    import cv2
    from aucmedi.data_processing.augmentation import ImageAugmentation

    augmentation = ImageAugmentation(
        flip=False,
        rotate=mode == "builtin",
        brightness=False,
        contrast=False,
        saturation=False,
        hue=False,
        scale=mode == "builtin",
        crop=False,
        grid_distortion=False,
        compression=False,
        gaussian_noise=False,
        gaussian_blur=False,
        downscaling=False,
        gamma=False,
        elastic_transform=False,
    )
    if mode == "builtin":
        augmentation.aug_rotate_p = 1.0
        augmentation.aug_scale_p = 1.0
        augmentation.aug_scale_limits = (SCALE[0] - 1.0, SCALE[1] - 1.0)  # albumentations adds 1
        augmentation.build()
    else:
        augmentation.operator = albumentations.Compose(
            [
                albumentations.Affine(
                    rotate=(-ROTATION_DEG, ROTATION_DEG),
                    translate_percent=(-TRANSLATION, TRANSLATION),
                    scale=SCALE,
                    interpolation=cv2.INTER_LINEAR,
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                    p=1.0,
                )
            ]
        )
    return augmentation


def build_generator(config: dict[str, Any]) -> Any:
    """The AUCMEDI DataGenerator over the configured files (read from their folder, in the given order)."""
    import numpy as np
    from aucmedi.data_processing.data_generator import DataGenerator
    from aucmedi.data_processing.io_loader import image_loader

    paths = [Path(path) for path in config["paths"]]
    root = Path(os.path.commonpath([str(path.parent) for path in paths]))
    samples = [str(path.relative_to(root)) for path in paths]
    labels = np.zeros((len(samples), 2), dtype=np.float32)
    labels[:, 0] = 1.0
    return DataGenerator(
        samples,
        str(root),
        labels=labels,
        image_format=None,
        batch_size=int(config["batch_size"]),
        resize=(int(config["image_size"]), int(config["image_size"])),
        standardize_mode=config["standardize"],
        data_aug=image_augmentation(config["augmentation"]),
        shuffle=False,
        grayscale=False,
        workers=int(config["workers"]),
        prepare_images=bool(config.get("prepare_images", False)),
        loader=image_loader,
        seed=0,
    )


def tiny_model(image_size: int) -> Any:
    """A model whose compute is tiny (1x1 convolution + pooling), so that feeding it is what `fit` costs.

    It takes the generator's standardized float32 RGB batches; medbench's twin (benchmarks/pipeline.py)
    takes uint8 batches and standardizes them in its first layer.
    """
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((image_size, image_size, 3)),
            keras.layers.Conv2D(4, 1),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def neural_network(config: dict[str, Any]) -> Any:
    """AUCMEDI's `NeuralNetwork` for `config["architecture"]`, random weights, sigmoid outputs and BCE."""
    from aucmedi import NeuralNetwork

    return NeuralNetwork(
        n_labels=int(config["n_labels"]),
        channels=3,
        input_shape=(int(config["image_size"]), int(config["image_size"])),
        architecture=config["architecture"],
        pretrained_weights=False,
        loss="binary_crossentropy",
        metrics=[],
        activation_output="sigmoid",
        fcl_dropout=True,
        learning_rate=1e-4,
        verbose=0,
    )


def train_epoch(network: Any, generator: Any, steps: int) -> float:
    """Seconds of one epoch of `NeuralNetwork.train` with `steps` iterations (Keras' epoch begin to end)."""
    timer = _timer()
    network.train(generator, epochs=1, iterations=steps, callbacks=[timer])
    return timer.seconds


def _timer() -> Any:
    import keras

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds = time.perf_counter() - self.began

    return Timer()


def fit_epoch(model: Any, generator: Any, steps: int) -> float:
    """Seconds of the second of two `fit` epochs of `steps` steps in one call (its data workers are running)."""
    timer = _timer()
    model.fit(generator, epochs=2, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return timer.seconds


def run_batches(generator: Any, start: int, batches: int) -> tuple[float, int, float]:
    """Seconds to produce `batches` batches from batch index `start`, images produced, and their sum."""
    images = 0
    checksum = 0.0
    began = time.perf_counter()
    for index in range(start, start + batches):
        x, y = generator[index]
        checksum += float(x[:, ::8, ::8].sum()) + float(y.sum())
        images += int(x.shape[0])
    return time.perf_counter() - began, images, checksum


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="JSON file: paths, batch_size, image_size, standardize, ...")
    args = parser.parse_args(argv)
    config = json.loads(Path(args.config).read_text())
    if config["augmentation"] not in AUGMENTATIONS:
        raise SystemExit(f"augmentation {config['augmentation']!r}: expected one of {AUGMENTATIONS}")

    from importlib.metadata import version

    import numpy as np

    began = time.perf_counter()
    generator = build_generator(config)
    prepare_seconds = time.perf_counter() - began
    first = run_batches(generator, 0, 1)
    x, _ = generator[0]
    reply(
        {
            "ready": True,
            "name": config.get("name", "AUCMEDI"),
            "aucmedi": version("aucmedi"),
            "albumentations": version("albumentations"),
            "tensorflow": version("tensorflow"),
            "numpy": np.__version__,
            "batch_shape": list(x.shape),
            "dtype": str(x.dtype),
            "batches_per_epoch": len(generator),
            "prepare_seconds": prepare_seconds,
            "warmup_seconds": first[0],
        }
    )
    cursor = 1
    model = None
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        if command["cmd"] == "fit":
            steps = int(command["steps"])
            first = None
            if model is None:
                if config.get("architecture"):
                    model = neural_network(config)
                    first = train_epoch(model, generator, steps)
                else:
                    model = tiny_model(int(config["image_size"]))
                    first = fit_epoch(model, generator, steps)
            epoch = train_epoch if config.get("architecture") else fit_epoch
            seconds = epoch(model, generator, steps)
            reply({"seconds": seconds, "images": steps * int(config["batch_size"]), "first_epoch_seconds": first})
        elif command["cmd"] == "run":
            seconds, images, checksum = run_batches(generator, cursor, int(command["batches"]))
            cursor += int(command["batches"])
            reply({"seconds": seconds, "images": images, "checksum": checksum})
        else:
            reply({"error": f"unknown command {command['cmd']!r}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
