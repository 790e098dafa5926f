"""Where the affine augmentation runs: on uint8 batches on the host (OpenCV) or inside the model's graph (TensorFlow).

Both warp the same batches with the same matrices (rotation ±15°, translation ±5 %, scale 0.95–1.05,
bilinear, zero fill; they agree to one grey level, `tests/test_pipeline.py`):

- **host**: `warp_affine`, what medbench's pipeline does: OpenCV's `warpAffine` on each uint8 image;
- **in the graph**: `ImageProjectiveTransformV3` on the batch cast to float32, inside a `tf.function`,
  as a training-only layer at the start of the model would run it (on this CPU, on the same cores).

The faster one on this CPU is what the pipeline keeps; on a GPU the in-graph warp is the natural one.

    python benchmarks/augmentation.py
    python benchmarks/augmentation.py --quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import add_common_arguments, interleave, print_header, python_versions, report_pair, run_script


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batches", type=int, default=20, help="batches warped per repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_size, args.image_size, args.batches, args.repeats = 4, 32, 2, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import tensorflow as tf

    from medbench.pipeline.augmentation import affine_matrices, warp_affine

    rng = np.random.default_rng(args.seed)
    shape = (args.batch_size, args.image_size, args.image_size, 1)
    batches = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(args.batches)]
    matrices = [
        affine_matrices(
            tf.random.stateless_uniform((args.batch_size, 4), seed=[args.seed, i], minval=-1.0, maxval=1.0),
            args.image_size,
        ).numpy()
        for i in range(args.batches)
    ]
    size = tf.constant([args.image_size, args.image_size])

    @tf.function
    def in_graph(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=tf.cast(images, tf.float32),
            transforms=transforms,
            output_shape=size,
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )

    graph_inputs = [(tf.constant(batch), tf.constant(matrix)) for batch, matrix in zip(batches, matrices)]
    in_graph(*graph_inputs[0]).numpy()  # tracing

    def host() -> float:
        began = time.perf_counter()
        for batch, matrix in zip(batches, matrices):
            warp_affine(batch, matrix)
        return args.batches * args.batch_size / (time.perf_counter() - began)

    def graph() -> float:
        began = time.perf_counter()
        for images, transforms in graph_inputs:
            in_graph(images, transforms).numpy()
        return args.batches * args.batch_size / (time.perf_counter() - began)

    print_header(
        "affine augmentation: uint8 on the host (OpenCV) vs float32 in the graph (TensorFlow), images/s",
        {
            "batches": f"{args.batches} x {args.batch_size} at {args.image_size} px, 1 channel",
            "versions": python_versions(),
            "repeats": f"{args.repeats}, interleaved",
        },
    )
    results = interleave({"host, OpenCV on uint8": host, "in the graph, TensorFlow": graph}, args.repeats)
    report_pair(results, "host / in the graph", "host, OpenCV on uint8", "in the graph, TensorFlow", None)
    return 0


if __name__ == "__main__":
    run_script(main, "augmentation.py")
