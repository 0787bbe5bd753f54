"""Crawl a local devnet (another process) and report time, coverage, CPU and memory against the crypto bound.

    python bench/crawl_bench.py --sizes 1000 3000 10000

For each size: an `ethcrawl devnet` process, then `ethcrawl crawl` as a child
process whose own CPU time and peak RSS come from wait4() — the crawler alone,
nothing of the devnet. Each size is crawled twice: discovery only (--no-dial),
then with RLPx dials, so CPU per FindNode exchange and per dial are separated.
Only 127.0.0.x addresses are used.

``--discovery v4`` (the default) keeps the figures comparable with the discv4
crypto bound below; ``both`` or ``v5`` walks the devnet's v5 tables too (its
nodes speak both), and reports time, coverage and CPU per FINDNODE of either
protocol without a bound (the v5 exchange bounds are in bench/discv5_bench.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crypto_cost import CryptoCost, measure_crypto_cost  # noqa: E402

ETHCRAWL = str(Path(sys.executable).with_name("ethcrawl"))
STATS = re.compile(r"crawl stats (.*)")
OPEN_FILES = 65536  # a devnet node holds a UDP socket and a TCP listener


@dataclass(frozen=True, slots=True)
class Run:
    wall: float
    cpu: float
    max_rss_kb: int
    stats: dict[str, int]
    stdout: str


def _raise_nofile() -> None:
    """In the devnet child: as many open files as the kernel allows (10,000 nodes need ~20,300)."""
    try:
        limit = min(OPEN_FILES, int(Path("/proc/sys/fs/nr_open").read_text()))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    except (OSError, ValueError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_crawl(args: list[str]) -> Run:
    started = time.perf_counter()
    proc = subprocess.Popen([ETHCRAWL, "-v", "crawl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"crawl failed: {stderr[-2000:]}")
    found = STATS.search(stderr)
    stats = {k: int(v) for k, v in (kv.split("=") for kv in found.group(1).split())} if found else {}
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, stats, stdout)


def baseline() -> Run:
    """A crawler that learns nothing (one silent seed, stopped at once): start-up CPU and idle peak RSS."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        from ethcrawl.wire.crypto import generate_private_key, pubkey_from_private

        url = f"enode://{pubkey_from_private(generate_private_key()).hex()}@127.0.0.1:{silent.getsockname()[1]}"
        with tempfile.TemporaryDirectory() as tmp:
            return run_crawl(["--bootnode", url, "--db", f"{tmp}/b.db", "--udp", "127.0.0.1:0", "--no-dial", "--duration", "0.05"])


