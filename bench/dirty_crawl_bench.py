"""Crawl a dirty devnet (``ethcrawl devnet --profile mainnet``, another process) with no tuning flags.

    python bench/dirty_crawl_bench.py --nodes 1000              # ~1,000 live nodes among ~2,300 dead records
    python bench/dirty_crawl_bench.py --nodes 1000 -- --concurrency 256   # the same with crawl flags of your own

It prints one JSON object: the crawl's wall time (it ends by itself), the share of the findable live nodes it found
and of the findable dialable ones whose client id it got (the manifest says which records a walk from the bootnode
can reach), dead records it stored, and the coverage curve: the share of findable live nodes in the database every
``--sample`` seconds, read from the crawl's SQLite file while it runs.  Only 127.x addresses are used: the devnet's
live nodes sit on 127.0.x.y, its dead records on 127.x addresses where nothing listens.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crawl_bench import ETHCRAWL, start_devnet, stop_devnet  # noqa: E402

DEVNET_START_LIMIT = 600.0  # s: 8,000 live nodes take ~40 s to bind on this machine


def _node_ids(db: Path, sql: str) -> set[str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return {bytes(r[0]).hex() for r in conn.execute(sql)}
    except sqlite3.Error:  # not created yet, or busy: this sample is skipped
        return set()


def bench(nodes: int, seed: int, sample: float, crawl_flags: list[str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "crawl.db"
        devnet, spec = start_devnet(
            ["--profile", "mainnet", "--nodes", str(nodes), "--seed", str(seed), "--duration", "7200"],
            Path(tmp) / "manifest.json", DEVNET_START_LIMIT,
        )
        try:
            # Live and findable, staying to the end; nodes that join during the run count once they are up.
            live_nodes = [n for n in spec["nodes"] if n["findable"] and n.get("leaves_at") is None]
            live = {n["node_id"] for n in live_nodes}
            dialable = {n["node_id"] for n in spec["nodes"] if n["node_id"] in live and n["dialable"]}
            dead = {r["node_id"] for r in spec["records"]}
            started = time.perf_counter()
            crawl = subprocess.Popen(
                [ETHCRAWL, "crawl", "--bootnode", spec["bootnodes"][0]["enr"], "--db", str(db), *crawl_flags],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            curve: list[tuple[float, float]] = []
            while crawl.poll() is None:
                time.sleep(sample)
                found = _node_ids(db, "SELECT node_id FROM nodes")
                curve.append((round(time.perf_counter() - started, 1), round(len(found & live) / len(live), 4)))
            wall = time.perf_counter() - started
            if crawl.returncode != 0:
                raise RuntimeError(f"crawl failed: {crawl.stderr.read() if crawl.stderr else ''}")
            found = _node_ids(db, "SELECT node_id FROM nodes")
            told = _node_ids(db, "SELECT DISTINCT node_id FROM dial_attempts WHERE client_id IS NOT NULL")
            # joins_at counts from the devnet being up, about a second before the crawl started.
            present = {n["node_id"] for n in live_nodes if n.get("joins_at") is None or n["joins_at"] <= wall}
        finally:
            stop_devnet(devnet)
    return {
        "live_findable": len(live),
        "dead_records": len(dead),
        "crawl_flags": crawl_flags,
        "wall_s": round(wall, 1),
        "found_live_share": round(len(found & live) / len(live), 4),
        "live_up_before_the_end": len(present),
        "found_share_of_those_up": round(len(found & present) / len(present), 4),
        "dialable_with_client_id_share": round(len(told & dialable) / len(dialable), 4) if dialable else None,
        "dead_records_stored": len(found & dead),
        "curve": curve,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000, help="live nodes (the profile adds ~2.3 dead records each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between two coverage samples")
    parser.add_argument("crawl_flags", nargs="*", help="extra `ethcrawl crawl` flags, after --")
    args = parser.parse_args()
    print(json.dumps(bench(args.nodes, args.seed, args.sample, args.crawl_flags)), flush=True)


if __name__ == "__main__":
    main()
