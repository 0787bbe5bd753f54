"""Every read command facing a bad database or bad filter values: one clear line, a non-zero exit, no traceback."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ethcrawl.crawler.cli import main
from ethcrawl.db.engine import SCHEMA_VERSION, open_database

READ_COMMANDS = [
    ["query", "clients"], ["query", "versions"], ["query", "os"], ["query", "runtimes"], ["query", "networks"],
    ["query", "forks"], ["query", "outcomes"], ["query", "nodes"], ["query", "crawls"], ["query", "topology"],
    ["export", "csv"], ["export", "edges"], ["export", "nodes-json"], ["query", "history", "clients"], ["query", "uptime"],
]  # fmt: skip


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def assert_one_clear_line(result: Result, code: int, *needles: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 or code == 2, result.stderr  # click's usage errors add a "Usage:" and a "Try" line
    assert lines[-1].startswith("Error:")
    for needle in needles:
        assert needle in result.stderr


def _missing(tmp_path: Path) -> tuple[Path, str]:
    return tmp_path / "missing.db", "missing.db"


def _corrupt(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"\x00garbage, not SQLite" * 300)
    return path, "corrupt.db"


def _directory(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "a-directory.db"
    path.mkdir()
    return path, "a-directory.db"


def _newer_schema(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "newer.db"
    open_database(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    return path, str(SCHEMA_VERSION + 1)


def _someone_elses(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    return path, "invoices"


@pytest.mark.parametrize("make", [_missing, _corrupt, _directory, _newer_schema, _someone_elses])
@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_bad_database_is_one_line(tmp_path: Path, command: list[str], make: object) -> None:
    path, needle = make(tmp_path)  # type: ignore[operator]
    result = invoke(*command, "--db", str(path))
    assert_one_clear_line(result, 1, needle)
    assert not (tmp_path / "missing.db").exists()  # reading never creates a database


@pytest.fixture
def empty_db(tmp_path: Path) -> str:
    path = tmp_path / "empty.db"
    open_database(path).close()
    return str(path)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--ip", "10.0.0.0/33"], "IP network"),
        (["--ip", "not-an-ip"], "IP network"),
        (["--seen-since", "2026-13-01"], "ISO 8601"),
        (["--seen-since", "last tuesday"], "ISO 8601"),
        (["--limit", "-3"], "--limit"),
        (["--limit", "many"], "--limit"),
        (["--format", "xml"], "--format"),
    ],
)
def test_bad_filter_values_are_usage_errors(empty_db: str, args: list[str], needle: str) -> None:
    assert_one_clear_line(invoke("query", "nodes", "--db", empty_db, *args), 2, needle)


@pytest.mark.parametrize("command", [c for c in READ_COMMANDS if c[0] == "query" and c[1] != "nodes"], ids=" ".join)
def test_every_query_rejects_an_unknown_format(empty_db: str, command: list[str]) -> None:
    assert_one_clear_line(invoke(*command, "--db", empty_db, "--format", "xml"), 2, "--format")


@pytest.mark.parametrize("command", [c for c in READ_COMMANDS if c[0] == "query"], ids=" ".join)
def test_every_query_answers_on_an_empty_database(empty_db: str, command: list[str]) -> None:
    result = invoke(*command, "--db", empty_db)
    if command[1] == "topology":
        assert_one_clear_line(result, 1, "no crawl")
    else:
        assert result.exit_code == 0 and "Traceback" not in result.output


@pytest.mark.parametrize("args", [["--network", "mainet"], ["--fork", "Pragu"]])
def test_unknown_network_or_fork_is_a_usage_error(empty_db: str, args: list[str]) -> None:
    assert_one_clear_line(invoke("query", "nodes", "--db", empty_db, *args), 2, args[1])


def test_topology_of_a_crawl_that_does_not_exist(empty_db: str) -> None:
    assert_one_clear_line(invoke("query", "topology", "--db", empty_db, "--crawl", "42"), 1, "42")


def test_postgres_without_its_driver_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes "import psycopg" fail, as on a machine without the postgres extra.
    monkeypatch.setitem(sys.modules, "psycopg", None)
    result = invoke("query", "clients", "--db", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    assert_one_clear_line(result, 1, "psycopg")


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_missing_or_empty_database_says_what_to_do(tmp_path: Path, command: list[str]) -> None:
    """No internal parameter name (create=False) reaches the user; the message says what to give instead."""
    result = invoke(*command, "--db", str(tmp_path / "typo.db"))
    assert_one_clear_line(result, 1, "typo.db: no such file", "existing ethcrawl database", "run a crawl first")
    assert "create" not in result.stderr
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    result = invoke(*command, "--db", str(empty))
    assert_one_clear_line(result, 1, "empty.db is empty", "run a crawl first")
    assert "create" not in result.stderr
