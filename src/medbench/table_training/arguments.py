"""`medbench exec --table`: the arguments of TIML's table-driven training (no TensorFlow until a table runs)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from medbench.settings import Settings


def add_table_arguments(run: argparse.ArgumentParser) -> None:
    """Add ``--table``, ``--img-dir`` and ``--out-dir`` to the `exec` parser."""
    run.add_argument(
        "--table", metavar="FILE.csv", help="TIML training table: one model per row (instead of a benchmark or --batch)"
    )
    run.add_argument("--img-dir", metavar="DIR", help="with --table: the folder of the images the tables name")
    run.add_argument(
        "--out-dir", metavar="DIR", default=".", help="with --table: where train_output-YYYYMMDD-hhmmss/ goes (.)"
    )


def run_table(args: argparse.Namespace, settings: Settings, options: Mapping[str, Any]) -> int:
    """Train the table; print the output folder and each row's outcome; 1 when a row failed."""
    import csv

    from medbench.table_training.runner import RESULT_FILE, train_table

    if not args.img_dir:
        raise SystemExit("medbench exec: error: --table needs --img-dir DIR (the folder of the images)")
    out = train_table(args.table, args.img_dir, out_dir=args.out_dir, settings=settings, options=options)
    with (out / RESULT_FILE).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for index, row in enumerate(rows):
        outcome = f"failed: {row['exceptions'][:300]}" if row["exceptions"] else f"test AUROC {row['testauc']}"
        print(f"model {index}  {row['method']}  {row.get('run_id', '')}  {outcome}")
    print(f"results: {out / RESULT_FILE}")
    failed = sum(1 for row in rows if row["exceptions"])
    if failed:
        print(f"medbench: error: {failed} of {len(rows)} model(s) failed (see exceptions)", file=sys.stderr)
    return 1 if failed else 0
