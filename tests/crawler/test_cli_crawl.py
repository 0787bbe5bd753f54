"""``ethcrawl crawl`` and ``ethcrawl ping`` as a user runs them: a subprocess, real sockets on 127.0.0.1.

The network is a tree of our own discovery nodes running in the test process;
the crawler is the installed ``ethcrawl`` script.
"""

from __future__ import annotations

import io
import json
import resource
import signal
import socket as socket_module
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner
from ethcrawl.crawler import cli_crawl as cli_crawl_module
from ethcrawl.crawler.cli import main as cli_main
from ethcrawl.crawler.open_files import FD_HEADROOM
from ethcrawl.crawler.cli_crawl import (
    PROGRESS_WIDE,
    WalkSetup,
    _duration,
    _host_port,
    _node_key,
    _print_dropped,
    _print_summary,
    _progress_cells,
    _progress_table,
    crawl_command,
)
from ethcrawl.crawler.crawl import CrawlOptions, CrawlProgress
from ethcrawl.crawler.discovery import DiscoveryV4
from ethcrawl.crawler.discovery_v5 import DiscoveryV5
from ethcrawl.crawler.engine import DEFAULT_SILENT_DIAL_CONCURRENCY, CrawlStats
from ethcrawl.db.engine import open_database
from ethcrawl.db.records import CrawlSummary
from ethcrawl.wire.crypto import generate_private_key
from ethcrawl.wire.enode import format_enode
from rich.console import Console
from rich.text import Text

ETHCRAWL = str(Path(sys.executable).with_name("ethcrawl"))
DEADLINE = 60  # s, for any one command
VALID_ENODE = f"enode://{DiscoveryV4(generate_private_key()).pubkey.hex()}@127.0.0.1:1"


async def start_tree(nursery: trio.Nursery, count: int, fanout: int = 3) -> list[DiscoveryV4]:
    nodes = []
    for _ in range(count):
        node = DiscoveryV4(generate_private_key(), host="127.0.0.1")
        await nursery.start(node.run)
        nodes.append(node)
    for k, node in enumerate(nodes):
        for child in nodes[fanout * k + 1 : fanout * k + fanout + 1]:
            node.table.add_verified(child.local_node)
    return nodes


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


async def test_crawl_command_finds_the_whole_tree(tmp_path: Path) -> None:
    db = tmp_path / "crawl.db"
    async with trio.open_nursery() as nursery:
        nodes = await start_tree(nursery, 15)
        with trio.fail_after(DEADLINE):
            done = await trio.run_process(
                [ETHCRAWL, "crawl", "--bootnode", format_enode(nodes[0].local_node), "--db", str(db),
                 "--udp", "127.0.0.1:0", "--no-dial"],
                capture_stdout=True, capture_stderr=True, check=False,
            )
        nursery.cancel_scope.cancel()
    assert done.returncode == 0, done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()
    assert "15 nodes (15 answered, 15 with ENR)" in done.stdout.decode()
    stored = {bytes(r[0]) for r in rows(db, "SELECT node_id FROM nodes")}
    assert stored == {n.node_id for n in nodes}
    (ended,) = rows(db, "SELECT ended_at FROM crawls")[0]
    assert ended is not None
    assert rows(db, "SELECT count(*) FROM edges")[0][0] >= 14  # every parent -> child edge at least


