"""Rendering: the Jinja2 environment (autoescaped: client ids are attacker-controlled text) and the charts of a
page's sections."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from ethcrawl.db.rows import as_text, iso

from .charts import draw, to_png, to_svg
from .model import Panel, Section

__all__ = ["environment", "parameter_text", "render", "chart_svgs", "chart_files", "ethcrawl_version", "now_text"]

@cache
def environment() -> Environment:
    """The one template environment: every ``{{ }}`` is HTML-escaped unless a template says ``| safe``."""
    env = Environment(
        loader=PackageLoader("ethcrawl.web", "templates"), autoescape=True, undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["as_text"] = as_text
    env.filters["parameter_text"] = parameter_text
    return env


def parameter_text(value: object) -> str:
    """A stored crawl parameter as text: strings as they are, anything else as JSON (null, true, [...])."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def _drawn(sections: Sequence[Section]) -> Iterator[tuple[Panel, Any]]:
    for section in sections:
        for panel in section.panels:
            if panel.chart is not None:
                yield panel, draw(panel.chart, panel.table.rows)


class _SvgCache:
    """Drawn charts by (panel, its rows): a chart is a pure function of the two, and drawing is the slow part of a
    page (about 0.2 s a chart), so the dashboard redraws only what a crawl changed.  Shared by the server's
    worker threads, hence the lock; least recently used entries go first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(panel: Panel) -> str:
        assert panel.chart is not None
        rows = json.dumps([dict(r) for r in panel.table.rows], sort_keys=True, default=str)
        return "\0".join((panel.key, panel.chart.title, rows))

    def get(self, panel: Panel) -> str | None:
        key = self.key(panel)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        assert panel.chart is not None
        figure = draw(panel.chart, panel.table.rows)
        svg = None if figure is None else to_svg(figure)
        with self._lock:
            self._entries[key] = svg
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return svg


CHART_CACHE_SIZE = 256  # drawn charts kept: every chart of a dozen scopes (crawls) of the overview
_SVGS = _SvgCache(CHART_CACHE_SIZE)


def chart_svgs(sections: Sequence[Section]) -> dict[str, str | None]:
    """Each panel's chart as inline SVG, by panel key (None: no rows to draw)."""
    return {p.key: _SVGS.get(p) for section in sections for p in section.panels if p.chart is not None}


def chart_files(sections: Sequence[Section], fmt: str) -> dict[str, bytes]:
    """Each drawable panel's chart as a file's bytes (``fmt`` "svg" or "png"), by file name."""
    files: dict[str, bytes] = {}
    for panel, figure in _drawn(sections):
        if figure is not None:
            files[f"{panel.key}.{fmt}"] = to_png(figure) if fmt == "png" else to_svg(figure).encode("utf-8")
    return files


def ethcrawl_version() -> str:
    try:
        return version("ethcrawl")
    except PackageNotFoundError:
        return "unknown"


def now_text() -> str:
    return iso(datetime.now(timezone.utc).replace(microsecond=0))
