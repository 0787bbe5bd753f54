"""RLPx handshakes per second: ethcrawl against @ethereumjs/devp2p, measured side by side in one run.

    python bench/rlpx_vs_ethereumjs.py                # about 15 seconds
    python bench/rlpx_vs_ethereumjs.py --seconds 0.2  # rough, for a smoke run
    python bench/rlpx_vs_ethereumjs.py --json         # one JSON object instead of the table

Both are measured the same way: both sides of each handshake in one process, one core, nothing on the wire.
A handshake is an initiator and a recipient object (each draws its nonce and ephemeral key), auth written and
read, ack written and read, frame secrets derived on both sides; static key pairs are cycled so no cache can
favour one pair. The JS side is bench/js/rlpx_handshake_bench.mjs run by node with the packages the interop
tests installed (tests/interop/node_modules), so the library version is the one the interop tests talk to.
The two measurements run one after the other, not at once, so they do not share the CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wire_bench import HANDSHAKE_KEYS, handshake  # noqa: E402

from ethcrawl.wire.crypto import generate_private_key  # noqa: E402

__all__ = ["Rate", "main", "measure_ethcrawl", "measure_ethereumjs"]

REPO = Path(__file__).resolve().parents[1]
JS_SCRIPT = REPO / "bench" / "js" / "rlpx_handshake_bench.mjs"
JS_MODULES = REPO / "tests" / "interop" / "node_modules"
# seconds: node's start-up and module loading on top of the measured time; a hung node must not hang the bench
JS_OVERHEAD_TIMEOUT = 60.0
WARMUP = 20  # handshakes before the clock starts, as the JS side does for its JIT
BATCH = 20  # handshakes between clock reads


@dataclass(frozen=True, slots=True, kw_only=True)
class Rate:
    handshakes: int
    failed: int  # handshakes the library itself could not complete (their time is in `seconds`)
    seconds: float

    @property
    def per_second(self) -> float:
        return self.handshakes / self.seconds


def _timed(one: Callable[[int], bool], seconds: float) -> Rate:
    for i in range(WARMUP):
        one(i)
    done = failed = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds or done == 0:
        for _ in range(BATCH):
            if one(done + failed):
                done += 1
            else:
                failed += 1
        elapsed = time.perf_counter() - start
    return Rate(handshakes=done, failed=failed, seconds=elapsed)


def measure_ethcrawl(seconds: float) -> dict[str, Rate]:
    """Our full handshakes per second, both sides in this process, EIP-8 and legacy."""
    keys = [(generate_private_key(), generate_private_key()) for _ in range(HANDSHAKE_KEYS)]
    rates = {}
    for label, eip8 in (("eip8", True), ("legacy", False)):

        def one(i: int, eip8: bool = eip8) -> bool:
            a, b = keys[i % len(keys)]
            handshake(a, b, eip8=eip8)  # raises unless both sides completed
            return True

        rates[label] = _timed(one, seconds)
    return rates


def measure_ethereumjs(seconds: float, node: str) -> tuple[dict[str, Rate], dict[str, str]]:
    """@ethereumjs/devp2p's handshakes per second from its own process; also the node and library versions."""
    completed = subprocess.run(
        [node, str(JS_SCRIPT), "--seconds", str(seconds), "--keys", str(HANDSHAKE_KEYS), "--modules", str(JS_MODULES)],
        capture_output=True,
        text=True,
        timeout=JS_OVERHEAD_TIMEOUT + 4 * seconds,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{JS_SCRIPT.name} failed (exit {completed.returncode}): {completed.stderr.strip()}")
    result = json.loads(completed.stdout)
    rates = {
        label: Rate(handshakes=result[label]["handshakes"], failed=result[label]["failed"], seconds=result[label]["seconds"])
        for label in ("eip8", "legacy")
    }
    return rates, {"node": result["node"], "devp2p": result["devp2p"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per figure and side (default 3)")
    parser.add_argument("--node", default=shutil.which("node"), help="the node binary (default: node on PATH)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    if args.node is None:
        parser.error("node is not on PATH; pass --node")
    if not (JS_MODULES / "@ethereumjs" / "devp2p").is_dir():
        parser.error(f"{JS_MODULES} has no @ethereumjs/devp2p: run `npm ci` in tests/interop first")

    js, versions = measure_ethereumjs(args.seconds, args.node)
    ours = measure_ethcrawl(args.seconds)
    rows = {
        label: {
            "ethcrawl": asdict(ours[label]) | {"per_second": ours[label].per_second},
            "ethereumjs": asdict(js[label]) | {"per_second": js[label].per_second},
            "ratio": ours[label].per_second / js[label].per_second,
        }
        for label in ("eip8", "legacy")
    }
    if args.json:
        print(json.dumps({"python": platform.python_version(), **versions, "handshakes": rows}, indent=2))
        return 0
    print(
        f"RLPx handshakes/s, both sides in one process (Python {platform.python_version()}, "
        f"node {versions['node']}, @ethereumjs/devp2p {versions['devp2p']}, {args.seconds:g} s each)"
    )
    print(f"{'handshake':<10} {'ethcrawl':>10} {'ethereumjs':>11} {'ratio':>7}  ethereumjs failures")
    for label, row in rows.items():
        print(
            f"{label:<10} {ours[label].per_second:>10.0f} {js[label].per_second:>11.1f} "
            f"{row['ratio']:>6.1f}x  {js[label].failed} of {js[label].handshakes + js[label].failed}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
