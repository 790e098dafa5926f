"""`medbench report`: one self-contained HTML page per run, and a comparison page of several runs on request.

Each page is one file: its images are PNG data URIs and its CSS is inline, so it can be mailed, attached
to an issue or opened offline; it needs no JavaScript and requests nothing. Pages are named
``<run id>.html`` and the comparison ``comparison.html``, in the output folder (default ``reports/``
under the project root).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from medbench.atomic import write_bytes_atomic
from medbench.errors import ConfigError
from medbench.report.comparison import render_comparison
from medbench.report.evidence import RunEvidence, gather_evidence
from medbench.report.overlays import Overlays, gradcam_overlays
from medbench.report.run_page import render_run
from medbench.runs.run_dir import CONFIG
from medbench.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["COMPARISON_FILE", "DEFAULT_FOLDER", "page_name", "write_reports"]

DEFAULT_FOLDER = "reports"
COMPARISON_FILE = "comparison.html"


def page_name(run_id: str) -> str:
    """The file name of a run's page."""
    return f"{run_id}.html"


def _checked(value: str) -> str:
    """A run id, or a run folder: a folder without config.json is refused here, not looked up as an id."""
    folder = Path(value)
    if folder.is_dir() and not (folder / CONFIG).is_file():
        raise ConfigError(
            f"{folder}: is a folder without {CONFIG}; expected a run folder (models/<experiment>/<run id>/) or a run id"
        )
    return value


def _write(path: Path, text: str) -> Path:
    write_bytes_atomic(path, text.encode("utf-8"))
    return path


def write_reports(
    settings: Settings | None,
    run_ids: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    compare: bool = False,
    gradcam: bool = True,
    threshold_method: str = "youden",
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[Path]:
    """Write one HTML page per run (and with `compare` a comparison page of them all); returns the paths.

    Args:
        settings: the project folders (default: from the environment).
        run_ids: run ids (pulled from the bucket when configured and not local) or run folders.
        out_dir: the folder for the pages (default ``<root>/reports``).
        compare: also write ``comparison.html`` of the runs (at least two).
        gradcam: draw Grad-CAM overlays of a few validation images (needs the run's model and images).
        threshold_method: how each class's threshold is chosen on validation: youden, sensitivity, fbeta.
        n_resamples: bootstrap resamples of the AUROC intervals.
        seed: the bootstrap's seed.

    Raises:
        ConfigError: no run, an unknown run id, a run without predictions or with a damaged file (named).
    """
    from medbench.prediction import resolve_run  # TensorFlow, for the overlays

    settings = settings or Settings.from_env()
    wanted = list(dict.fromkeys(str(value) for value in run_ids))
    if not wanted:
        raise ConfigError("no run given: expected one or more run ids or run folders")
    if compare and len(wanted) < 2:
        raise ConfigError(f"--compare with one run ({wanted[0]}): expected at least two runs to compare")
    out = Path(out_dir) if out_dir is not None else settings.root / DEFAULT_FOLDER
    runs = [resolve_run(_checked(value), settings) for value in wanted]
    evidences: list[RunEvidence] = []
    written: list[Path] = []
    for run in runs:
        started = time.monotonic()
        evidence = gather_evidence(run, settings, threshold_method=threshold_method, n_resamples=n_resamples, seed=seed)
        overlays = gradcam_overlays(evidence) if gradcam else Overlays(note="Grad-CAM overlays were not asked for.")
        written.append(_write(out / page_name(run.run_id), render_run(evidence, overlays)))
        evidences.append(evidence)
        logger.info("report of run %s written to %s (%.1f s)", run.run_id, written[-1], time.monotonic() - started)
    if compare:
        links = {evidence.run_id: page_name(evidence.run_id) for evidence in evidences}
        written.append(_write(out / COMPARISON_FILE, render_comparison(evidences, links)))
        logger.info("comparison of %d runs written to %s", len(evidences), written[-1])
    return written
