"""Charts of the report and dashboard: matplotlib figures from a section's rows, as SVG text or PNG bytes.

matplotlib because it is the long-kept standard for plots in papers, renders SVG and PNG offline with no
JavaScript and no fonts to fetch (DejaVu ships with it), and its object API (``Figure``, no pyplot) holds no
global state, so the dashboard's worker threads can each draw their own figure.  Text is drawn as paths in the
SVG, and every "$" is escaped: a client name is attacker-controlled text, and "$...$" must print as it is, not
as mathtext (which could fail to parse).

A chart only draws numbers its section's table holds: the values come from the rows, never recomputed here.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display: render to files and strings only

from matplotlib.figure import Figure  # noqa: E402

from ethcrawl.db.rows import Row  # noqa: E402

__all__ = ["ChartSpec", "MAX_BARS", "draw", "to_svg", "to_png"]

MAX_BARS = 20  # bars per chart; a table beside it lists every row, the chart shows the largest
MAX_SERIES = 8  # lines per "lines" chart: more cannot be told apart by colour; the table lists every value
WIDTH = 7.0  # in, figure width: readable beside a table on a laptop screen
BAR_HEIGHT = 0.32  # in per bar of a horizontal bar chart
MIN_HEIGHT = 2.2  # in, a chart of one or two bars still has room for its title
PNG_DPI = 150  # dots per inch of --format png: sharp enough for slides
COLOUR = "#3b6ea5"
SVG_SALT = "ethcrawl"  # fixed salt for matplotlib's SVG ids: the same data draws the same file

# Set once for the process (rc_context would change global state per call, racing the dashboard's threads).
matplotlib.rcParams["svg.hashsalt"] = SVG_SALT
matplotlib.rcParams["svg.fonttype"] = "path"  # text as outlines: no font to embed or fetch

# What a chart plots from a table: one label per row and one numeric column (several for a line chart).
Label = Callable[[Row], str]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChartSpec:
    """How to draw a section's rows: ``kind`` "barh" (categories), "bar" (a distribution), "line" (columns over
    crawls, one line per column) or "lines" (one line per ``series`` value over the periods ``label`` names, in
    row order); ``values`` the column(s) drawn; ``keep`` picks the rows drawn; ``position`` a bar's x (None: one
    slot per row, named by ``label``)."""

    kind: str
    title: str
    label: Label
    values: tuple[str, ...] = ("nodes",)
    keep: Callable[[Row], bool] = lambda row: True
    xlabel: str = "nodes"
    ylabel: str = "nodes"
    series: Label | None = None
    position: Callable[[Row], float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("barh", "bar", "line", "lines"):
            raise ValueError(f"unknown chart kind {self.kind!r}")
        if (self.kind == "lines") != (self.series is not None):
            raise ValueError("a 'lines' chart, and only it, names its series")


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _plain(text: str) -> str:
    """``text`` printed as it is: a "$" escaped, so "$x$" from a peer's client name is no mathtext."""
    return text.replace("$", r"\$")


def draw(spec: ChartSpec, rows: Sequence[Row]) -> Figure | None:
    """The figure of ``rows`` (None when nothing is left to draw)."""
    drawn = [row for row in rows if spec.keep(row)]
    if not drawn:
        return None
    if spec.kind == "barh":
        return _barh(spec, drawn)
    if spec.kind == "bar":
        return _bar(spec, drawn)
    if spec.kind == "lines":
        return _lines(spec, drawn)
    return _line(spec, drawn)


def _titled(spec: ChartSpec, shown: int, total: int) -> str:
    return spec.title if shown == total else f"{spec.title} (largest {shown} of {total})"


