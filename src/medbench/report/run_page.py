"""One run's HTML page: what the run is, how it trained, how it scores on val and test, and where it looks.

Sections: the run (name, id, benchmark, architecture, dataset, dates), training curves, the per-class
tables of validation and test (n_pos, n_neg, AUROC with its 95 % bootstrap interval, AUPRC, the
threshold chosen on validation, sensitivity, specificity, precision, F1, and the macro row), the ROC,
precision-recall, reliability (and, single-label, confusion) plots of both splits, and Grad-CAM
overlays of a few validation true positives.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from medbench.report.evidence import RunEvidence, SplitScores
from medbench.report.figures import split_plots, training_curves
from medbench.report.markup import (
    Markup,
    definitions,
    document,
    escape,
    figure,
    join,
    note,
    number,
    section,
    table,
)
from medbench.report.overlays import Overlays

__all__ = ["CLASS_HEADERS", "auroc_cell", "class_table", "render_run", "run_facts", "when"]

CLASS_HEADERS = (
    "class", "n_pos", "n_neg", "AUROC (95% CI)", "AUPRC", "threshold",
    "sensitivity", "specificity", "precision", "F1",
)  # fmt: skip
PLOT_TITLES = {
    "roc": "ROC",
    "precision_recall": "precision-recall",
    "reliability": "reliability",
    "confusion": "confusion matrix",
}


def _reason(row: Mapping[str, Any], key: str) -> str | None:
    return (row.get("undefined") or {}).get(key)


def auroc_cell(row: Mapping[str, Any]) -> Markup:
    """The AUROC of a summary row (4 decimals, class ``auroc``) and its interval, or a dash and the reason."""
    value = row.get("auroc")
    if value is None:
        return number(None, reason=_reason(row, "auroc") or "AUROC needs both labels")
    interval = row.get("auroc_ci") or {}
    low, high = interval.get("low"), interval.get("high")
    ci = f' <span class="ci">({low:.3f}\u2013{high:.3f})</span>' if low is not None and high is not None else ""
    return Markup(f'<span class="auroc">{value:.4f}</span>{ci}')


def _metric_row(row: Mapping[str, Any], threshold: Markup | str) -> list[Any]:
    return [
        auroc_cell(row),
        number(row.get("auprc"), reason=_reason(row, "auprc")),
        threshold,
        *(number(row.get(key), 3, reason="no image of the needed kind") for key in ("sensitivity", "specificity")),
        number(row.get("precision"), 3, reason="no image called positive at the threshold"),
        number(row.get("f1"), 3, reason="precision or sensitivity is not defined"),
    ]


def class_table(evidence: RunEvidence, split: SplitScores) -> Markup:
    """The per-class table of one split, with the macro row; AUROC cells carry data-class and data-split."""
    rows, attributes, kinds = [], [], []
    for name in evidence.classes:
        row = split.summary["per_class"][name]
        threshold = evidence.thresholds[name]
        shown = Markup(f'<span title="{escape(threshold["source"])}">{threshold["value"]:.3f}</span>')
        rows.append([name, row["n_pos"], row["n_neg"], *_metric_row(row, shown)])
        attributes.append([None, None, None, {"data-class": name, "data-split": split.part, "data-metric": "auroc"}])
        kinds.append(None)
    macro = split.summary["macro"]
    label = f"macro ({macro.get('n_classes_auroc', 0)} classes)"
    rows.append([label, "", "", *_metric_row(macro, "")])
    attributes.append([None, None, None, {"data-class": "macro", "data-split": split.part, "data-metric": "auroc"}])
    kinds.append("macro")
    return table(CLASS_HEADERS, rows, row_classes=kinds, cell_attributes=attributes)


def when(value: Any) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM:SS UTC`` (anything else as it is)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value or "")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.tzinfo is not None else "")


def run_facts(evidence: RunEvidence) -> list[tuple[str, Any]]:
    """The run's identity and dates, as (label, value) pairs."""
    run, result = evidence.run, evidence.result
    config = run.config
    benchmark = config.get("benchmark") or {}
    timings = result.get("timings") or {}
    total = timings.get("total_s")
    sizes = config.get("sizes") or {}
    versions = config.get("versions") or {}
    return [
        ("run id", run.run_id),
        ("experiment", run.name),
        ("benchmark", benchmark.get("name", "")),
        ("architecture", config.get("architecture", "")),
        ("dataset", benchmark.get("dataset", "")),
        ("task", f"{evidence.task}, {len(evidence.classes)} classes: {', '.join(evidence.classes)}"),
        ("images", ", ".join(f"{part} {count}" for part, count in sizes.items())),
        ("created", when(config.get("created", ""))),
        ("started", when(timings.get("started", ""))),
        ("finished", when(timings.get("finished", "")) or "not finished"),
        ("training time", f"{total:.1f} s" if isinstance(total, int | float) else ""),
        ("epochs run / best", f"{result.get('epochs_run', len(evidence.history))} / {result.get('best_epoch', '')}"),
        ("status", result.get("status", "no result.json")),
        ("versions", ", ".join(f"{name} {version}" for name, version in versions.items())),
        ("folder", str(run.run_dir.path)),
    ]


