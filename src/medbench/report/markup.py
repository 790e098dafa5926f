"""The HTML of a report: escaping, embedded PNGs, tables, sections and the self-contained document around them.

Every string from a run (names, class names, ids, error messages) goes through `escape`; only `Markup`
(HTML this module or its callers built from escaped parts) is inserted as it is. Images are PNG data
URIs and the CSS is inline; the document's Content-Security-Policy forbids every other source, so a
report opened in a browser makes no request at all and needs no JavaScript.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "DASH",
    "Markup",
    "definitions",
    "document",
    "escape",
    "figure",
    "image",
    "join",
    "note",
    "number",
    "section",
    "table",
]

DASH = "\u2014"
"""What a table shows for a value that is not defined (its reason goes in the cell's title)."""
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""Nothing but the document itself, its inline style and its data-URI images."""

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330;
       margin: 0 auto; max-width: 1180px; padding: 18px 28px 40px; background: #fff; }
h1 { font-size: 22px; margin: 6px 0 4px; word-break: break-all; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d8dde6; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; }
dl.meta dt { color: #5a6475; } dl.meta dd { margin: 0; word-break: break-all; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d8dde6; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #eef1f6; font-weight: 600; }
td.name, th.name { text-align: left; white-space: normal; min-width: 7em; max-width: 360px; overflow-wrap: anywhere; }
tr.macro td { font-weight: 600; background: #f6f8fb; }
span.ci { color: #5a6475; font-size: 12px; }
.note { color: #5a6475; font-size: 13px; margin: 4px 0 10px; }
.warning { color: #8a4b00; }
.figures { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
figure { margin: 0; } figcaption { color: #5a6475; font-size: 12px; text-align: center; }
.wide { overflow-x: auto; } .cam { width: 336px; } .cam p.note { overflow-wrap: anywhere; }
img { display: block; max-width: 100%; height: auto; }
footer { margin-top: 32px; color: #8a93a3; font-size: 12px; }
"""


class Markup(str):
    """HTML that is safe to insert as it is (built from escaped parts)."""


def escape(value: object) -> Markup:
    """`value` as text in HTML (quotes too, so it is safe inside an attribute)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def join(parts: Iterable[str]) -> Markup:
    """Pieces of HTML one after another (each must already be `Markup`)."""
    return Markup("".join(parts))


def number(value: float | None, digits: int = 4, *, reason: str | None = None) -> Markup:
    """A number rounded to `digits` decimals, or a dash titled with why it is not defined."""
    if value is None:
        return Markup(f'<span title="{escape(reason or "not defined")}">{DASH}</span>')
    return Markup(f"{value:.{digits}f}")


def _attributes(attributes: Mapping[str, object] | None) -> str:
    if not attributes:
        return ""
    return "".join(f' {escape(key)}="{escape(value)}"' for key, value in attributes.items() if value is not None)


def image(png: bytes, alt: str, *, width: int | None = None) -> Markup:
    """An <img> whose source is the PNG itself (a data URI), `width` CSS pixels wide when given."""
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return Markup(f'<img src="{source}" alt="{escape(alt)}"{_attributes({"width": width})}>')


def figure(png: bytes, caption: str, *, width: int | None = None) -> Markup:
    """An image with its caption underneath."""
    return Markup(f"<figure>{image(png, caption, width=width)}<figcaption>{escape(caption)}</figcaption></figure>")


Cell = str | int | float | None
"""A table cell: text (escaped), `Markup` (inserted as it is), a number (shown as it is) or nothing."""


def _cell(value: Cell) -> str:
    if value is None:
        return DASH
    return escape(value)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    name_columns: int = 1,
    row_classes: Sequence[str | None] | None = None,
    cell_attributes: Sequence[Sequence[Mapping[str, object] | None]] | None = None,
    caption: str | None = None,
) -> Markup:
    """A table: `headers`, then `rows`; the first `name_columns` columns are left-aligned text.

    `row_classes` gives each row a CSS class ("macro" for the macro row); `cell_attributes` gives cells
    attributes (such as ``data-class``) that tests and scripts can find them by.
    """
    head = "".join(
        f"<th{' class=name' if index < name_columns else ''}>{escape(text)}</th>" for index, text in enumerate(headers)
    )
    body = []
    for number_, row in enumerate(rows):
        kind = row_classes[number_] if row_classes is not None else None
        cells = []
        for index, value in enumerate(row):
            marks = cell_attributes[number_] if cell_attributes is not None else ()
            attributes = dict(marks[index] or {}) if index < len(marks) else {}
            if index < name_columns:
                attributes["class"] = "name"
            cells.append(f"<td{_attributes(attributes)}>{_cell(value)}</td>")
        body.append(f"<tr{_attributes({'class': kind})}>{''.join(cells)}</tr>")
    title = f"<caption>{escape(caption)}</caption>" if caption else ""
    rows_html = "".join(body)
    return Markup(
        f'<div class="wide"><table>{title}<thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table></div>'
    )


def definitions(items: Iterable[tuple[str, Cell]]) -> Markup:
    """A two-column list of labels and values (the run's name, id, dates, …)."""
    rows = "".join(f"<dt>{escape(label)}</dt><dd>{_cell(value)}</dd>" for label, value in items)
    return Markup(f'<dl class="meta">{rows}</dl>')


def note(text: str, *, warning: bool = False) -> Markup:
    """A short grey paragraph (orange for a warning)."""
    return Markup(f'<p class="note{" warning" if warning else ""}">{escape(text)}</p>')


def section(title: str, *parts: str, anchor: str | None = None) -> Markup:
    """A titled section holding `parts` (Markup)."""
    return Markup(f"<section{_attributes({'id': anchor})}><h2>{escape(title)}</h2>{''.join(parts)}</section>")


def document(title: str, body: Iterable[str], *, footer: str = "") -> str:
    """The complete HTML page: inline CSS, data-URI images only, no script."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + (f"\n<footer>{escape(footer)}</footer>" if footer else "")
        + "\n</body></html>\n"
    )
