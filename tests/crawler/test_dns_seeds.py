"""Crawl seeds from DNS lists: ``--bootnode enrtree://...`` and the lists of ``--network``.

The real lists are never asked: the default-network path is tested with the resolver pointed at a server on
127.0.0.1 that serves the *published* holesky tree (rebuilt from its nodes.json, with its published signature: it
verifies with the real list key), and the whole command inside ``unshare -n`` (no network at all).
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from dnsserver import serve_txt
from ground_truth import load_fixture_json

from ethcrawl.crawler.bootnodes import dns_lists
from ethcrawl.crawler.cli import main
from ethcrawl.crawler.cli_crawl import _list_seeds
from ethcrawl.wire.crypto import PrivateKey
from ethcrawl.wire.dnsdisc import LinkEntry, RootEntry, Tree, make_tree
from ethcrawl.wire.enr import ENR

ETHCRAWL = str(Path(sys.executable).with_name("ethcrawl"))
HOLESKY = ("data", "dnstrees", "all.holesky.ethdisco.net@0002ab9")
UNSHARE_DEADLINE = 60  # s: two lookups failing at once, then a 1-second crawl


def published_holesky() -> tuple[dict[str, str], dict[str, ENR]]:
    """The TXT records of all.holesky.ethdisco.net as published at 0002ab9, and its records by node id."""
    nodes = load_fixture_json(*HOLESKY, "nodes.json")
    info = load_fixture_json(*HOLESKY, "enrtree-info.json")
    records = {key: ENR.from_text(entry["record"]) for key, entry in nodes.items()}
    tree = make_tree(records.values(), [], seq=info["seq"])
    signature = base64.urlsafe_b64decode(info["signature"] + "==")
    root = RootEntry(enr_root=tree.root.enr_root, link_root=tree.root.link_root, seq=info["seq"], signature=signature)
    return Tree(root, tree.entries).txt_records("all.holesky.ethdisco.net"), records


def test_the_network_lists_are_the_published_ones() -> None:
    urls = dns_lists("holesky")
    assert load_fixture_json(*HOLESKY, "enrtree-info.json")["url"] in urls
    assert [u.rpartition("@")[2] for u in urls] == ["all.holesky.ethdisco.net", "snap.holesky.ethdisco.net"]
    with pytest.raises(ValueError):
        dns_lists("nonet")


def test_default_lists_give_their_records_and_a_missing_one_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    txt, records = published_holesky()
    with serve_txt(txt) as server:
        seeds = _list_seeds(dns_lists("holesky"), server.address)
    assert {s.node_id.hex() for s in seeds if s.node_id} == set(records)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("warning: DNS list enrtree://") and "snap.holesky.ethdisco.net: no such name" in err[0]


def test_a_list_record_without_udp_is_no_seed() -> None:
    """A listed record with only a TCP port can be dialled but not asked for neighbours: left out of the seeds."""
    with_udp = ENR.create(PrivateKey(b"\x01" * 32), seq=1, pairs={"ip": "127.0.0.1", "udp": 30303, "tcp": 30303})
    tcp_only = ENR.create(PrivateKey(b"\x02" * 32), seq=1, pairs={"ip": "127.0.0.1", "tcp": 30303})
    key = PrivateKey(b"\x03" * 32)
    txt = make_tree([with_udp, tcp_only], [], seq=1).signed(key).txt_records("mixed.test")
    with serve_txt(txt) as server:
        seeds = _list_seeds([LinkEntry.for_key(key, "mixed.test").text()], server.address)
    assert seeds == [with_udp]


def test_a_malformed_enrtree_seed_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["crawl", "--bootnode", "enrtree://NOTAKEY@x.test", "--db", ":memory:"])
    assert result.exit_code == 2 and "--bootnode" in result.output and "enrtree" in result.output


def test_enrtree_seeds_that_all_fail_never_fall_back_to_the_public_bootnodes(tmp_path: Path) -> None:
    """Given only a list, a failing list is one line and no crawl: never mainnet's bootnodes instead."""
    url = load_fixture_json(*HOLESKY, "enrtree-info.json")["url"]
    with serve_txt({}) as server:
        result = CliRunner().invoke(
            main,
            ["crawl", "--bootnode", url, "--dns-server", server.spec, "--db", str(tmp_path / "c.db"), "--udp", "127.0.0.1:0"],
        )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"warning: DNS list {url}: all.holesky.ethdisco.net: no such name",
        "Error: no seed to start from: the DNS lists gave no records (see the warnings above)",
    ]
    assert not (tmp_path / "c.db").exists() and result.stdout == ""


def test_default_network_crawl_without_any_network_reports_each_list_and_goes_on(tmp_path: Path) -> None:
    """The real default path (system resolver, public lists and bootnodes) inside a network namespace with no
    interface up: nothing can leave the machine.  Each list is one line, and the crawl runs on its bootnodes."""
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.fail("this test needs 'unshare -n' (root, util-linux) to keep the public lists unreachable")
    done = subprocess.run(
        ["unshare", "-n", ETHCRAWL, "crawl", "--network", "holesky", "--db", str(tmp_path / "c.db"),
         "--duration", "1", "--no-dial"],
        capture_output=True, text=True, timeout=UNSHARE_DEADLINE,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: DNS list")]
    assert len(warnings) == 2 and all(url in done.stderr for url in dns_lists("holesky"))
    assert "Traceback" not in done.stderr
    assert done.stdout.startswith("crawl 1: ")
