"""Long-run resources of ``ethcrawl monitor``: memory and database size per cycle on a local devnet.

    python bench/monitor_bench.py --nodes 300 --cycles 20 --interval 10 --revalidate 4

An ``ethcrawl devnet`` process (loopback only), then ``ethcrawl monitor`` as another process; each time a cycle's
crawl row ends, one line: cycle, kind, the monitor's resident memory (VmRSS from /proc, the monitor alone), the
database's logical size (its pages, WAL included) and its row counts.  At the end, the growth per cycle of each (least squares over
the cycles after the first walk, when the network is known) and per node and cycle.  With ``--keep`` the
retention prunes old crawls after each walk: the database then stops growing once the window is full.

The devnet is static (the ideal profile): what the monitor adds each cycle is history (sightings, dial
attempts, edges), not new nodes, so a flat RSS and a linear database are the expected shape.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crawl_bench import ETHCRAWL, start_devnet, stop_devnet  # noqa: E402

POLL = 0.2  # s between looks at the database
TABLES = ("nodes", "sightings", "edges", "dial_attempts", "enr_history")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def db_bytes(db: Path) -> int:
    """The database's logical size (pages in use, WAL included): the files alone would count the WAL's slack."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        return int(pages) * int(conn.execute("PRAGMA page_size").fetchone()[0])


def ended_crawls(db: Path) -> list[tuple[int, str]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT id, kind FROM crawls WHERE ended_at IS NOT NULL ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # created but no schema yet, or busy
        return []


def row_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--cycles", type=int, default=20, help="walks (revalidation passes come in between)")
    parser.add_argument("--interval", type=float, default=10.0, help="s between walks")
    parser.add_argument("--revalidate", type=float, default=4.0, help="s after which an answered node is due")
    parser.add_argument("--keep", default=None, help="retention, e.g. 60s (default: keep everything)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest, db = Path(tmp) / "devnet.json", Path(tmp) / "monitor.db"
        devnet, net = start_devnet(["--nodes", str(args.nodes), "--seed", "1", "--plain"], manifest)
        command = [
            ETHCRAWL, "monitor", "--bootnode", net["bootnodes"][0]["enr"], "--db", str(db), "--udp", "127.0.0.1:0",
            "--cycles", str(args.cycles), "--interval", f"{args.interval}s", "--revalidate", f"{args.revalidate}s",
            "--timeout", "0.3", "--v5-timeout", "0.3",
        ] + (["--keep", args.keep] if args.keep else [])
        monitor = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        last_id = 0  # crawls are counted by id: retention deletes old rows
        lines: list[dict[str, object]] = []
        try:
            print("cycle kind          rss_mb  db_kb  " + "  ".join(TABLES), flush=True)
            while True:
                finished = monitor.poll() is not None
                crawls = ended_crawls(db)
                for crawl_id, kind in [(i, k) for i, k in crawls if i > last_id]:
                    rss = rss_kb(monitor.pid) if not finished else 0
                    counts = row_counts(db)
                    line = {"cycle": len(lines), "crawl": crawl_id, "kind": kind, "rss_kb": rss, "db_bytes": db_bytes(db), **counts}
                    lines.append(line)
                    print(f"{line['cycle']:5d} {kind:12s} {rss / 1024:7.1f} {db_bytes(db) / 1024:6.0f}  "
                          + "  ".join(f"{counts[t]:>{len(t)}d}" for t in TABLES), flush=True)
                    last_id = crawl_id
                if finished:
                    break
                time.sleep(POLL)
        finally:
            if monitor.poll() is None:
                monitor.terminate()
            stop_devnet(devnet)
        if monitor.returncode != 0:
            raise SystemExit(f"monitor failed: {monitor.stderr.read()[-2000:] if monitor.stderr else ''}")
    settled = [line for line in lines[1:] if line["rss_kb"]]  # after the first walk; the last has no process
    rss_slope = slope([(float(l["cycle"]), float(l["rss_kb"])) for l in settled])  # type: ignore[arg-type]
    db_slope = slope([(float(l["cycle"]), float(l["db_bytes"])) for l in lines[1:]])  # type: ignore[arg-type]
    print(json.dumps({
        "nodes": args.nodes, "cycles": len(lines), "walks": args.cycles, "keep": args.keep,
        "rss_kb_per_cycle": round(rss_slope, 1), "db_bytes_per_cycle": round(db_slope),
        "db_bytes_per_node_cycle": round(db_slope / args.nodes, 1),
        "rss_first_mb": round(float(settled[0]["rss_kb"]) / 1024, 1) if settled else None,  # type: ignore[arg-type]
        "rss_last_mb": round(float(settled[-1]["rss_kb"]) / 1024, 1) if settled else None,  # type: ignore[arg-type]
        "db_last_kb": round(float(lines[-1]["db_bytes"]) / 1024) if lines else None,  # type: ignore[arg-type]
    }))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
