"""The comparison page of several runs, after AUCMEDI's `evaluate_comparison`: one row per run, per-class AUROC
of every run side by side (table and plot, validation and test) and their training curves together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from medbench.report.evidence import PARTS, RunEvidence
from medbench.report.figures import comparison_auroc, comparison_curves
from medbench.report.markup import Markup, document, escape, figure, note, number, section, table
from medbench.report.run_page import auroc_cell, when

__all__ = ["render_comparison", "run_labels"]

RUN_HEADERS = (
    "run", "architecture", "benchmark", "epochs / best",
    "val AUROC (95% CI)", "test AUROC (95% CI)", "test AUPRC", "created",
)  # fmt: skip


def run_labels(evidences: Sequence[RunEvidence]) -> list[str]:
    """The short name of each run in plots and tables: ``#1 <run id>``, …"""
    return [f"#{number_ + 1} {evidence.run_id}" for number_, evidence in enumerate(evidences)]


def _runs_table(evidences: Sequence[RunEvidence], links: Mapping[str, str]) -> Markup:
    rows, attributes = [], []
    for number_, evidence in enumerate(evidences):
        run, result = evidence.run, evidence.result
        test_macro = evidence.splits["test"].summary["macro"]
        page = links.get(run.run_id)
        link = Markup(f'<a href="{escape(page)}">{escape(run.run_id)}</a>') if page else escape(run.run_id)
        rows.append(
            [
                Markup(f"#{number_ + 1} {link}"),
                run.config.get("architecture", ""),
                (run.config.get("benchmark") or {}).get("name", run.name),
                f"{result.get('epochs_run', len(evidence.history))} / {result.get('best_epoch', '')}",
                auroc_cell(evidence.splits["val"].summary["macro"]),
                auroc_cell(test_macro),
                number(test_macro.get("auprc")),
                when(run.config.get("created", "")),
            ]
        )
        cell = {"data-run": run.run_id, "data-metric": "auroc", "data-class": "macro"}
        attributes.append([None] * 4 + [{**cell, "data-split": "val"}, {**cell, "data-split": "test"}])
    return table(RUN_HEADERS, rows, name_columns=3, cell_attributes=attributes)


def _class_table(evidences: Sequence[RunEvidence], part: str, labels: Sequence[str]) -> Markup:
    classes: list[str] = []
    for evidence in evidences:
        classes += [name for name in evidence.classes if name not in classes]
    rows, attributes = [], []
    for name in [*classes, "macro"]:
        cells: list[object] = [name]
        marks: list[object] = [None]
        for evidence in evidences:
            summary = evidence.splits[part].summary
            row = summary["macro"] if name == "macro" else summary["per_class"].get(name)
            cells.append(auroc_cell(row) if row is not None else number(None, reason="not a class of this run"))
            marks.append({"data-run": evidence.run_id, "data-class": name, "data-split": part, "data-metric": "auroc"})
        rows.append(cells)
        attributes.append(marks)
    kinds = [None] * len(classes) + ["macro"]
    return table(["class", *labels], rows, row_classes=kinds, cell_attributes=attributes)  # type: ignore[arg-type]


def render_comparison(evidences: Sequence[RunEvidence], links: Mapping[str, str]) -> str:
    """The complete HTML page comparing `evidences` (links: run id → its page's file name)."""
    labels = run_labels(evidences)
    body = [
        Markup(f"<header><h1>Comparison of {len(evidences)} runs</h1></header>"),
        note("Thresholds of each run chosen on its own validation predictions; intervals are 95% bootstrap intervals."),
        section("Runs", _runs_table(evidences, links), anchor="runs"),
    ]
    for part in PARTS:
        title = "Validation" if part == "val" else "Test"
        png = comparison_auroc(evidences, part, labels)
        body.append(
            section(
                f"{title}: AUROC per class",
                figure(png, f"AUROC per class and macro ({title.lower()}), with 95% intervals"),
                _class_table(evidences, part, labels),
                anchor=f"auroc-{part}",
            )
        )
    curves = comparison_curves(evidences, labels)
    if curves is not None:
        body.append(section("Training", figure(curves, "training loss and validation mean AUROC per epoch")))
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return document(f"medbench comparison of {len(evidences)} runs", body, footer=f"medbench comparison, {written}")
