"""web.charts: figures from rows, as SVG for inline HTML and PNG for slides; peer text never breaks a chart."""

from __future__ import annotations

import re

import pytest
from ethcrawl.web.charts import MAX_BARS, ChartSpec, draw, to_png, to_svg

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
