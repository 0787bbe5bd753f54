"""``query history|churn|uptime|readiness|node`` and the --since/--until options: formats and bad arguments.

The numbers themselves are tested against a hand-written history in tests/db/test_history.py; here, what
each format carries (JSON numbers and null, CSV text, an aligned table) and that every bad argument is one line.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ethcrawl.crawler.cli import main
from ethcrawl.crawler.cli_common import parse_when
from history_db import History, fill_history

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_line(result: Result, code: int, needle: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error:") and needle in result.stderr, result.stderr
    assert len(lines) == 1 or code == 2  # click's usage errors add "Usage:" and "Try" lines


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, History]:
    url = str(tmp_path_factory.mktemp("history") / "history.db")
    return url, fill_history(url)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T12:30:00Z", datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
        ("2026-11-01T14:30:00+02:00", datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
        ("7d", NOW - timedelta(days=7)),
        ("12h", NOW - timedelta(hours=12)),
        ("1h30m", NOW - timedelta(minutes=90)),
    ],
)
def test_times_are_iso_8601_or_an_age(text: str, want: datetime) -> None:
    assert parse_when(text, NOW) == want


@pytest.mark.parametrize("text", ["", "yesterday", "7 days", "-7d", "2026-13-01", "7y"])
def test_other_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_when(text, NOW)


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["query", "clients", "--since", "last week"], 2, "ISO 8601"),
        (["query", "history", "clients", "--until", "soon"], 2, "ISO 8601"),
        (["query", "clients", "--since", "2026-11-05", "--until", "2026-11-01"], 1, "--since is not before --until"),
        (["query", "layers", "--crawl", "42"], 1, "no crawl 42"),
        (["export", "csv", "--crawl", "42"], 1, "no crawl 42"),
        (["export", "nodes-json", "--since", "someday"], 2, "ISO 8601"),
        (["query", "history", "peers"], 2, "KIND"),
        (["query", "history", "clients", "--every", "month"], 2, "--every"),
        (["query", "uptime", "--crawl", "0"], 2, "--crawl"),
        (["query", "readiness", "--fork", "Pragu"], 2, "Pragu"),
        (["query", "readiness", "--at", "then"], 2, "ISO 8601"),
        (["query", "node"], 2, "ID"),
        (["query", "node", "abc", "--format", "csv"], 2, "--format"),
        (["query", "churn", "--against", "x"], 2, "--against"),
    ],
)
def test_bad_arguments_are_one_clear_line(story: tuple[str, History], args: list[str], code: int, needle: str) -> None:
    url, _ = story
    one_line(invoke(*args, "--db", url), code, needle)


@pytest.mark.parametrize(
    "command", [["query", "churn"], ["query", "readiness", "--fork", "osaka"], ["query", "node", "ab"]], ids=" ".join
)
def test_a_missing_database_is_one_line(tmp_path: Path, command: list[str]) -> None:
    one_line(invoke(*command, "--db", str(tmp_path / "typo.db")), 1, "typo.db: no such file")
    assert not (tmp_path / "typo.db").exists()


def test_an_empty_database_has_no_churn_and_no_node(tmp_path: Path) -> None:
    from ethcrawl.db.engine import open_database

    path = str(tmp_path / "empty.db")
    open_database(path).close()
    one_line(invoke("query", "churn", "--db", path), 1, "no walk")
    one_line(invoke("query", "node", "ab", "--db", path), 1, "no node ab")
    result = invoke("query", "readiness", "--fork", "osaka", "--db", path, "--format", "csv")
    assert result.exit_code == 0 and result.stdout.splitlines() == ["network,fork,client,version,nodes,ready,share_ready"]


def test_history_formats(story: tuple[str, History]) -> None:
    url, _ = story
    rows = [json.loads(line) for line in invoke("query", "history", "clients", "--every", "day", "--db", url, "--format", "json").stdout.splitlines()]
    assert rows[0] == {"period": "2026-11-02", "value": "geth", "nodes": 1, "share": 100.0}
    per_crawl = json.loads(invoke("query", "history", "os", "--db", url, "--format", "json").stdout.splitlines()[0])
    assert per_crawl["period"] == 1 and isinstance(per_crawl["share"], float)  # numbers, not text
    text = invoke("query", "history", "clients", "--db", url, "--format", "csv").stdout
    assert text.splitlines()[0] == "period,value,nodes,share"
    assert list(csv.reader(io.StringIO(text)))[4] == ["3", "reth", "1", "50.0"]
    table = invoke("query", "history", "clients", "--db", url).stdout.splitlines()
    assert table[0].split() == ["period", "value", "nodes", "share"] and table[1].split() == ["1", "geth", "1", "100.0"]


def test_uptime_formats(story: tuple[str, History]) -> None:
    url, h = story
    rows = [json.loads(line) for line in invoke("query", "uptime", "--crawl", "2", "--db", url, "--format", "json").stdout.splitlines()]
    silent = next(r for r in rows if r["node_id"] == h.ids["B"].hex())
    assert silent == {"node_id": h.ids["B"].hex(), "checks": 1, "answered": 0, "uptime": 0.0, "first_seen": None, "last_seen": None}
    text = invoke("query", "uptime", "--crawl", "2", "--db", url, "--format", "csv").stdout
    parsed = {r["node_id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert parsed[h.ids["B"].hex()]["first_seen"] == "" and parsed[h.ids["A"].hex()]["uptime"] == "1.0"
    table = invoke("query", "uptime", "--distribution", "--db", url).stdout.splitlines()
    assert table[0].split() == ["uptime", "nodes", "share"] and len(table) == 11


def test_churn_csv_holds_rows_only(story: tuple[str, History]) -> None:
    url, _ = story
    text = invoke("query", "churn", "--db", url, "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 6 and {r["change"] for r in rows} == {"new", "gone", "returned", "upgraded"}
    assert all(len(r["node_id"]) == 64 for r in rows)


def test_readiness_formats(story: tuple[str, History]) -> None:
    url, _ = story
    rows = [json.loads(line) for line in invoke("query", "readiness", "--at", "2025-11-01", "--db", url, "--format", "json").stdout.splitlines()]
    assert rows[1] == {"network": "mainnet", "fork": "Osaka", "client": "reth", "version": "1.2.0", "nodes": 1, "ready": 0, "share_ready": 0.0}
    table = invoke("query", "readiness", "--fork", "osaka", "--not-ready", "--db", url).stdout.splitlines()
    assert table[0].split() == ["node_id", "network", "fork", "client", "version", "fork_hash", "fork_next"]
    assert len(table) == 2 and table[1].split()[1:] == ["mainnet", "Osaka", "reth", "1.2.0", "c376cf8b", "0"]


def test_node_json_is_one_object(story: tuple[str, History]) -> None:
    url, h = story
    out = invoke("query", "node", h.ids["C"].hex().upper(), "--db", url, "--format", "json").stdout
    assert len(out.splitlines()) == 1
    data = json.loads(out)
    assert data["enr_versions"] == [] and data["clients"] == [] and data["dials"] == []
    assert [(s["crawl"], s["answered"]) for s in data["sightings"]] == [(1, False), (3, True)]
    assert [r["crawl"] for r in data["returned_by"]] == []