def _curves_section(evidence: RunEvidence) -> Markup:
    best = evidence.result.get("best_epoch")
    png = training_curves(evidence.history, best if isinstance(best, int) else None)
    if png is None:
        return section("Training curves", note("No history.json: the run logged no epoch."), anchor="curves")
    caption = "Per epoch: training (solid) and validation (dashed) values; the dotted line is the best epoch."
    return section("Training curves", figure(png, caption), anchor="curves")


def _tables_section(evidence: RunEvidence) -> Markup:
    parts = []
    method = next((entry["source"] for entry in evidence.thresholds.values() if entry["source"].startswith("val")), "")
    fixed = [name for name, entry in evidence.thresholds.items() if not entry["source"].startswith("val")]
    for split in evidence.splits.values():
        resamples = (split.summary["macro"].get("auroc_ci") or {}).get("n_resamples")
        interval = f"95% bootstrap interval over {split.bootstrap_by}s" + (
            f" ({resamples} resamples)" if resamples else ""
        )
        parts += [
            Markup(f"<h3>{escape(split.title.capitalize())} ({len(split.ids)} images)</h3>"),
            class_table(evidence, split),
            note(f"AUROC with its {interval}. Threshold per class chosen on validation, never on test: {method}."),
        ]
        if evidence.single_label and len(evidence.classes) > 1:
            parts.append(note(_multiclass_line(split)))
    if fixed:
        parts.append(
            note(f"No threshold could be chosen on validation for {', '.join(fixed)}: 0.5 used.", warning=True)
        )
    return section("Per-class results", *parts, anchor="results")


def _multiclass_line(split: SplitScores) -> str:
    from medbench.errors import MetricInputError
    from medbench.metrics.multiclass import evaluate_multiclass

    try:
        report = evaluate_multiclass(split.targets, split.scores, tuple(split.summary["per_class"]))
    except MetricInputError as error:
        return f"Accuracy not defined: {error}"
    return f"Top-1 accuracy {report.accuracy:.4f}, balanced accuracy {report.balanced_accuracy:.4f}."


def _plots_section(evidence: RunEvidence) -> Markup:
    parts = []
    for split in evidence.splits.values():
        plots = split_plots(split, evidence)
        figures = [
            figure(png, f"{PLOT_TITLES.get(name, name)} ({split.title})", width=370) for name, png in plots.items()
        ]
        parts += [
            Markup(f"<h3>{escape(split.title.capitalize())}</h3>"),
            Markup(f'<div class="figures">{join(figures)}</div>'),
        ]
    return section("ROC, precision-recall and calibration", *parts, anchor="plots")


def _overlays_section(overlays: Overlays) -> Markup:
    if not overlays.items:
        return section("Grad-CAM", note(overlays.note or "No Grad-CAM overlays."), anchor="gradcam")
    cells = []
    for item in overlays.items:
        caption = f"{item.class_name}, score {item.score:.3f}: {item.sample_id}"
        if item.empty:
            caption += " (the map is zero everywhere: no positive evidence at this layer)"
        pair = join([figure(item.image_png, "image", width=160), figure(item.overlay_png, "Grad-CAM", width=160)])
        cells.append(Markup(f'<div class="cam"><div class="figures">{pair}</div>{note(caption)}</div>'))
    intro = note(
        "Validation images that are true positives at the class's threshold, for the classes with the most of them; "
        "Grad-CAM at the backbone's output (red: where the class's score rises most)."
    )
    return section("Grad-CAM", intro, Markup(f'<div class="figures">{join(cells)}</div>'), anchor="gradcam")


def render_run(evidence: RunEvidence, overlays: Overlays) -> str:
    """The complete HTML page of one run."""
    run = evidence.run
    body = [
        Markup(f"<header><h1>{escape(run.name)}</h1></header>"),
        definitions(run_facts(evidence)),
        *(note(text, warning=True) for text in evidence.notes),
        _curves_section(evidence),
        _tables_section(evidence),
        _plots_section(evidence),
        _overlays_section(overlays),
    ]
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return document(
        f"medbench run {run.run_id}", body, footer=f"medbench report of run {run.run_id}, written {written}"
    )
