"""``ethcrawl monitor`` as a process: cycles, one log line each, SIGTERM inside a cycle, durations."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
import trio
from ethcrawl.crawler.cli_common import Duration
from ethcrawl.crawler.devnet import open_devnet
from ethcrawl.crawler.discovery import DiscoveryV4
from ethcrawl.wire.crypto import generate_private_key

ETHCRAWL = str(Path(sys.executable).with_name("ethcrawl"))
DEADLINE = 60  # s for any one monitor process


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800.0), ("90d", 90 * 86400.0), ("1.5h", 5400.0), ("45s", 45.0), ("2w", 14 * 86400.0), ("1h30m", 5400.0)])
def test_durations(text: str, seconds: float) -> None:
    assert Duration(positive=True).convert(text, None, None).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "45", "-5m", "5x", "m", "1e9d", "nan", "40000w"])
def test_bad_durations_are_one_clear_error(text: str) -> None:
    with pytest.raises(click.BadParameter):
        Duration(positive=True).convert(text, None, None)


async def test_monitor_runs_its_cycles_and_logs_one_line_each(tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    with trio.fail_after(DEADLINE):
        async with open_devnet(nodes=6, seed=2, awkward=False) as net:
            done = await trio.run_process(
                [ETHCRAWL, "-v", "monitor", "--bootnode", net.bootnode_enr, "--db", str(db), "--udp", "127.0.0.1:0",
                 "--cycles", "2", "--interval", "3s", "--revalidate", "1s", "--keep", "90d", "--timeout", "0.3",
                 "--v5-timeout", "0.3", "--metrics", ":0"],
                capture_stdout=True, capture_stderr=True, check=False,
            )
    err = done.stderr.decode()
    assert done.returncode == 0, err
    lines = [line for line in err.splitlines() if "monitor cycle kind=" in line]
    kinds = rows(db, "SELECT kind FROM crawls ORDER BY id")
    assert len(lines) == len(kinds) and [k for (k,) in kinds].count("crawl") == 2
    assert "kind=crawl" in lines[0] and "nodes=6 answered=6" in lines[0]
    # Passes between the walks depend on how long a walk takes here (the schedule: tests/crawler/test_monitor.py).
    assert set(kinds) <= {("crawl",), ("revalidation",)}
    assert rows(db, "SELECT count(*) FROM crawls WHERE ended_at IS NULL") == [(0,)]
    assert rows(db, "SELECT count(DISTINCT local_node_id) FROM crawls") == [(1,)]
    assert f"monitor: {len(kinds)} cycles" in err
    assert "metrics on http://127.0.0.1:" in err  # an empty host is loopback


async def test_sigterm_inside_a_walk_ends_it_cleanly_and_exits_0(tmp_path: Path) -> None:
    """A bootnode that never answers, a 30 s timeout: the first walk is busy when SIGTERM comes."""
    db = tmp_path / "monitor.db"
    silent = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
    await silent.bind(("127.0.0.1", 0))
    url = f"enode://{DiscoveryV4(generate_private_key()).pubkey.hex()}@127.0.0.1:{silent.getsockname()[1]}"
    with silent:
        proc = await trio.lowlevel.open_process(
            [ETHCRAWL, "monitor", "--bootnode", url, "--db", str(db), "--udp", "127.0.0.1:0", "--no-dial",
             "--timeout", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        with trio.fail_after(DEADLINE):
            await silent.recvfrom(2048)  # the walk's first Ping: it is running
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    err = await proc.stderr.receive_some(65536) if proc.stderr else b""  # type: ignore[union-attr]
    assert proc.returncode == 0, err
    assert b"monitor cycle kind=crawl" in err and b"stopped=early" in err
    assert rows(db, "SELECT kind, ended_at IS NOT NULL, node_count FROM crawls") == [("crawl", 1, 1)]
