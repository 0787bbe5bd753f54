"""What the ``query``, ``export`` and ``import`` commands share: the --db and --format options, opening the
database and writing output (the per-node row of ``export csv`` and ``query nodes`` is ``db.rows.node_row``)."""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from ipaddress import ip_address
from typing import IO, Any, TypeVar

import click

from ethcrawl.db.engine import Database, open_database
from ethcrawl.db.errors import DatabaseError
from ethcrawl.db.node_filter import BadFilter
# The row shapes are defined once in db.rows (the web report and dashboard show the same rows); re-exported here.
from ethcrawl.db.rows import CSV_COLUMNS, LIST_DELIMITER, Row, Value, as_text, iso, node_row, share

__all__ = [
    "DEFAULT_DB", "CSV_COLUMNS", "LIST_DELIMITER", "Value", "Row", "db_option", "format_option", "database", "output",
    "read_json", "write_text", "filter_callback", "parse_host_port", "iso", "node_row", "share", "as_text", "emit_rows",
    "parse_duration", "Duration", "parse_when", "When", "scope_options",
]

DEFAULT_DB = "ethcrawl.db"

format_option = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
db_option = click.option("--db", "db_url", default=DEFAULT_DB, show_default=True, help="SQLite file path or SQLAlchemy URL.")


@contextmanager
def database(url: str, *, create: bool = False, read_only: bool = False) -> Iterator[Database]:
    """The database, or one clear line and exit 1 (never a traceback)."""
    try:
        db = open_database(url, create=create, read_only=read_only)
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield db
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.close()


@contextmanager
def output(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdout
        return
    try:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            yield handle
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None


def read_json(path: str) -> Any:
    """A JSON file's value, or one clear line: unreadable, not UTF-8, not JSON, nested too deeply."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # JSON is UTF-8 (RFC 8259); a BOM some editors write is tolerated
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise click.ClickException(f"{path}: JSON nested too deeply to be a node list") from None


def parse_host_port(text: str, *, default_host: str = "", min_port: int = 0) -> tuple[str, int]:
    """``HOST:PORT`` with HOST an IP address (``[v6]`` brackets allowed; names are never resolved), else BadParameter.

    An empty HOST is ``default_host`` (``--udp :30303`` listens on every address).
    """
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not min_port <= int(port) <= 65535:
        raise click.BadParameter(f"{text!r} is not HOST:PORT (port {min_port}-65535)")
    host = host.strip("[]") or default_host
    try:
        ip_address(host)
    except ValueError:
        raise click.BadParameter(f"{host!r} is not an IP address (host names are not resolved)") from None
    return host, int(port)


def write_text(path: str, text: str) -> None:
    """``text`` into the file at ``path``, as it is (no newline added), or one clear line."""
    with output(path) as handle:
        handle.write(text)


def _is_number(value: Value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def emit_rows(columns: Sequence[str], rows: Iterable[Row], fmt: str, handle: IO[str] | None = None) -> None:
    """Rows as an aligned table, CSV with a header, or one JSON object per line (the printer of every query).

    ``columns`` is declared by the query, so an empty result still prints its header (table, CSV); JSON then
    prints nothing.  JSON keeps types (numbers, booleans, null, lists); CSV and tables print plain text
    (null as an empty cell, booleans as true/false, lists joined by LIST_DELIMITER); tables right-align numbers.
    """
    out = handle or sys.stdout
    if fmt == "json":
        for row in rows:
            out.write(json.dumps({c: row[c] for c in columns}, allow_nan=False) + "\n")
        return
    if fmt == "csv":
        writer = csv.writer(out)  # RFC 4180 line ends (CRLF), as spreadsheets expect
        writer.writerow(columns)
        writer.writerows([as_text(row[c]) for c in columns] for row in rows)
        return
    rows = list(rows)
    cells = [[as_text(row[c]) for c in columns] for row in rows]
    numeric = [any(_is_number(row[c]) for row in rows) for c in columns]
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]

    def line(texts: Sequence[str]) -> str:
        padded = (t.rjust(w) if right else t.ljust(w) for t, w, right in zip(texts, widths, numeric))
        return "  ".join(padded).rstrip()

    out.write(line(columns) + "\n")
    for texts in cells:
        out.write(line(texts) + "\n")


# Go's time.ParseDuration units, and days (list makers think in days; Go has none).
_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0,
}  # fmt: skip
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h|d|w)")
MAX_MIN_AGE = timedelta(days=100 * 365)  # beyond any node's life; bounds timedelta arithmetic


def parse_duration(text: str) -> timedelta:
    """Go's duration syntax ("72h", "1h30m", "90s"), plus "d" for days and "w" for weeks; ValueError otherwise."""
    position, seconds = 0, 0.0
    while position < len(text):
        part = _DURATION_PART.match(text, position)
        if part is None:
            raise ValueError(f"{text!r} is not a duration such as 24h, 90m or 7d")
        seconds += float(part.group(1)) * _DURATION_UNITS[part.group(2)]
        position = part.end()
    if not text or seconds > MAX_MIN_AGE.total_seconds():
        raise ValueError(f"{text!r} is not a duration such as 24h, 90m or 7d")
    return timedelta(seconds=seconds)


class Duration(click.ParamType[timedelta]):
    """A parse_duration option; ``positive``: zero is refused too (an interval, a retention window)."""

    name = "duration"

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            duration = value
        else:
            try:
                duration = parse_duration(str(value))
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        if self.positive and duration <= timedelta(0):
            self.fail(f"{value!r} is not allowed: the duration must be more than 0", param, ctx)
        return duration


def parse_when(text: str, now: datetime) -> datetime:
    """A point in time: ISO 8601 (a date, or a date and time; UTC unless it says otherwise), or a duration
    before ``now`` ("7d", "12h", "1h30m": parse_duration's syntax); ValueError otherwise."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return now - parse_duration(text)
        except ValueError:
            raise ValueError(f"{text!r} is neither an ISO 8601 time (2026-11-01, 2026-11-01T12:00Z) nor an age such as 7d or 12h") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


class When(click.ParamType[datetime]):
    """--since / --until: parse_when against the wall clock at the moment the command starts."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value), datetime.now(timezone.utc))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def filter_callback(parse: Callable[[str], T]) -> Callable[[click.Context, click.Parameter, str | None], T | None]:
    """A click callback: the option's text through ``parse`` (a db.node_filter parser), BadFilter as a usage error."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> T | None:
        if value is None:
            return None
        try:
            return parse(value)
        except BadFilter as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def scope_options(command: F) -> F:
    """--crawl, --since, --until: which crawls a query reads (db.scope.scope_of; README "What the numbers mean")."""
    options = (
        click.option(
            "--crawl", "crawl_id", type=click.IntRange(min=1), default=None,
            help="Only this crawl (default: every crawl in the window).",
        ),
        click.option(
            "--since", type=When(), default=None,
            help="Only crawls started at or after this time: ISO 8601 (UTC unless given) or an age such as 7d, 12h.",
        ),
        click.option("--until", type=When(), default=None, help="Only crawls started before this time (as --since)."),
    )
    for option in reversed(options):
        command = option(command)
    return command