async def test_sigterm_stops_the_crawl_and_keeps_what_was_learned(tmp_path: Path) -> None:
    """A bootnode that never answers, a 30 s timeout: the crawl is busy when SIGTERM comes."""
    db = tmp_path / "crawl.db"
    silent = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
    await silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    pubkey = DiscoveryV4(generate_private_key()).pubkey
    url = f"enode://{pubkey.hex()}@127.0.0.1:{port}"
    with silent:
        proc = await trio.lowlevel.open_process(
            [ETHCRAWL, "crawl", "--bootnode", url, "--db", str(db), "--udp", "127.0.0.1:0", "--no-dial",
             "--timeout", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        with trio.fail_after(DEADLINE):
            await silent.recvfrom(2048)  # the crawler's first Ping: it is running
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    stdout = await proc.stdout.receive_some(65536) if proc.stdout else b""  # type: ignore[union-attr]
    assert proc.returncode == 0
    assert b"1 nodes" in stdout
    assert rows(db, "SELECT count(*) FROM nodes")[0][0] == 1
    assert rows(db, "SELECT ended_at FROM crawls")[0][0] is not None


async def test_ping_command_reports_discovery_answers(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        (node,) = await start_tree(nursery, 1)
        url = format_enode(node.local_node).split("?")[0]
        # Only discovery runs on this node: the RLPx part must report the refusal, not crash.
        with trio.fail_after(DEADLINE):
            done = await trio.run_process(
                [ETHCRAWL, "ping", "--db", str(tmp_path / "c.db"), url], capture_stdout=True, capture_stderr=True, check=False
            )
        nursery.cancel_scope.cancel()
    out = json.loads(done.stdout)
    assert out["pong"] is True
    assert out["node_id"] == node.node_id.hex()
    assert out["enr"]["seq"] == node.enr.seq  # type: ignore[union-attr]
    assert out["rlpx"]["outcome"] == "refused"


async def test_ping_runs_as_the_database_identity(tmp_path: Path) -> None:
    """Pings from one database reach the peer as one node (the one its crawls use), not a new one each time."""
    db = tmp_path / "c.db"
    async with trio.open_nursery() as nursery:
        (node,) = await start_tree(nursery, 1)
        url = format_enode(node.local_node).split("?")[0]
        with trio.fail_after(DEADLINE):
            for _ in range(2):
                done = await trio.run_process(
                    [ETHCRAWL, "ping", "--db", str(db), url], capture_stdout=True, capture_stderr=True, check=False
                )
                assert json.loads(done.stdout)["pong"] is True
        nursery.cancel_scope.cancel()
    ((generated, origin),) = rows(db, "SELECT node_id, origin FROM identities")
    assert origin == "generated"
    assert {n.node_id for n in node.table} == {bytes(generated)}  # type: ignore[arg-type]


async def test_ping_command_speaks_v5_to_an_enr(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        v5 = DiscoveryV5(generate_private_key())
        await nursery.start(v5.run)
        with trio.fail_after(DEADLINE):
            done = await trio.run_process(
                [ETHCRAWL, "ping", "--db", str(tmp_path / "c.db"), "--timeout", "1", v5.enr.to_text()],
                capture_stdout=True, capture_stderr=True, check=False,
            )
        nursery.cancel_scope.cancel()
    out = json.loads(done.stdout)
    assert done.returncode == 0  # v5 answered, though nothing speaks v4 or RLPx there
    assert out["v5"]["pong"] is True and out["v5"]["enr_seq"] == v5.enr.seq
    assert out["v5"]["enr_text"] == v5.enr.to_text()
    assert out["v5"]["seen_as"].startswith("127.0.0.1:")
    assert out["pong"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["crawl", "--discovery", "v5", "--bootnode", VALID_ENODE], "enr: seed"),
        (["crawl", "--discovery", "v6"], "--discovery"),
        (["crawl", "--bootnode", "enode://nothex@127.0.0.1:1"], "--bootnode"),
        (["crawl", "--bootnode", "enode://" + "ab" * 64 + "@localhost:30303"], "--bootnode"),
        (["crawl", "--listen", "nowhere"], "HOST:PORT"),
        (["crawl", "--concurrency", "0"], "--concurrency"),
        (["crawl", "--db", "/nonexistent-dir/x.db", "--bootnode", VALID_ENODE], "nonexistent-dir"),
    ],
)
def test_bad_arguments_give_one_clear_line(args: list[str], message: str) -> None:
    done = subprocess.run([ETHCRAWL, *args], capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("command", "content", "why"),
    [
        ("crawl", b"", "want 64 hex characters"),
        ("crawl", b"ab" * 31 + b"\n", "want 64 hex characters"),
        ("crawl", b"zz" * 32, "want 64 hex characters"),
        ("crawl", b"ab" * 32 + b" ", "unexpected bytes after"),
        ("crawl", b"ab" * 32 + b"\n\n\n", "unexpected bytes after"),
        ("crawl", b"ab" * 32 + b"ab", "unexpected bytes after"),
        ("crawl", b"00" * 32, "not a valid secp256k1 private key"),
        ("crawl", b"ff" * 32, "not a valid secp256k1 private key"),
        ("ping", b"ab" * 31 + b"\n", "want 64 hex characters"),
    ],
)
def test_a_bad_node_key_file_gives_one_clear_line(tmp_path: Path, command: str, content: bytes, why: str) -> None:
    key_file, db = tmp_path / "node.key", tmp_path / "c.db"
    key_file.write_bytes(content)
    target = ["--bootnode", VALID_ENODE, "--udp", "127.0.0.1:0"] if command == "crawl" else [VALID_ENODE]
    done = subprocess.run(
        [ETHCRAWL, command, "--db", str(db), "--node-key", str(key_file), *target],
        capture_output=True, text=True, timeout=DEADLINE,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("Error: --node-key") and str(key_file) in line and why in line
    assert not db.exists()  # refused before anything was opened or sent


@pytest.mark.parametrize("tail", [b"", b"\n", b"\r\n", b"\n\n"])
@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_a_node_key_file_as_geth_writes_it_is_read(tmp_path: Path, tail: bytes, case: Callable[[str], str]) -> None:
    """crypto.SaveECDSA writes 64 hex characters; crypto.LoadECDSA also takes up to two newline bytes after them."""
    key = generate_private_key()
    key_file = tmp_path / "node.key"
    key_file.write_bytes(case(key.secret.hex()).encode() + tail)
    loaded = _node_key(str(key_file))
    assert loaded is not None and loaded.secret == key.secret


def test_a_missing_node_key_file_gives_one_clear_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [ETHCRAWL, "crawl", "--node-key", str(tmp_path / "none.key"), "--db", str(tmp_path / "c.db"), "--bootnode", VALID_ENODE],
        capture_output=True, text=True, timeout=DEADLINE,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "none.key" in line and "cannot read" in line


def test_corrupt_database_gives_one_clear_line(tmp_path: Path) -> None:
    db = tmp_path / "corrupt.db"
    db.write_bytes(b"this is not an sqlite database" * 100)
    done = subprocess.run(
        [ETHCRAWL, "crawl", "--db", str(db), "--bootnode", VALID_ENODE, "--udp", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=DEADLINE,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("Error:") and "corrupt.db" in line


async def test_from_db_seeds_the_crawl_with_known_nodes(tmp_path: Path) -> None:
    """A first crawl fills the database; a second with only --from-db visits the same nodes again."""
    db = tmp_path / "crawl.db"
    async with trio.open_nursery() as nursery:
        nodes = await start_tree(nursery, 6)
        base = [ETHCRAWL, "crawl", "--db", str(db), "--udp", "127.0.0.1:0", "--no-dial"]
        with trio.fail_after(DEADLINE):
            first = await trio.run_process([*base, "--bootnode", format_enode(nodes[0].local_node)], capture_stdout=True, capture_stderr=True)
            second = await trio.run_process([*base, "--from-db"], capture_stdout=True, capture_stderr=True)
        nursery.cancel_scope.cancel()
    assert b"6 nodes (6 answered" in first.stdout
    # The tree now also lists the first crawler (it pinged them): the same identity as the second, so not a node.
    assert b"6 nodes (6 answered, 6 with ENR)" in second.stdout
    assert rows(db, "SELECT count(*) FROM crawls")[0][0] == 2


# ---------------------------------------------------------------------- what the terminal shows

PROGRESS = CrawlProgress(
    elapsed=17.2,
    crawl=CrawlStats(
        discovered=10513, queued=2345, in_flight=32, visited=8123, responded=4567, edges=33108, dials_started=999,
        dials_in_flight=16, relay_rejected=3, answered_v4=4000, answered_v5=1234, dropped_by_rule=(("source", 543),),
    ),
    dials_ok=812,
    dials_failed=187,
)


def test_the_live_display_says_how_far_the_crawl_is_how_fast_and_what_is_left() -> None:
    progress = replace(PROGRESS, rate=250.0)
    # 8123 visits started, 32 in flight: 8091 done of 10513 known (77%); 2422 left at 250/s: about 10 s.
    assert progress.done == 8091 and round(progress.share_done, 2) == 0.77 and progress.remaining_s == 2422 / 250
    for width in (60, 160):
        words = " ".join(_render(_progress_table(progress), width)).split()
        assert "77%" in words or "(77%)" in words, words
        assert "~10s" in words and ("250/s" in words or "250" in words), words
    # No rate yet (the first second): the estimate is unknown, not zero or infinite.
    assert PROGRESS.remaining_s is None and "~?" in " ".join(_render(_progress_table(PROGRESS), 160))


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "?"), (0.4, "0s"), (45, "45s"), (192, "3m12s"), (7500, "2h05m")]
)
def test_durations_read_short(seconds: float | None, text: str) -> None:
    assert _duration(seconds) == text


def _render(renderable: object, width: int, **print_options: Any) -> list[str]:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(renderable, **print_options)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    return [line.rstrip() for line in output.splitlines() if line.strip()]


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_live_display_fits_the_terminal_without_splitting_a_label(width: int) -> None:
    lines = _render(_progress_table(PROGRESS), width)
    assert all(len(line) <= width for line in lines), lines
    for cell in _progress_cells(PROGRESS, short=width < PROGRESS_WIDE):
        plain = Text.from_markup(cell).plain.strip()
        assert any(plain in line for line in lines), (plain, lines)
    words = " ".join(lines).split()
    # The key numbers: elapsed, discovered, answered, edges, dials ok and failed, dropped.
    for number in ("17s", "10513", "4567/8123", "33108", "812", "187", "543"):
        assert number in words, (number, lines)


@pytest.mark.parametrize("width", [60, 80])
def test_end_of_crawl_summary_line_wraps_between_words_only(width: int) -> None:
    started = datetime(2026, 1, 1, tzinfo=timezone.utc)
    summary = CrawlSummary(
        crawl_id=12345, started_at=started, ended_at=started + timedelta(seconds=3617.25), nodes=10513,
        responded=4567, with_enr=3456, edges=18831, dials=999, dials_ok=812, dials_failed=187, outcomes=(),
        clients=(), networks=(),
    )
    console = Console(width=width, file=io.StringIO(), color_system=None, force_terminal=True)
    _print_summary(console, summary)
    lines = [line.rstrip() for line in console.file.getvalue().splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert all(len(line) <= width for line in lines), lines
    words = " ".join(lines).split()
    for number in ("12345:", "10513", "(4567", "3456", "18831", "999", "(812", "187", "3617.2"):
        assert number in words, (number, lines)


def test_end_of_crawl_summary_line_is_one_line_in_a_pipe() -> None:
    started = datetime(2026, 1, 1, tzinfo=timezone.utc)
    summary = CrawlSummary(
        crawl_id=7, started_at=started, ended_at=started + timedelta(seconds=7.1), nodes=200, responded=200,
        with_enr=194, edges=3735, dials=180, dials_ok=138, dials_failed=42, outcomes=(), clients=(), networks=(),
    )
    console = Console(width=80, file=io.StringIO(), color_system=None)  # not a terminal: a pipe or a file
    _print_summary(console, summary)
    first = console.file.getvalue().splitlines()[0]  # type: ignore[attr-defined]
    assert first == "crawl 7: 200 nodes (200 answered, 194 with ENR), 3735 edges, 180 dials (138 ok, 42 failed) in 7.1 s"


def test_summary_says_what_the_sybil_bound_dropped() -> None:
    started = datetime(2026, 1, 1, tzinfo=timezone.utc)
    summary = CrawlSummary(
        crawl_id=1, started_at=started, ended_at=started, nodes=545, responded=1, with_enr=1, edges=544, dials=0,
        dials_ok=0, dials_failed=0, outcomes=(), clients=(), networks=(),
        dropped=(("endpoint", 2), ("ip", 0), ("subnet", 0), ("source", 543)),
    )
    console = Console(width=80, file=io.StringIO(), color_system=None)
    _print_dropped(console, summary)
    assert console.file.getvalue() == "sybil bound: dropped 545 relayed nodes (per endpoint 2, source 543)\n"  # type: ignore[attr-defined]
    quiet = Console(width=80, file=io.StringIO(), color_system=None)
    _print_dropped(quiet, replace(summary, dropped=(("source", 0),)))
    assert quiet.file.getvalue() == ""  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- crawl's input checks (no packet leaves)


def _crawl_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    """``ethcrawl crawl`` in this process, for checks that must refuse before any socket is opened."""

    def no_sockets(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket_module, "socket", no_sockets)
    monkeypatch.setattr(trio.socket, "socket", no_sockets)
    return CliRunner().invoke(cli_main, ["crawl", "--db", str(tmp_path / "c.db"), *args])


@pytest.mark.parametrize("option", ["--duration", "--timeout", "--v5-timeout"])
@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "-inf", "1e12"])
def test_non_finite_or_absurd_seconds_are_refused_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, value: str
) -> None:
    result = _crawl_in_process(tmp_path, monkeypatch, "--bootnode", VALID_ENODE, option, value)
    assert result.exit_code == 2, result.output
    assert "finite number of seconds" in result.output and "JSON" not in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("url", [VALID_ENODE.replace(":1", ":0"), VALID_ENODE.replace(":1", ":30303?discport=0")])