def start_devnet(args: list[str], manifest: Path, start_limit: float = 300.0) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """``ethcrawl devnet ARGS --manifest MANIFEST`` in another process, and its manifest once it is up."""
    devnet = subprocess.Popen(
        [ETHCRAWL, "devnet", *args, "--manifest", str(manifest)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_raise_nofile,
    )
    deadline = time.monotonic() + start_limit
    while not manifest.exists() or not manifest.stat().st_size:
        if devnet.poll() is not None or time.monotonic() > deadline:
            stop_devnet(devnet)
            raise RuntimeError(f"devnet did not start: {devnet.stderr.read() if devnet.stderr else ''}")
        time.sleep(0.2)
    time.sleep(0.5)  # the manifest is written whole; let the file settle
    return devnet, json.loads(manifest.read_text())


def stop_devnet(devnet: subprocess.Popen[str]) -> None:
    devnet.send_signal(signal.SIGTERM)
    try:
        devnet.wait(timeout=30)
    except subprocess.TimeoutExpired:
        devnet.kill()


def bench_size(nodes: int, cost: CryptoCost, base: Run, discovery: str = "v4") -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        devnet, spec = start_devnet(["--nodes", str(nodes), "--duration", "3600"], Path(tmp) / "manifest.json")
        try:
            members = spec["nodes"]
            boot = spec["bootnodes"][0]["enr" if discovery != "v4" else "enode"]
            common = [
                "--bootnode", boot, "--udp", "127.0.0.1:0", "--concurrency", "64", "--dial-concurrency", "64",
                "--discovery", discovery,
            ]
            disc = run_crawl([*common, "--db", f"{tmp}/disc.db", "--no-dial"])
            full = run_crawl([*common, "--db", f"{tmp}/full.db"])
            found = _found(f"{tmp}/full.db")
            # Nodes that tell their client id: every node with a listener that reaches Hello.
            dialable = {m["node_id"] for m in members if m["dialable"]}
            with_client = _with_client(f"{tmp}/full.db")
        finally:
            stop_devnet(devnet)
    s = disc.stats
    packets_in, packets_out, findnode = s.get("packets_in", 0), s.get("packets_out", 0), s.get("findnode", 0)
    v5_findnode = s.get("v5_findnode", 0)
    disc_cpu = max(disc.cpu - base.cpu, 0.0)  # without interpreter start-up and imports
    # The discv4 bound; with v5 in the mix there is no single per-packet bound, so none is claimed.
    crypto = packets_out * (cost.sign + 2 * cost.keccak_small) + packets_in * (cost.recover + 3 * cost.keccak_small)
    if discovery != "v4":
        crypto = 0.0
    exchanges = findnode + v5_findnode
    dials = full.stats.get("dials", 0)
    dial_cpu = max(full.cpu - disc.cpu, 0.0)
    dial_crypto = 2 * cost.keygen + 3 * cost.ecdh + cost.sign  # the initiator's share of one handshake
    # The nodes this walk can find: those speaking a protocol it walks (a v4 walk never meets beacon nodes).
    walked = {"v4", "v5"} if discovery == "both" else {discovery}
    member_ids = {m["node_id"] for m in members if walked & set(m.get("protocols", ["v4"]))}
    return {
        "nodes": nodes,
        "discovery": discovery,
        "wall_discovery_s": round(disc.wall, 1),
        "wall_full_s": round(full.wall, 1),
        "found_share": round(len(found & member_ids) / len(member_ids), 4),
        "dialable_with_client_id_share": round(len(with_client & dialable) / len(dialable), 4) if dialable else None,
        "cpu_discovery_s": round(disc_cpu, 2),
        "findnode_exchanges": findnode,
        "v5_findnode_exchanges": v5_findnode,
        "answered_v4": s.get("answered_v4"),
        "answered_v5": s.get("answered_v5"),
        "speak_v4": sum("v4" in m.get("protocols", ["v4"]) for m in members),
        "speak_v5": sum("v5" in m.get("protocols", []) for m in members),
        "reachable_by_this_walk": len(member_ids),
        "packets_in": packets_in,
        "packets_out": packets_out,
        "cpu_per_findnode_ms": round(1000 * disc_cpu / exchanges, 3) if exchanges else None,
        "crypto_per_findnode_ms": round(1000 * crypto / findnode, 3) if findnode and crypto else None,
        "findnode_cpu_to_crypto": round(disc_cpu / crypto, 2) if crypto else None,
        "dials": dials,
        "cpu_per_dial_ms": round(1000 * dial_cpu / dials, 2) if dials else None,
        "dial_cpu_to_crypto": round(dial_cpu / (dials * dial_crypto), 2) if dials else None,
        "peak_rss_mb": round(full.max_rss_kb / 1024, 1),
        "bytes_per_known_node": round((full.max_rss_kb - base.max_rss_kb) * 1024 / nodes),
        "peak_rss_discovery_mb": round(disc.max_rss_kb / 1024, 1),  # the --no-dial run
        "bytes_per_known_node_discovery": round((disc.max_rss_kb - base.max_rss_kb) * 1024 / nodes),
    }


def _found(db: str) -> set[str]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return {bytes(r[0]).hex() for r in conn.execute("SELECT node_id FROM nodes")}


def _with_client(db: str) -> set[str]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return {bytes(r[0]).hex() for r in conn.execute("SELECT DISTINCT node_id FROM dial_attempts WHERE client_id IS NOT NULL")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--discovery", choices=("v4", "v5", "both"), default="v4", help="which DHTs the crawler walks")
    args = parser.parse_args()
    # CPU time, as the crawler's figures are (wait4): on a loaded machine wall time per call would inflate the bound.
    cost = measure_crypto_cost(0.3, clock=time.process_time)
    base = baseline()
    print(f"crypto: sign {cost.sign * 1e6:.1f} us, recover {cost.recover * 1e6:.1f} us, ECDH {cost.ecdh * 1e6:.1f} us, "
          f"keygen {cost.keygen * 1e6:.1f} us, keccak {cost.keccak_small * 1e6:.1f} us; idle crawler: "
          f"start-up CPU {base.cpu:.2f} s, peak RSS {base.max_rss_kb / 1024:.1f} MB")
    for size in args.sizes:
        print(json.dumps(bench_size(size, cost, base, args.discovery)), flush=True)


if __name__ == "__main__":
    main()
