"""web.pages: the templates' escaping and the chart cache (a chart is redrawn exactly when its rows change)."""

from __future__ import annotations

from ethcrawl.db.rows import Table
from ethcrawl.web import pages
from ethcrawl.web.charts import ChartSpec
from ethcrawl.web.model import Panel, Section


def _section(nodes: int, key: str = "clients") -> Section:
    table = Table(("client", "nodes"), [{"client": "geth", "nodes": nodes}, {"client": "reth", "nodes": 3}])
    chart = ChartSpec(kind="barh", title="Nodes by client", label=lambda r: str(r["client"]))
    return Section(key="s", title="S", panels=(Panel(key=key, caption="c", table=table, chart=chart, query="", api=None),))


def test_a_chart_is_drawn_once_per_rows() -> None:
    first = pages.chart_svgs([_section(7)])["clients"]
    again = pages.chart_svgs([_section(7)])["clients"]
    changed = pages.chart_svgs([_section(8)])["clients"]
    assert first is not None and first is again  # the cached string itself: not drawn twice
    assert changed is not None and changed != first


def test_the_cache_keeps_at_most_its_size() -> None:
    cache = pages._SvgCache(2)
    for nodes in range(4):
        cache.get(_section(nodes + 100).panels[0])
    assert len(cache._entries) == 2


def test_templates_escape_values_and_parameters() -> None:
    hostile = "<script>alert(1)</script>"
    text = pages.render("macros.html")  # the macros compile
    assert text.strip() == ""
    table = Table(("client",), [{"client": hostile}])
    html = pages.environment().from_string('{% import "macros.html" as m %}{{ m.table(t) }}').render(t=table)
    assert hostile not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert pages.parameter_text(None) == "null" and pages.parameter_text(["a"]) == '["a"]' and pages.parameter_text("x") == "x"
