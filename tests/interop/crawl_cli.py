"""``ethcrawl crawl`` as a subprocess for the interop tests: bounded in time, output kept, stats parsed."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

__all__ = ["CRAWL_LIMIT", "CrawlRun", "crawl_stats", "run_crawl_cli"]

CRAWL_LIMIT = 60.0  # s: the issues' bound for a whole `ethcrawl crawl` run on loopback
OUTPUT_TAIL = 4000  # characters of the crawler's output shown in a failure message


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlRun:
    """One `ethcrawl crawl` subprocess: how it ended and what it said."""

    returncode: int
    elapsed: float  # s, process start to exit
    output: str  # stdout then stderr, tail only

    def stats(self) -> dict[str, int]:
        return crawl_stats(self.output)


def crawl_stats(output: str) -> dict[str, int]:
    """The key=value fields of the crawl's "crawl stats" log line (empty if it logged none)."""
    match = re.search(r"crawl stats (.*)", output)
    if match is None:
        return {}
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


async def run_crawl_cli(args: Sequence[str], tmp_path: Path, *, limit: float = CRAWL_LIMIT) -> CrawlRun:
    """``ethcrawl -v crawl <args>`` in a subprocess, killed after ``limit`` seconds (a test failure)."""
    command = [sys.executable, "-m", "ethcrawl.crawler", "-v", "crawl", *args]
    out_path, err_path = tmp_path / "crawl.out", tmp_path / "crawl.err"
    started = trio.current_time()
    # Files, not pipes: a run killed at the limit still leaves its output for the failure message.
    with out_path.open("wb") as out, err_path.open("wb") as err:
        with trio.move_on_after(limit) as scope:
            done = await trio.run_process(command, stdout=out, stderr=err, check=False)
    elapsed = trio.current_time() - started
    output = (out_path.read_bytes() + err_path.read_bytes()).decode(errors="replace")[-OUTPUT_TAIL:]
    if scope.cancelled_caught:
        pytest.fail(f"`ethcrawl crawl` did not end by itself within {limit} s:\n{output}", pytrace=False)
    return CrawlRun(returncode=done.returncode, elapsed=elapsed, output=output)
