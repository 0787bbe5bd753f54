"""wire/ is sans-I/O: it must never reach for sockets, trio, SQL or the clock.  Only db/ speaks SQL.  web/ reads
through db/ and wire/, and of crawler/ uses only the CLI's shared helpers (never the crawl's trio machinery)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_WIRE = {"trio", "socket", "sqlalchemy", "time", "asyncio", "selectors"}
FORBIDDEN_OUTSIDE_DB = {"sqlalchemy"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


WIRE_FILES = sorted((REPO / "wire").rglob("*.py"))
CRAWLER_FILES = sorted((REPO / "crawler").rglob("*.py"))
WEB_FILES = sorted((REPO / "web").rglob("*.py"))
FORBIDDEN_IN_WEB = {"trio", "sqlalchemy", "asyncio"}
# What web/ may take from ethcrawl.crawler: the CLI's options, database opening and output (no crawl code).
CRAWLER_ALLOWED_IN_WEB = {"ethcrawl.crawler.cli_common"}


def imported_full_names(path: Path) -> set[str]:
    """Every absolute module name imported, in full (``ethcrawl.crawler.cli_common``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", WIRE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_wire_is_sans_io(path: Path) -> None:
    bad = imported_modules(path) & FORBIDDEN_IN_WIRE
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}; wire/ must stay sans-I/O"


@pytest.mark.parametrize("path", CRAWLER_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_only_db_knows_sql(path: Path) -> None:
    bad = imported_modules(path) & FORBIDDEN_OUTSIDE_DB
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}; only db/ speaks SQL"


def test_wire_files_exist() -> None:
    assert len(WIRE_FILES) >= 3
    assert len(WEB_FILES) >= 3


@pytest.mark.parametrize("path", WEB_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_web_reads_through_db(path: Path) -> None:
    bad = imported_modules(path) & FORBIDDEN_IN_WEB
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}; web/ reads through db/ and runs no trio"
    crawler = {n for n in imported_full_names(path) if n.startswith("ethcrawl.crawler")} - CRAWLER_ALLOWED_IN_WEB
    assert not crawler, f"{path.relative_to(REPO)} imports {sorted(crawler)}; web/ may use only {sorted(CRAWLER_ALLOWED_IN_WEB)}"


def test_the_layer_rules_catch_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import trio\nfrom sqlalchemy import select\nfrom ethcrawl.crawler.engine import x\n")
    assert imported_modules(sample) & FORBIDDEN_IN_WEB == {"trio", "sqlalchemy"}
    assert "ethcrawl.crawler.engine" in imported_full_names(sample)


TEST_FILES = sorted((REPO / "tests").rglob("test_*.py"))


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_tests_do_not_import_conftest(path: Path) -> None:
    # Several folders have a conftest.py; "from conftest import" picks whichever pytest loaded
    # first.  Shared helpers live in tests/ground_truth.py.
    assert "conftest" not in imported_modules(path), f"{path.relative_to(REPO)} imports conftest"
