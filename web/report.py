"""``ethcrawl report``: one self-contained HTML file (charts inline as SVG, CSS inline, no script, nothing
fetched: its Content-Security-Policy forbids every load), or each chart as an image file."""

from __future__ import annotations

from pathlib import Path

from ethcrawl.db.rows import Session

from .model import Scope, build_header, build_sections
from .pages import chart_files, chart_svgs, ethcrawl_version, now_text, render

__all__ = ["report_html", "report_images"]


def report_html(session: Session, scope: Scope, database: str) -> str:
    sections = build_sections(session, scope)
    return render(
        "report.html", header=build_header(session, scope, database), sections=sections,
        charts=chart_svgs(sections), generated=now_text(), version=ethcrawl_version(),
    )


def report_images(session: Session, scope: Scope, folder: Path, fmt: str) -> list[Path]:
    """Each chart as ``folder/<panel>.<fmt>``; the paths written, in page order."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in chart_files(build_sections(session, scope), fmt).items():
        path = folder / name
        path.write_bytes(data)
        written.append(path)
    return written
