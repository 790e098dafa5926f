"""The `medbench explain` command's arguments (no TensorFlow: `medbench --help` builds them)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from medbench.xai.names import METHOD_NAMES

if TYPE_CHECKING:
    from medbench.xai.explain import ExplainOptions


def add_explain_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `explain` to the command line's subcommands and return its parser (the caller sets its function)."""
    explain = commands.add_parser(
        "explain", help="explanation maps of a saved run's model on image files (and a check against boxes)"
    )
    explain.add_argument("run", help="run id or run folder")
    explain.add_argument("images", nargs="+", help="image files, preprocessed as the run's cache was")
    explain.add_argument(
        "--method",
        action="append",
        help=f"repeatable or comma-separated (default gradcam): {', '.join(METHOD_NAMES)}",
    )
    explain.add_argument(
        "--class", dest="classes", action="append", help="class name or index (repeatable; default the top predicted)"
    )
    explain.add_argument("--layer", help="a feature-map layer inside the backbone (default the backbone's output)")
    explain.add_argument("--boxes", help="box file in NIH's BBox_List_2017.csv format: pointing game and mass share")
    explain.add_argument("--out", required=True, help="folder for the .npy maps, PNGs and CSVs")
    explain.add_argument("--steps", type=int, default=64, help="integrated gradients: intervals of the path (64)")
    explain.add_argument("--masks", type=int, default=4000, help="RISE: random masks (4000)")
    explain.add_argument("--seed", type=int, default=0, help="RISE: seed of the masks (0)")
    explain.add_argument("--patch", type=int, help="occlusion: patch side in pixels (default an eighth of the image)")
    explain.add_argument("--batch-size", type=int, default=16, help="images per model call (16)")
    return explain


def explain_options(args: argparse.Namespace) -> ExplainOptions:
    """The ExplainOptions the parsed arguments ask for (ConfigError for a bad method or setting)."""
    from medbench.xai.explain import ExplainOptions
    from medbench.xai.gradients import IntegratedGradientsConfig
    from medbench.xai.methods import MethodConfig
    from medbench.xai.perturbation import OcclusionConfig, RiseConfig

    config = MethodConfig(
        batch_size=args.batch_size,
        integrated_gradients=IntegratedGradientsConfig(steps=args.steps),
        occlusion=OcclusionConfig(patch=args.patch),
        rise=RiseConfig(masks=args.masks, seed=args.seed),
    )
    return ExplainOptions(
        methods=tuple(args.method or ("gradcam",)),
        classes=tuple(args.classes or ()),
        layer=args.layer,
        boxes=Path(args.boxes) if args.boxes else None,
        config=config,
    )
