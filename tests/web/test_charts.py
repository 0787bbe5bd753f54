"""web.charts: figures from rows, as SVG for inline HTML and PNG for slides; peer text never breaks a chart."""

from __future__ import annotations

import re

import pytest
from ethcrawl.web.charts import MAX_BARS, MAX_SERIES, ChartSpec, draw, to_png, to_svg

HOSTILE = ["<script>alert(1)</script>", "--><script>alert(2)</script><!--", "$\\frac{a}{", "$x$ and $y", "\\", "}{"]


def _rows(labels: list[str]) -> list[dict[str, object]]:
    return [{"client": label, "nodes": 10 - k} for k, label in enumerate(labels)]


def _spec(kind: str = "barh") -> ChartSpec:
    return ChartSpec(kind=kind, title="Nodes by client", label=lambda r: str(r["client"]))


def test_hostile_labels_draw_as_text_and_never_as_markup() -> None:
    figure = draw(_spec(), _rows(HOSTILE))
    assert figure is not None
    svg = to_svg(figure)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    # Text is drawn as paths; matplotlib names each label in an XML comment, escaped, and a "-->" cannot end it.
    assert "<script" not in svg
    assert "alert" not in re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    assert to_png(figure).startswith(b"\x89PNG\r\n\x1a\n")


def test_no_rows_no_figure() -> None:
    assert draw(_spec(), []) is None
    assert draw(ChartSpec(kind="barh", title="t", label=str, keep=lambda r: False), _rows(["geth"])) is None


def test_many_categories_show_the_largest_and_say_so() -> None:
    figure = draw(_spec(), _rows([f"client{k}" for k in range(MAX_BARS + 5)]))
    assert figure is not None
    axes = figure.axes[0]
    assert len(axes.patches) == MAX_BARS
    assert f"largest {MAX_BARS} of {MAX_BARS + 5}" in axes.get_title(loc="left")


def test_the_same_rows_draw_the_same_svg() -> None:
    first, second = (draw(_spec(), _rows(["geth", "reth"])) for _ in range(2))
    assert first is not None and second is not None
    assert to_svg(first) == to_svg(second)


@pytest.mark.parametrize("kind", ["bar", "line"])
def test_distributions_and_series(kind: str) -> None:
    rows = [{"degree": d, "value": n, "crawl": d, "nodes": n} for d, n in [(0, 3), (1, 5), (4, 1)]]
    spec = ChartSpec(kind=kind, title="t", label=lambda r: str(r["crawl"]), values=("value",) if kind == "bar" else ("nodes",))
    figure = draw(spec, rows)
    assert figure is not None and "<path" in to_svg(figure)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="pie"):
        ChartSpec(kind="pie", title="t", label=str)


def _history(names: list[str], periods: int = 3) -> list[dict[str, object]]:
    return [{"period": p, "value": name, "share": 10.0 + k} for p in range(1, periods + 1) for k, name in enumerate(names)]


def _lines_spec() -> ChartSpec:
    return ChartSpec(kind="lines", title="Client share", label=lambda r: str(r["period"]), series=lambda r: str(r["value"]), values=("share",))


def test_lines_are_one_per_series_with_peer_names_as_text() -> None:
    names = [*HOSTILE, "_hidden"]
    figure = draw(_lines_spec(), _history(names))
    assert figure is not None
    axes = figure.axes[0]
    labels = [line.get_label() for line in axes.get_lines()]
    assert len(labels) == min(len(names), MAX_SERIES) and all(not label.startswith("_") for label in labels)
    svg = to_svg(figure)
    assert "<script" not in svg and "alert" not in re.sub(r"<!--.*?-->", "", svg, flags=re.S)


def test_many_series_show_the_largest_and_say_so() -> None:
    names = [f"client{k}" for k in range(MAX_SERIES + 3)]
    figure = draw(_lines_spec(), _history(names))
    assert figure is not None
    axes = figure.axes[0]
    assert len(axes.get_lines()) == MAX_SERIES and f"largest {MAX_SERIES} of {MAX_SERIES + 3}" in axes.get_title(loc="left")
    # The largest by their shares: client{k} has 10 + k in every period.
    assert {line.get_label() for line in axes.get_lines()} == {f"client{k}" for k in range(3, MAX_SERIES + 3)}


def test_a_series_missing_from_a_period_is_a_gap_not_a_zero() -> None:
    rows = [{"period": 1, "value": "geth", "share": 100.0}, {"period": 2, "value": "geth", "share": 50.0}, {"period": 2, "value": "reth", "share": 50.0}]
    figure = draw(_lines_spec(), rows)
    assert figure is not None
    reth = next(line for line in figure.axes[0].get_lines() if line.get_label() == "reth")
    first, second = reth.get_ydata()
    assert first != first and second == 50.0  # NaN, then the table's number


def test_only_a_lines_chart_names_series() -> None:
    with pytest.raises(ValueError, match="series"):
        ChartSpec(kind="lines", title="t", label=str)
    with pytest.raises(ValueError, match="series"):
        ChartSpec(kind="barh", title="t", label=str, series=str)


def test_bars_without_positions_are_labelled_slots() -> None:
    rows = [{"uptime": f"0.{k}-0.{k + 1}", "nodes": k} for k in range(3)]
    figure = draw(ChartSpec(kind="bar", title="Uptime", label=lambda r: str(r["uptime"])), rows)
    assert figure is not None
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["0.0-0.1", "0.1-0.2", "0.2-0.3"]
