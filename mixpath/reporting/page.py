"""Safe building blocks of a self-contained HTML page: escaped text, tables, embedded PNGs, relative links.

Markup is built from ``Html`` pieces; anything else put into a piece is escaped on the way in, so a value
read from a file (an architecture string, a config value) always shows as text and never as markup.
Images are data: URIs and the style sheet is inline, so the page needs no server, network or CDN.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Collection, Iterable, Sequence
from urllib.parse import quote

from matplotlib.figure import Figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MISSING = "–"

_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d1f21;
       max-width: 1100px; margin: 1.5em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 2px solid #d0d4d9; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
p.note { color: #5b6168; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #d0d4d9; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
tr:nth-child(even) td { background: #f8f9fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, td.code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.9em; overflow-wrap: anywhere; }
img { max-width: 100%; height: auto; display: block; margin: 0.6em 0; border: 1px solid #e3e6e9; }
figure { margin: 0 0 1em; min-width: 0; }
div.figures { display: flex; gap: 1em; align-items: flex-start; }
table.facts th { background: none; font-weight: 600; }
figcaption { color: #5b6168; font-size: 0.9em; }
details summary { cursor: pointer; color: #33506e; }
a { color: #1f5fa8; }
"""


class Html(str):
    """Markup that is already safe to put into the page; every other value is escaped."""


def escape(value: object) -> Html:
    """``value`` as page text: ``Html`` passes through, anything else is converted and escaped."""
    return value if isinstance(value, Html) else Html(html.escape(str(value)))


def join(pieces: Iterable[object]) -> Html:
    return Html("".join(escape(piece) for piece in pieces))


def element(tag: str, *children: object, cls: str | None = None) -> Html:
    """``<tag class=cls>children</tag>`` with every child escaped unless it is ``Html``."""
    attribute = f' class="{html.escape(cls)}"' if cls else ""
    return Html(f"<{tag}{attribute}>{join(children)}</{tag}>")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Collection[int] = ()) -> Html:
    """A table; the columns whose index is in ``numeric`` are right-aligned with aligned digits."""
    head = element("tr", *(element("th", header) for header in headers))
    body = [
        element("tr", *(element("td", cell, cls="num" if i in numeric else None) for i, cell in enumerate(row)))
        for row in rows
    ]
    return element("table", element("thead", head), element("tbody", *body))


def facts(items: Iterable[tuple[str, object]], per_row: int = 1) -> Html:
    """A header-less table of named values, ``per_row`` (name, value) pairs to a row (short settings)."""
    pairs = [(element("th", name), element("td", value)) for name, value in items]
    rows = [
        element("tr", *(cell for pair in pairs[i : i + per_row] for cell in pair))
        for i in range(0, len(pairs), per_row)
    ]
    return element("table", element("tbody", *rows), cls="facts")


def figures(*pieces: Html) -> Html:
    """Figures side by side, each shrunk to share the page's width (the empty ones left out)."""
    shown = [piece for piece in pieces if piece]
    return element("div", *shown, cls="figures") if shown else Html("")


def link(href: str, text: object) -> Html:
    """A link to ``href``, a path relative to the page (percent-encoded here, so any file name works)."""
    return Html(f'<a href="{html.escape(quote(href))}">{escape(text)}</a>')


def image(png: bytes, caption: object) -> Html:
    """A PNG inside the page as a data: URI, with ``caption`` under it and as its alt text."""
    data = base64.b64encode(png).decode("ascii")
    return element(
        "figure",
        Html(f'<img src="data:image/png;base64,{data}" alt="{html.escape(str(caption))}">'),
        element("figcaption", caption),
    )


def figure_png(fig: Figure) -> bytes:
    """Render a matplotlib figure to PNG bytes in memory (no file, no display)."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def number(value: object, pattern: str) -> str:
    """A finite number through ``pattern`` (e.g. ``"{:.2f} %"``); missing values as a dash, text as it is."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return str(value)
    try:
        as_float = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return pattern.format(as_float) if math.isfinite(as_float) else MISSING


def document(title: str, body: Iterable[Html]) -> str:
    """A complete HTML5 page with the inline style sheet."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
