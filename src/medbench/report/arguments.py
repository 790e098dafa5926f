"""The `medbench report` command's arguments (no TensorFlow: `medbench --help` builds them)."""

from __future__ import annotations

import argparse

from medbench.metrics.thresholds import METHODS


def add_report_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `report` to the command line's subcommands and return its parser (the caller sets its function)."""
    report = commands.add_parser(
        "report",
        help="self-contained HTML report of saved runs (curves, per-class tables, plots, Grad-CAM); --compare",
    )
    report.add_argument("runs", nargs="+", metavar="RUN", help="run ids or run folders")
    report.add_argument("--out", help="folder for <run id>.html and comparison.html (default reports/)")
    report.add_argument(
        "--compare", action="store_true", help="also write comparison.html of the given runs (two or more)"
    )
    report.add_argument("--threshold-method", default="youden", choices=METHODS, help="chosen on validation (youden)")
    report.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the AUROC intervals")
    report.add_argument("--no-gradcam", action="store_true", help="leave out the Grad-CAM overlays")
    return report


def report_options(args: argparse.Namespace) -> dict[str, object]:
    """The keyword arguments of `write_reports` that the parsed arguments ask for."""
    return {
        "compare": args.compare,
        "gradcam": not args.no_gradcam,
        "threshold_method": args.threshold_method,
        "n_resamples": args.bootstrap,
    }
