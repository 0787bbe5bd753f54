"""``ethcrawl dns sync``: a list served on 127.0.0.1 written back as go-ethereum's tree definition (nodes.json,
enrtree-info.json); bad lists refused in one line with a non-zero exit and nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from dnsserver import serve_txt
from ground_truth import load_fixture_json, load_fixture_json_at_collection

from ethcrawl.crawler.cli import main
from ethcrawl.crawler.cli_dns_sync import GO_ZERO_TIME
from ethcrawl.wire.crypto import PrivateKey
from ethcrawl.wire.dnsdisc import LinkEntry, make_tree
from ethcrawl.wire.enr import ENR

EXAMPLE = load_fixture_json_at_collection("data", "dnstrees", "example-tree.json")
HOLESKY = ("data", "dnstrees", "all.holesky.ethdisco.net@0002ab9")
GO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_sync_writes_the_tree_definition_as_devp2p(tmp_path: Path) -> None:
    out = tmp_path / "list"
    with serve_txt(EXAMPLE["txt"]) as server:
        code, stdout, stderr = run("dns", "sync", EXAMPLE["url"], str(out), "--dns-server", server.spec)
    assert code == 0, stderr
    assert stdout.strip() == f"nodes.example.org: seq 7, 21 records, 2 links (28 entries fetched) -> {out}"
    published = load_fixture_json(*HOLESKY, "nodes.json")
    nodes_text = (out / "nodes.json").read_text()
    nodes = json.loads(nodes_text)
    assert list(nodes) == sorted(published)  # ordered by node id, as Go marshals a map
    for node_id, entry in nodes.items():
        assert entry == {
            "seq": published[node_id]["seq"],
            "record": published[node_id]["record"],
            "firstResponse": GO_ZERO_TIME,
            "lastResponse": GO_ZERO_TIME,
            "lastCheck": GO_ZERO_TIME,
        }
    info_text = (out / "enrtree-info.json").read_text()
    info = json.loads(info_text)
    assert {k: info[k] for k in ("url", "seq", "signature", "links")} == {
        "url": EXAMPLE["url"], "seq": 7, "signature": EXAMPLE["signature"], "links": EXAMPLE["links"],
    }  # fmt: skip
    assert list(info) == ["url", "seq", "signature", "links", "lastModified"]
    assert GO_TIME.fullmatch(info["lastModified"])
    # geth's MarshalIndent bytes: four spaces, no newline at the end.
    for text in (nodes_text, info_text):
        assert text.startswith('{\n    "') and not text.endswith("\n")


def test_sync_into_the_domain_named_directory_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with serve_txt(EXAMPLE["txt"]) as server:
        assert run("dns", "sync", EXAMPLE["url"], "--dns-server", server.spec)[0] == 0
    assert json.loads((tmp_path / "nodes.example.org" / "enrtree-info.json").read_text())["seq"] == 7


def example_at_seq(seq: int) -> dict[str, str]:
    """The example tree re-signed by its own (throwaway) key at another seq."""
    records = [ENR.from_text(e["record"]) for e in load_fixture_json(*HOLESKY, "nodes.json").values()]
    key = PrivateKey(bytes.fromhex(EXAMPLE["private_key"]))
    return make_tree(records, EXAMPLE["links"], seq=seq).signed(key).txt_records(EXAMPLE["domain"])


def test_a_seq_below_the_last_sync_is_refused_and_nothing_written(tmp_path: Path) -> None:
    with serve_txt(EXAMPLE["txt"]) as server:
        assert run("dns", "sync", EXAMPLE["url"], str(tmp_path), "--dns-server", server.spec)[0] == 0
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        server.replace(example_at_seq(6))
        code, stdout, stderr = run("dns", "sync", EXAMPLE["url"], str(tmp_path), "--dns-server", server.spec)
        assert code == 1 and stdout == ""
        assert stderr.strip().endswith("nodes.example.org: root seq 6 is below the 7 synced before")
        assert len(stderr.strip().splitlines()) == 1
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
        # A newer seq is taken.
        server.replace(example_at_seq(8))
        assert run("dns", "sync", EXAMPLE["url"], str(tmp_path), "--dns-server", server.spec)[0] == 0
    assert json.loads((tmp_path / "enrtree-info.json").read_text())["seq"] == 8


def test_a_list_signed_by_another_key_is_refused_in_one_line(tmp_path: Path) -> None:
    other = LinkEntry.for_key(PrivateKey(b"\x01" * 32), EXAMPLE["domain"]).text()
    with serve_txt(EXAMPLE["txt"]) as server:
        code, stdout, stderr = run("dns", "sync", other, str(tmp_path / "out"), "--dns-server", server.spec)
    assert code == 1
    assert stderr.startswith("Error: ") and "signature does not verify" in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()


def test_a_tampered_entry_is_refused_in_one_line(tmp_path: Path) -> None:
    records = dict(EXAMPLE["txt"])
    name = next(n for n, t in records.items() if t.startswith("enrtree-branch:") and len(t) > 255)
    records[name] = records[name][:253]  # besu's captured trees: full branches cut at 253 characters
    with serve_txt(records) as server:
        code, _, stderr = run("dns", "sync", EXAMPLE["url"], str(tmp_path / "out"), "--dns-server", server.spec)
    assert code == 1 and "no TXT record hashes to the name" in stderr and len(stderr.strip().splitlines()) == 1


def test_no_answer_is_one_line(tmp_path: Path) -> None:
    with serve_txt({}) as server:
        address = server.spec
    # Nothing listens there any more: every lookup times out.
    code, _, stderr = run("dns", "sync", EXAMPLE["url"], str(tmp_path), "--dns-server", address, "--timeout", "0.3")
    assert code == 1 and "no answer within 0.3 s" in stderr and len(stderr.strip().splitlines()) == 1


def test_bad_arguments_are_usage_errors() -> None:
    assert run("dns", "sync", "enode://nothing")[0] == 2
    assert run("dns", "sync", EXAMPLE["url"], "--dns-server", "dns.example:53")[0] == 2
    assert run("dns", "sync", EXAMPLE["url"], "--dns-server", "127.0.0.1")[0] == 2


def test_a_synced_directory_is_a_tree_definition_dns_to_txt_verifies(tmp_path: Path) -> None:
    """sync then to-txt gives back the very TXT records served: records, links, seq and signature all kept."""
    with serve_txt(EXAMPLE["txt"]) as server:
        assert run("dns", "sync", EXAMPLE["url"], str(tmp_path / "list"), "--dns-server", server.spec)[0] == 0
    code, _, stderr = run("dns", "to-txt", str(tmp_path / "list"), str(tmp_path / "txt.json"))
    assert code == 0, stderr
    assert json.loads((tmp_path / "txt.json").read_text()) == EXAMPLE["txt"]


@pytest.mark.parametrize(("content", "why"), [(b"[" * 200_000, "nested too deeply"), (b"\xff{", "not UTF-8")])
def test_an_unreadable_earlier_definition_is_one_line_before_any_lookup(tmp_path: Path, content: bytes, why: str) -> None:
    (tmp_path / "enrtree-info.json").write_bytes(content)
    # No --dns-server: the refusal must come before a resolver is even made.
    code, _, stderr = run("dns", "sync", EXAMPLE["url"], str(tmp_path))
    assert code == 1 and why in stderr and len(stderr.strip().splitlines()) == 1
