"""Crawl a dirty devnet (``ethcrawl devnet --profile mainnet``, other processes) with no tuning flags.

    python bench/dirty_crawl_bench.py --nodes 1000              # ~1,000 live nodes among ~2,300 dead records
    python bench/dirty_crawl_bench.py --nodes 1000 -- --concurrency 256   # the same with crawl flags of your own
    python bench/dirty_crawl_bench.py --nodes 9000 --records 30000        # 30,000 records, 9,000 of them live
    python bench/dirty_crawl_bench.py --nodes 10000 --records 100000 --shards 2

It prints one JSON object: the crawl's wall time (it ends by itself, or is stopped after ``--limit`` s), the
share of the findable live nodes it found and of the findable dialable ones whose client id it got (the
manifest says which records a walk from the bootnode can reach), dead records it stored, and the coverage
curve: the share of findable live nodes in the database every ``--sample`` seconds, read from the crawl's
SQLite file while it runs.  ``--records`` sets the stale share so that the network holds about that many
records (the profile's NAT'd share and sybils stay).  Also the crawler's CPU seconds and peak RSS (wait4:
the crawler alone), the devnet's CPU seconds over the crawl (all its processes, from /proc), and the load
average before and after: this machine is shared, and the load says how much of a core the crawl had.
Only 127.x addresses are used: the devnet's live nodes sit on 127.0.x.y, its dead records on 127.x
addresses where nothing listens.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crawl_bench import ETHCRAWL, STATS, start_devnet, stop_devnet  # noqa: E402

DEVNET_START_LIMIT = 900.0  # s: 10,000 live nodes among 100,000 records take ~2 minutes to plan and bind here
CRAWL_LIMIT = 900.0  # s: a crawl still running then is stopped (SIGINT: it stores what it has) and says so
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NAT_SHARE = 0.10  # the mainnet profile's: --records keeps it and fills the rest with stale records


def _node_ids(db: Path, sql: str) -> set[str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return {bytes(r[0]).hex() for r in conn.execute(sql)}
    except sqlite3.Error:  # not created yet, or busy: this sample is skipped
        return set()


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of running processes so far (0 for one that is gone)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    return total / CLOCK_TICKS


def _devnet_pids(devnet: subprocess.Popen[str]) -> list[int]:
    """The devnet process and its shard workers."""
    try:
        children = Path(f"/proc/{devnet.pid}/task/{devnet.pid}/children").read_text().split()
    except OSError:
        children = []
    return [devnet.pid, *map(int, children)]


def stale_share_for(nodes: int, records: int) -> float:
    """The --stale-share that makes ``nodes`` live nodes about ``records`` records in all."""
    share = 1.0 - NAT_SHARE - nodes / records
    if share <= 0:
        raise SystemExit(f"{records} records cannot hold {nodes} live nodes and {NAT_SHARE:.0%} NAT'd ones")
    return round(share, 4)


def _first_time_at(curve: list[tuple[float, float]], share: float) -> float | None:
    return next((t for t, s in curve if s >= share), None)


def bench(
    nodes: int, seed: int, sample: float, crawl_flags: list[str], *, records: int | None = None, shards: int = 1,
    limit: float = CRAWL_LIMIT, keep: Path | None = None,
) -> dict[str, object]:
    devnet_flags = ["--profile", "mainnet", "--nodes", str(nodes), "--seed", str(seed), "--duration", "7200"]
    if records is not None:
        devnet_flags += ["--stale-share", str(stale_share_for(nodes, records))]
    if shards > 1:
        devnet_flags += ["--shards", str(shards)]
    with tempfile.TemporaryDirectory() as scratch:
        tmp = str(keep) if keep is not None else scratch
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
        db = Path(tmp) / "crawl.db"
        devnet, spec = start_devnet(devnet_flags, Path(tmp) / "manifest.json", DEVNET_START_LIMIT)
        try:
            # Live and findable, staying to the end; nodes that join during the run count once they are up.
            live_nodes = [n for n in spec["nodes"] if n["findable"] and n.get("leaves_at") is None]
            live = {n["node_id"] for n in live_nodes}
            dialable = {n["node_id"] for n in spec["nodes"] if n["node_id"] in live and n["dialable"]}
            dead = {r["node_id"] for r in spec["records"]}
            devnet_pids = _devnet_pids(devnet)
            load_before = os.getloadavg()
            devnet_cpu_before = _cpu_seconds(devnet_pids)
            started = time.perf_counter()
            with open(Path(tmp) / "crawl.out", "w") as out, open(Path(tmp) / "crawl.err", "w") as err:
                crawl = subprocess.Popen(
                    [ETHCRAWL, "-v", "crawl", "--bootnode", spec["bootnodes"][0]["enr"], "--db", str(db), *crawl_flags],
                    stdout=out, stderr=err, text=True,
                )
            curve: list[tuple[float, float]] = []
            ended_by_itself = True
            while True:
                # wait4, not Popen.poll: the crawler's own CPU and peak RSS come with its exit status.
                pid, status, usage = os.wait4(crawl.pid, os.WNOHANG)
                if pid:
                    break
                elapsed = time.perf_counter() - started
                if elapsed > limit and ended_by_itself:
                    ended_by_itself = False
                    crawl.send_signal(signal.SIGINT)
                time.sleep(sample)
                found = _node_ids(db, "SELECT node_id FROM nodes")
                curve.append((round(time.perf_counter() - started, 1), round(len(found & live) / len(live), 4)))
            wall = time.perf_counter() - started
            devnet_cpu = _cpu_seconds(devnet_pids) - devnet_cpu_before
            load_after = os.getloadavg()
            stderr = (Path(tmp) / "crawl.err").read_text()
            if os.waitstatus_to_exitcode(status) != 0 and ended_by_itself:
                raise RuntimeError(f"crawl failed: {stderr[-2000:]}")
            stats_line = STATS.search(stderr)
            stats = {k: int(v) for k, v in (kv.split("=") for kv in stats_line.group(1).split())} if stats_line else {}
            found = _node_ids(db, "SELECT node_id FROM nodes")
            told = _node_ids(db, "SELECT DISTINCT node_id FROM dial_attempts WHERE client_id IS NOT NULL")
            # joins_at counts from the devnet being up, about a second before the crawl started.
            present = {n["node_id"] for n in live_nodes if n.get("joins_at") is None or n["joins_at"] <= wall}
        finally:
            stop_devnet(devnet)
    result: dict[str, Any] = {
        "live_findable": len(live),
        "dead_records": len(dead),
        "records": len(spec["nodes"]) + len(dead),
        "devnet_shards": shards,
        "crawl_flags": crawl_flags,
        "wall_s": round(wall, 1),
        "ended_by_itself": ended_by_itself,
        "found_live_share": round(len(found & live) / len(live), 4),
        "live_up_before_the_end": len(present),
        "found_share_of_those_up": round(len(found & present) / len(present), 4),
        "dialable_with_client_id_share": round(len(told & dialable) / len(dialable), 4) if dialable else None,
        "dead_records_stored": len(found & dead),
        "crawler_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "crawler_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "devnet_cpu_s": round(devnet_cpu, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "time_to_99_s": _first_time_at(curve, 0.99),
        "time_to_99_5_s": _first_time_at(curve, 0.995),
        "crawl_stats": stats,
        "curve": curve,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000, help="live nodes (the profile adds ~2.3 dead records each)")
    parser.add_argument("--records", type=int, default=None, help="records in all (sets the devnet's --stale-share)")
    parser.add_argument("--shards", type=int, default=1, help="devnet processes (ethcrawl devnet --shards)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between two coverage samples")
    parser.add_argument("--limit", type=float, default=CRAWL_LIMIT, help="s after which a crawl is stopped")
    parser.add_argument("--keep", type=Path, default=None, help="directory that keeps the manifest, database and crawl log")
    parser.add_argument("crawl_flags", nargs="*", help="extra `ethcrawl crawl` flags, after --")
    args = parser.parse_args()
    result = bench(
        args.nodes, args.seed, args.sample, args.crawl_flags, records=args.records, shards=args.shards,
        limit=args.limit, keep=args.keep,
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
