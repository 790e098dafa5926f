"""Patient bootstrap of per-class AUROC: medbench's vectorised `bootstrap_auroc` vs a loop over scikit-learn.

The problem is the issue's: 22,000 images x 14 classes (3 images per patient, 5 % of labels masked),
patients resampled with replacement. Both sides draw patients the same way; the loop calls
`sklearn.metrics.roc_auc_score` once per class and resample, which is what a straightforward
implementation does. The figure is resamples per second (all 14 classes each); medbench's full run of
1,000 resamples is timed whole, the loop on `--loop-resamples` of them.

    python benchmarks/bootstrap.py
    python benchmarks/bootstrap.py --quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import add_common_arguments, interleave, print_header, python_versions, report_pair, run_script


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, default_repeats=3)
    parser.add_argument("--n-images", type=int, default=22_000, help="images (default 22,000)")
    parser.add_argument("--classes", type=int, default=14)
    parser.add_argument("--resamples", type=int, default=1000, help="resamples of medbench's bootstrap")
    parser.add_argument("--loop-resamples", type=int, default=20, help="resamples of the scikit-learn loop")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_images, args.classes, args.resamples, args.loop_resamples, args.repeats = 600, 3, 50, 3, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from sklearn.metrics import roc_auc_score

    from medbench.metrics.bootstrap import bootstrap_auroc

    rng = np.random.default_rng(args.seed)
    n, c = args.n_images, args.classes
    targets = (rng.random((n, c)) < 0.3).astype(float)
    targets[rng.random((n, c)) < 0.05] = np.nan
    scores = np.clip(targets * 0.2 + rng.random((n, c)), 0, 1.2) / 1.2
    patients = np.arange(n) // 3
    patient_ids = [f"P{number}" for number in patients]
    classes = [f"c{j}" for j in range(c)]
    rows_of = [np.flatnonzero(patients == number) for number in range(patients.max() + 1)]
    seconds: dict[str, float] = {}

    def medbench() -> float:
        began = time.perf_counter()
        bootstrap_auroc(targets, scores, classes, patient_ids=patient_ids, n_resamples=args.resamples)
        seconds["medbench"] = time.perf_counter() - began
        return args.resamples / seconds["medbench"]

    def sklearn_loop() -> float:
        draw = np.random.default_rng(args.seed)
        began = time.perf_counter()
        for _ in range(args.loop_resamples):
            rows = np.concatenate([rows_of[k] for k in draw.integers(0, len(rows_of), len(rows_of))])
            for column in range(c):
                labels, values = targets[rows, column], scores[rows, column]
                known = ~np.isnan(labels)
                roc_auc_score(labels[known], values[known])
        return args.loop_resamples / (time.perf_counter() - began)

    print_header(
        "patient bootstrap of per-class AUROC, resamples/s (all classes per resample)",
        {
            "problem": f"{n:,} images x {c} classes, {len(rows_of):,} patients, 5 % of labels masked",
            "resamples": f"medbench {args.resamples} per repeat, scikit-learn loop {args.loop_resamples}",
            "versions": python_versions(tensorflow=False),
            "repeats": f"{args.repeats}, interleaved",
        },
    )
    results = interleave(
        {"medbench bootstrap_auroc": medbench, "loop over sklearn roc_auc_score": sklearn_loop}, args.repeats
    )
    report_pair(
        results,
        "medbench / scikit-learn loop",
        "medbench bootstrap_auroc",
        "loop over sklearn roc_auc_score",
        None,
        unit="res/s",
    )
    print(f"\nmedbench, {args.resamples} resamples of the whole problem: {seconds['medbench']:.2f} s (last repeat)")
    return 0


if __name__ == "__main__":
    run_script(main, "bootstrap.py")
