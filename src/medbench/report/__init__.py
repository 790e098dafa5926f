"""HTML reports of saved runs (`medbench report`): one self-contained page per run and a comparison page.

Modules: `evidence` (a run's predictions with their truth, history, result, thresholds chosen on
validation and the per-class summaries), `figures` (training curves, the evaluation plots, the
comparison plots), `overlays` (Grad-CAM of a few validation true positives, with `medbench.xai`),
`markup` (escaping, data-URI images, tables, the document), `run_page` and `comparison` (the two pages),
`reports` (`write_reports`, which writes them) and `arguments` (the command's arguments).

Importing the package is light: the names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "write_reports": "medbench.report.reports",
    "gather_evidence": "medbench.report.evidence",
    "RunEvidence": "medbench.report.evidence",
    "render_run": "medbench.report.run_page",
    "render_comparison": "medbench.report.comparison",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medbench.report' has no attribute {name!r}")