def _barh(spec: ChartSpec, rows: list[Row]) -> Figure:
    shown = rows[:MAX_BARS]
    figure = Figure(figsize=(WIDTH, max(MIN_HEIGHT, 0.9 + BAR_HEIGHT * len(shown))), layout="constrained")
    axes = figure.add_subplot()
    labels = [_plain(spec.label(row)) for row in shown]
    values = [_number(row[spec.values[0]]) for row in shown]
    positions = list(range(len(shown)))
    axes.barh(positions, values, color=COLOUR)
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()  # largest first, as the table lists them
    for position, value in zip(positions, values):
        axes.annotate(f"{value:g}", (value, position), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    axes.set_xlabel(spec.xlabel)
    axes.set_title(_plain(_titled(spec, len(shown), len(rows))), loc="left")
    axes.margins(x=0.12)
    return figure


def _bar(spec: ChartSpec, rows: list[Row]) -> Figure:
    figure = Figure(figsize=(WIDTH, 3.0), layout="constrained")
    axes = figure.add_subplot()
    heights = [_number(row[spec.values[0]]) for row in rows]
    if spec.position is None:
        slots = list(range(len(rows)))
        axes.bar(slots, heights, color=COLOUR, width=0.8)
        axes.set_xticks(slots, [_plain(spec.label(row)) for row in rows])
    else:
        axes.bar([spec.position(row) for row in rows], heights, color=COLOUR, width=0.8)
    axes.set_xlabel(spec.xlabel)
    axes.set_ylabel(spec.ylabel)
    axes.set_title(_plain(spec.title), loc="left")
    return figure


def _line(spec: ChartSpec, rows: list[Row]) -> Figure:
    ordered = list(reversed(rows))  # the table is newest first; time runs left to right
    figure = Figure(figsize=(WIDTH, 3.0), layout="constrained")
    axes = figure.add_subplot()
    labels = [_plain(spec.label(row)) for row in ordered]
    for column in spec.values:
        axes.plot(labels, [_number(row[column]) for row in ordered], marker="o", label=column)
    axes.set_xlabel(spec.xlabel)
    axes.set_title(_plain(spec.title), loc="left")
    axes.set_ylim(bottom=0)
    axes.legend(loc="best", fontsize=8)
    if len(labels) > 8:
        axes.tick_params(axis="x", labelrotation=60)
    return figure


def _legend_text(text: str) -> str:
    """A series name as a legend shows it: matplotlib leaves out labels starting with "_", a peer's name may."""
    return _plain(" " + text if text.startswith("_") else text)


def _lines(spec: ChartSpec, rows: list[Row]) -> Figure:
    assert spec.series is not None  # __post_init__
    column = spec.values[0]
    periods = list(dict.fromkeys(spec.label(row) for row in rows))
    points: dict[str, dict[str, float]] = {}
    weight: dict[str, float] = {}
    for row in rows:
        name = spec.series(row)
        points.setdefault(name, {})[spec.label(row)] = _number(row[column])
        weight[name] = weight.get(name, 0.0) + _number(row[column])
    shown = sorted(weight, key=lambda name: (-weight[name], name))[:MAX_SERIES]
    figure = Figure(figsize=(WIDTH, 3.4), layout="constrained")
    axes = figure.add_subplot()
    slots = list(range(len(periods)))
    for name in shown:  # a period without a row for the series is a gap: the table holds no number for it
        axes.plot(slots, [points[name].get(period, math.nan) for period in periods], marker="o", label=_legend_text(name))
    axes.set_xticks(slots, [_plain(period) for period in periods])
    axes.set_xlabel(spec.xlabel)
    axes.set_ylabel(spec.ylabel)
    title = spec.title if len(shown) == len(weight) else f"{spec.title} (largest {len(shown)} of {len(weight)})"
    axes.set_title(_plain(title), loc="left")
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    if len(periods) > 8:
        axes.tick_params(axis="x", labelrotation=60)
    return figure


_SVG_START = re.compile(r"<svg\b")


def to_svg(figure: Figure) -> str:
    """The figure as an ``<svg>`` element to put inline in HTML (no XML prologue, no DOCTYPE)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})  # no timestamp: the same rows, the same file
    text = buffer.getvalue()
    match = _SVG_START.search(text)
    return text[match.start():] if match else text


def to_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PNG_DPI)
    return buffer.getvalue()