def test_a_bootnode_without_a_udp_port_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    result = _crawl_in_process(tmp_path, monkeypatch, "--bootnode", url)
    assert result.exit_code == 2, result.output
    assert "no UDP port" in result.output


def test_from_db_on_an_empty_database_does_not_fall_back_to_mainnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_database(tmp_path / "c.db").close()  # an ethcrawl database without a node
    # Sockets are patched out: if the refusal were missing, the crawl would fail on its first socket, never send.
    result = _crawl_in_process(tmp_path, monkeypatch, "--from-db")
    assert result.exit_code != 0
    assert "no nodes" in result.output and "--bootnode" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_from_db_on_a_missing_database_says_so_and_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _crawl_in_process(tmp_path, monkeypatch, "--from-db")
    assert result.exit_code == 1, result.output
    assert "no such file" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "c.db").exists()


def _crawl_rows(path: Path) -> list[tuple[Any, ...]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, ended_at FROM crawls").fetchall()


@pytest.mark.parametrize("what", ["udp-in-use", "udp-foreign-address", "listen-in-use"])
def test_a_socket_that_cannot_be_bound_is_one_line_and_no_half_open_crawl(tmp_path: Path, what: str) -> None:
    busy = socket_module.socket(socket_module.AF_INET, socket_module.SOCK_STREAM if what == "listen-in-use" else socket_module.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    if what == "listen-in-use":
        busy.listen()
    port = busy.getsockname()[1]
    extra = {
        "udp-in-use": ["--udp", f"127.0.0.1:{port}"],
        "udp-foreign-address": ["--udp", "192.0.2.1:0"],  # TEST-NET-1: no machine here has it
        "listen-in-use": ["--udp", "127.0.0.1:0", "--listen", f"127.0.0.1:{port}"],
    }[what]
    db = tmp_path / "c.db"
    try:
        result = subprocess.run(
            [ETHCRAWL, "crawl", "--db", str(db), "--bootnode", VALID_ENODE, "--no-dial", "--duration", "5", *extra],
            capture_output=True, text=True, timeout=DEADLINE,
        )
    finally:
        busy.close()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "cannot" in errors[0], result.stderr
    assert all(ended is not None for _, ended in _crawl_rows(db)), "no crawl row may be left without ended_at"


def test_the_default_udp_address_serves_both_families_and_an_empty_host_means_it_too() -> None:
    (udp,) = [p for p in crawl_command.params if p.name == "udp"]
    assert _host_port(str(udp.default)) == ("::", 0)  # one dual-stack socket (IPv4 only where there is no IPv6)
    assert _host_port(":30303") == ("::", 30303)  # geth's spelling of "every address"
    assert _host_port("0.0.0.0:30303") == ("0.0.0.0", 30303)  # pins IPv4
    assert _host_port("[::1]:30303") == ("::1", 30303)


# ---------------------------------------------------------------------- dials of records that never answered


def _options_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[Any, list[CrawlOptions]]:
    """``ethcrawl crawl ARGS`` in this process with the crawl itself replaced: the CrawlOptions it would run."""
    seen: list[CrawlOptions] = []

    async def crawl(db: object, setup: WalkSetup, on_progress: object, metrics: object) -> CrawlSummary:
        seen.append(setup.options)
        now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        return CrawlSummary(
            crawl_id=1, started_at=now, ended_at=now, nodes=0, responded=0, with_enr=0, edges=0, dials=0, dials_ok=0,
            dials_failed=0, outcomes=(), clients=(), networks=(),
        )

    def run_without_trio(function: Callable[..., Any], *args: object) -> Any:
        # trio.run opens a socket pair for its wakeups; what runs here never waits on trio.
        try:
            function(*args).send(None)
        except StopIteration as done:
            return done.value
        raise AssertionError("the replaced crawl waited on trio")

    monkeypatch.setattr(cli_crawl_module, "_crawl_with_metrics", crawl)
    monkeypatch.setattr(cli_crawl_module.trio, "run", run_without_trio)
    return _crawl_in_process(tmp_path, monkeypatch, "--bootnode", VALID_ENODE, *args), seen


@pytest.mark.parametrize(
    ("args", "concurrency", "dial_silent"),
    [
        ((), DEFAULT_SILENT_DIAL_CONCURRENCY, True),
        (("--silent-dial-concurrency", "1000"), 1000, True),
        (("--no-dial-silent",), DEFAULT_SILENT_DIAL_CONCURRENCY, False),
        (("--dial-silent", "--silent-dial-concurrency", "1"), 1, True),
    ],
)
def test_silent_dial_options_reach_the_crawl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], concurrency: int, dial_silent: bool
) -> None:
    result, seen = _options_of(tmp_path, monkeypatch, *args)
    assert result.exit_code == 0, result.output
    (options,) = seen
    assert (options.silent_dial_concurrency, options.dial_silent, options.dial) == (concurrency, dial_silent, True)
    assert DEFAULT_SILENT_DIAL_CONCURRENCY == 256


