"""Re-copy the suite's ground truth from a shared folder into fixtures/ and rewrite its sha256 list.

    python tools/sync_fixtures.py                     # copy from ../shared, rewrite fixtures/README.md's list
    python tools/sync_fixtures.py --shared /path/to/shared
    python tools/sync_fixtures.py --check             # change nothing; exit 1 if a copy or the list is stale

The suite reads only fixtures/ (tests/ground_truth.py); ../shared is where the copies come
from, never needed to run the tests. Files are copied byte for byte (never edited), keeping
their path under the shared folder, so ``fixtures/vectors/eip8.json`` is
``<shared>/vectors/eip8.json``. The list between the markers in fixtures/README.md (path,
source, sha256) is written here and checked by tests/test_fixtures.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BEGIN", "END", "MANIFEST", "Entry", "main", "render_block", "sync"]

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
DEFAULT_SHARED = REPO.parent / "shared"
README = "README.md"  # fixtures/README.md: hand-written, except the block between the markers
BEGIN = "<!-- BEGIN fixture list: written by tools/sync_fixtures.py, do not edit by hand -->"
END = "<!-- END fixture list -->"

GETH = "ethereum/go-ethereum@02b73d4ea7181464175e0a6cbecc0a3a2655a562"
DNS_LISTS = "ethereum/discv4-dns-lists"
DEVP2P = "ethereum/devp2p@51dc101fddd52b5d90e59a2d695a92e4d600cfaf"
EIPS = "ethereum/EIPs@f767a1e8078e17c9b381a91d35a09492189ede1b"
DNS_LISTS_0002AB9 = "0002ab9f5a6357ff91e04f80e7df1221673919e1"  # the commit of the dnstrees/*@0002ab9 lists

# Shared-folder glob -> where its files came from. None: the file's own JSON `source` field says it
# (vectors/upstream/*.json: a list of {repo, commit, paths}). Sources are those named in
# shared/vectors/README.md, shared/data/README.md, shared/data/dnstrees/README.md and specs/*/SOURCE.
MANIFEST: tuple[tuple[str, str | None], ...] = (
    ("INTEROP.md", "the shared folder's measured notes on the npm interop partners (what tests/interop relies on)"),
    ("vectors/README.md", "the shared folder's own description of vectors/"),
    ("vectors/eip8.json", f"EIP-8 'Test Vectors' section, {EIPS} EIPS/eip-8.md"),
    ("vectors/enr_eip778.json", f"EIP-778 'Test Vectors', {EIPS} EIPS/eip-778.md"),
    ("vectors/forkid_eip2124.json", f"{GETH} core/forkid/forkid_test.go TestCreation, params/config.go"),
    ("vectors/bootnodes.json", f"{GETH} params/bootnodes.go"),
    ("vectors/discv5/*.txt", f"{GETH} p2p/discover/v5wire/testdata/"),
    ("vectors/upstream/README.md", "the shared folder's own description of vectors/upstream/"),
    ("vectors/upstream/*.json", None),
    ("specs/devp2p/discv5/discv5-wire-test-vectors.md", f"{DEVP2P} discv5/discv5-wire-test-vectors.md"),
    ("data/README.md", "the shared folder's own description of data/"),
    (
        "data/dnslists/mainnet.part.nodes.json",
        f"{DNS_LISTS} all.mainnet.ethdisco.net/nodes.json (the 309 records with the lowest node ids; "
        "commit not recorded upstream of this copy)",
    ),
    *(
        (f"data/dnslists/{net}.nodes.json", f"{DNS_LISTS}@{DNS_LISTS_0002AB9} all.{net}.ethdisco.net/nodes.json")
        for net in ("sepolia", "holesky", "hoodi")
    ),
    ("data/dnstrees/README.md", "the shared folder's own description of data/dnstrees/"),
    (
        "data/dnstrees/example-tree.json",
        "built for this project from all.holesky@0002ab9 with a throwaway key (see its README)",
    ),
    *(
        (f"data/dnstrees/{name}@{commit[:7]}/*.json", f"{DNS_LISTS}@{commit} {name}/<same file name>")
        for name, commit in (
            ("all.holesky.ethdisco.net", DNS_LISTS_0002AB9),
            ("all.sepolia.ethdisco.net", DNS_LISTS_0002AB9),
            ("all.hoodi.ethdisco.net", DNS_LISTS_0002AB9),
            ("les.goerli.ethdisco.net", "6e890616f7be5e3fb267d06883cdd9f50c7c2e08"),
            ("les.sepolia.ethdisco.net", "e929d2d6173e13f9caaf66265627ba07dabdd2c2"),
            ("les.mainnet.ethdisco.net", "4b867605b1f02dfcffa46c7c20ca655ef0055c17"),
        )
    ),
    (
        "data/client_ids/crawl-2021.json",
        "ethereum/node-crawler@e474feeda82aa39f9949054d4daac9f9157e2cbf frontend/clients.json",
    ),
    (
        "data/client_ids/expected.json",
        "angaz/node-crawler@98769011887359b3f3f1f37e207add5f15bbe532 pkg/common/parse_client_test.go; "
        "ethpandaops ethcore execution client version tests",
    ),
)

# Files made in this repository rather than copied: not synced, but hashed like the rest.
LOCAL: dict[str, str] = {
    "enr/README.md": "this repository",
    "enr/sample.nodes.json": "this repository: 20 entries picked from data/dnslists (see enr/README.md)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    path: str  # relative to fixtures/ (and, for copies, to the shared folder)
    source: str
    sha256: str


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source_field(path: Path) -> str:
    sources = json.loads(path.read_bytes())["source"]
    return "; ".join(f"{s['repo']}@{s['commit']} {', '.join(s['paths'])}" for s in sources)


def _copies(shared: Path) -> dict[str, str]:
    """Relative path -> source, for every file the manifest names; the first matching glob wins."""
    found: dict[str, str] = {}
    for pattern, source in MANIFEST:
        matches = sorted(shared.glob(pattern))
        if not matches:
            raise FileNotFoundError(f"{shared / pattern}: named in the fixture manifest but absent")
        for path in matches:
            rel = path.relative_to(shared).as_posix()
            found.setdefault(rel, source if source is not None else _source_field(path))
    return found


def render_block(entries: list[Entry]) -> str:
    rows = [f"| `{e.path}` | {e.source} | `{e.sha256}` |" for e in sorted(entries, key=lambda e: e.path)]
    return "\n".join([BEGIN, "", "| file | source | sha256 |", "|---|---|---|", *rows, "", END])


def _rewrite_readme(text: str, block: str) -> str:
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"fixtures/{README} lacks the markers {BEGIN!r} ... {END!r}")
    return head + block + tail


def sync(shared: Path, dest: Path, *, check: bool = False) -> list[str]:
    """Copy every manifest file from ``shared`` to ``dest`` and rewrite the list; returns what changed.

    With ``check`` nothing is written: the return value names what a sync would change.
    """
    copies = _copies(shared)
    changed: list[str] = []
    for rel in copies:
        src, dst = shared / rel, dest / rel
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            changed.append(rel)
            if not check:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    # The copies are hashed where they landed; unchecked, a stale copy still shows under `changed`.
    entries = [Entry(path=rel, source=copies[rel], sha256=_sha256(shared / rel)) for rel in copies]
    entries += [Entry(path=rel, source=source, sha256=_sha256(dest / rel)) for rel, source in LOCAL.items()]
    listed = {e.path for e in entries} | {README}
    on_disk = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    strays = sorted(on_disk - listed)
    if strays:
        raise ValueError(f"files in {dest} with no source in tools/sync_fixtures.py: {', '.join(strays)}")
    readme = dest / README
    old = readme.read_text()
    new = _rewrite_readme(old, render_block(entries))
    if new != old:
        changed.append(README)
        if not check:
            readme.write_text(new)
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared folder (default ../shared)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is stale")
    args = parser.parse_args()
    try:
        changed = sync(args.shared.resolve(), FIXTURES, check=args.check)
    except (OSError, ValueError) as exc:
        print(f"sync_fixtures: {exc}", file=sys.stderr)
        return 2
    verb = "stale" if args.check else "updated"
    for rel in changed:
        print(f"{verb}: fixtures/{rel}")
    if not changed:
        print("fixtures/ matches the shared folder")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
