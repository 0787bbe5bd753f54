"""Regenerate (or check) crawler/data/findnode_targets.bin, the FINDNODE target table.

    python tools/gen_findnode_targets.py           # write the file, print its keccak256
    python tools/gen_findnode_targets.py --check   # regenerate in memory, compare with the file

The file is deterministic (see ethcrawl.crawler.targets), so --check must pass
on any machine; after a deliberate change, paste the printed digest into
targets.DATA_FILE_KECCAK.
"""

from __future__ import annotations

import argparse
import sys
import time

from ethcrawl.crawler.targets import DATA_FILE, DATA_FILE_KECCAK, TargetTable
from ethcrawl.wire.crypto import keccak256


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()

    start = time.perf_counter()
    data = TargetTable.generate().to_bytes()
    elapsed = time.perf_counter() - start
    digest = keccak256(data).hex()
    print(f"generated {len(data)} bytes in {elapsed:.2f} s, keccak256 {digest}")

    if args.check:
        ok = DATA_FILE.read_bytes() == data and DATA_FILE_KECCAK.hex() == digest
        print("matches the committed file and digest" if ok else "MISMATCH with the committed file or digest")
        return 0 if ok else 1
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    DATA_FILE.write_bytes(data)
    print(f"wrote {DATA_FILE}")
    if DATA_FILE_KECCAK.hex() != digest:
        print(f"update targets.DATA_FILE_KECCAK to {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