@pytest.mark.parametrize("value", ["0", "-5", "many", "1.5", "100000"])
def test_a_bad_silent_dial_concurrency_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    result, seen = _options_of(tmp_path, monkeypatch, "--silent-dial-concurrency", value)
    assert result.exit_code == 2, result.output
    assert "--silent-dial-concurrency" in result.output and "Traceback" not in result.output
    assert not seen


def test_dials_past_the_open_files_limit_raise_it_or_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dial needs a file descriptor: the soft limit is raised to fit the dials at once, as far as the hard limit
    allows; past that, one line and nothing runs (a dial without a descriptor would be stored as a dead node's)."""
    raised: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "setrlimit", lambda which, limits: raised.append(limits))
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 8192))
    result, seen = _options_of(tmp_path, monkeypatch, "--silent-dial-concurrency", "2000")
    assert result.exit_code == 0, result.output
    assert raised == [(64 + 2000 + FD_HEADROOM, 8192)] and len(seen) == 1
    raised.clear()
    result, seen = _options_of(tmp_path, monkeypatch, "--silent-dial-concurrency", "2000", "--no-dial-silent")
    assert result.exit_code == 0 and not raised  # 64 dials fit
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 1024))
    result, seen = _options_of(tmp_path, monkeypatch, "--silent-dial-concurrency", "2000")
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert "open files" in line and "1024" in line and not seen and not raised
    result, seen = _options_of(tmp_path, monkeypatch, "--silent-dial-concurrency", "2000", "--no-dial")
    assert result.exit_code == 0 and len(seen) == 1  # nothing dialed, nothing needed


def test_summary_counts_the_dials_of_silent_records_apart() -> None:
    started = datetime(2026, 1, 1, tzinfo=timezone.utc)
    summary = CrawlSummary(
        crawl_id=7, started_at=started, ended_at=started + timedelta(seconds=7.1), nodes=200, responded=150,
        with_enr=194, edges=3735, dials=180, dials_ok=138, dials_failed=42, outcomes=(), clients=(), networks=(),
        silent_dials=40,
    )
    console = Console(width=80, file=io.StringIO(), color_system=None)
    _print_summary(console, summary)
    first = console.file.getvalue().splitlines()[0]  # type: ignore[attr-defined]
    assert first == (
        "crawl 7: 200 nodes (150 answered, 194 with ENR), 3735 edges, 180 dials (138 ok, 42 failed; 40 to silent "
        "records) in 7.1 s"
    )
