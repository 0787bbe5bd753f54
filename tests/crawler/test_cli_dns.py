"""ethcrawl key generate / dns sign / dns to-txt / dns to-zone against the published lists and the worked example."""

from __future__ import annotations

import json
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import dns.rdatatype
import dns.zone
import pytest
from click.testing import CliRunner
from ground_truth import fixture_path, load_fixture_json

from ethcrawl.crawler.cli import main
from ethcrawl.crawler.cli_crawl import _node_key
from ethcrawl.crawler.cli_dns import CHARACTER_STRING_LIMIT, split_character_strings
from ethcrawl.crawler.keyfile import read_key_file
from ethcrawl.wire.crypto import PrivateKey, keccak256
from ethcrawl.wire.dnsdisc import BranchEntry, entry_name, parse_entry, parse_root, parse_url

PUBLISHED = [
    "all.holesky.ethdisco.net@0002ab9",
    "all.sepolia.ethdisco.net@0002ab9",
    "all.hoodi.ethdisco.net@0002ab9",
    "les.goerli.ethdisco.net@6e89061",
    "les.sepolia.ethdisco.net@e929d2d",
    "les.mainnet.ethdisco.net@4b86760",
]
EXAMPLE: dict[str, Any] = load_fixture_json("data", "dnstrees", "example-tree.json")
GO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith("Error: ")
    return line


def copy_list(folder: str, tmp_path: Path, name: str | None = None) -> Path:
    target = tmp_path / (name or folder.split("@")[0])
    shutil.copytree(fixture_path("data", "dnstrees", folder), target)
    return target


def write_key(path: Path, key: PrivateKey) -> Path:
    path.write_text(key.secret.hex())
    return path


KEY = PrivateKey(keccak256(b"ethcrawl test_cli_dns key"))


# ------------------------------------------------------------------ key generate


def test_key_generate_writes_geths_format(tmp_path: Path) -> None:
    path = tmp_path / "list.key"
    code, out, _ = run("key", "generate", str(path))
    assert code == 0
    data = path.read_bytes()
    assert re.fullmatch(rb"[0-9a-f]{64}", data)  # crypto.SaveECDSA: hex, no newline
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = read_key_file(str(path))
    loaded = _node_key(str(path))  # the crawl's --node-key reads the same file
    assert loaded is not None and loaded.secret == key.secret == bytes.fromhex(data.decode())
    assert len(out.strip()) == 64


def test_key_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "list.key"
    path.write_text("keep me")
    code, _, err = run("key", "generate", str(path))
    assert code == 1
    assert "refusing to overwrite" in one_error_line(err)
    assert path.read_text() == "keep me"


def test_key_generate_into_missing_directory(tmp_path: Path) -> None:
    code, _, err = run("key", "generate", str(tmp_path / "no" / "such.key"))
    assert code == 1 and "cannot create it" in one_error_line(err)


# ------------------------------------------------------------------ dns to-txt on the published lists


@pytest.mark.parametrize("folder", PUBLISHED)
def test_to_txt_of_a_published_list_verifies_and_serves_every_entry(folder: str, tmp_path: Path) -> None:
    directory = copy_list(folder, tmp_path)
    info = json.loads((directory / "enrtree-info.json").read_text())
    code, out, err = run("dns", "to-txt", str(directory))
    assert code == 0, err
    records = json.loads(out)
    domain = parse_url(info["url"]).domain
    root = parse_root(records[domain])
    assert root.seq == info["seq"] and root.text().endswith("sig=" + info["signature"])
    assert root.verify(parse_url(info["url"]).pubkey)
    nodes = json.loads((directory / "nodes.json").read_text())
    leaves = [text for text in records.values() if text.startswith("enr:")]
    assert sorted(leaves) == sorted(node["record"] for node in nodes.values())
    for name, text in records.items():
        if name != domain:
            assert name == f"{entry_name(text)}.{domain}"
    assert list(records) == sorted(records)  # Go marshals a map with sorted keys


def test_to_txt_refuses_a_tampered_list(tmp_path: Path) -> None:
    directory = copy_list("all.holesky.ethdisco.net@0002ab9", tmp_path)
    nodes = json.loads((directory / "nodes.json").read_text())
    del nodes[sorted(nodes)[3]]
    (directory / "nodes.json").write_text(json.dumps(nodes))
    code, _, err = run("dns", "to-txt", str(directory))
    assert code == 1 and "invalid signature" in one_error_line(err)


def test_to_txt_writes_a_file_without_newline(tmp_path: Path) -> None:
    directory = copy_list("les.goerli.ethdisco.net@6e89061", tmp_path)
    out = tmp_path / "txt.json"
    code, stdout, _ = run("dns", "to-txt", str(directory), str(out))
    assert code == 0 and stdout == ""
    text = out.read_text()
    assert not text.endswith("\n") and len(json.loads(text)) == 1 + 7 + 1 + 1  # root, leaves, branch, empty l=
    assert text.startswith('{\n    "')  # go-ethereum's 4-space indent


# ------------------------------------------------------------------ dns sign


def _example_directory(tmp_path: Path) -> Path:
    directory = copy_list(EXAMPLE["nodes_source"].split("/")[0], tmp_path, "anything")
    (directory / "enrtree-info.json").write_text(json.dumps({"links": EXAMPLE["links"]}))
    return directory


def test_sign_then_to_txt_rebuild_the_worked_example_byte_for_byte(tmp_path: Path) -> None:
    directory = _example_directory(tmp_path)
    key_file = write_key(tmp_path / "example.key", PrivateKey(bytes.fromhex(EXAMPLE["private_key"])))
    code, out, err = run("dns", "sign", str(directory), str(key_file), "--domain", EXAMPLE["domain"], "--seq", str(EXAMPLE["seq"]))
    assert code == 0, err
    assert out.strip() == EXAMPLE["url"]
    raw = (directory / "enrtree-info.json").read_text()
    info = json.loads(raw)
    assert list(info) == ["url", "seq", "signature", "links", "lastModified"]  # geth's dnsMetaJSON order
    assert not raw.endswith("\n") and raw.startswith('{\n    "url"')
    assert (info["url"], info["seq"], info["signature"], info["links"]) == (
        EXAMPLE["url"], EXAMPLE["seq"], EXAMPLE["signature"], EXAMPLE["links"]
    )
    assert GO_TIME.fullmatch(info["lastModified"])
    code, out, err = run("dns", "to-txt", str(directory))
    assert code == 0, err
    assert json.loads(out) == EXAMPLE["txt"]


@pytest.mark.parametrize("folder", PUBLISHED)
def test_sign_bumps_seq_and_keeps_the_domain(folder: str, tmp_path: Path) -> None:
    directory = copy_list(folder, tmp_path, "dirname.example.org")
    before = json.loads((directory / "enrtree-info.json").read_text())
    key_file = write_key(tmp_path / "k.key", KEY)
    code, out, err = run("dns", "sign", str(directory), str(key_file))
    assert code == 0, err
    info = json.loads((directory / "enrtree-info.json").read_text())
    assert info["seq"] == before["seq"] + 1
    url = parse_url(info["url"])
    assert url.domain == parse_url(before["url"]).domain  # kept from the info file, not the directory name
    assert url.pubkey == KEY.public_key.format(compressed=True) and out.strip() == info["url"]
    code, _, err = run("dns", "to-txt", str(directory))  # what we signed, we verify
    assert code == 0, err


def test_sign_domain_from_directory_name_and_flags(tmp_path: Path) -> None:
    directory = copy_list("les.sepolia.ethdisco.net@e929d2d", tmp_path, "fresh.example.org")
    (directory / "enrtree-info.json").unlink()
    key_file = write_key(tmp_path / "k.key", KEY)
    assert run("dns", "sign", str(directory), str(key_file))[0] == 0
    info = json.loads((directory / "enrtree-info.json").read_text())
    assert parse_url(info["url"]).domain == "fresh.example.org" and info["seq"] == 1 and info["links"] == []
    assert run("dns", "sign", str(directory), str(key_file), "--domain", "other.example.org", "--seq", "40")[0] == 0
    info = json.loads((directory / "enrtree-info.json").read_text())
    assert parse_url(info["url"]).domain == "other.example.org" and info["seq"] == 40


def test_sign_legacy_max_children(tmp_path: Path) -> None:
    """--max-children 18 signs the pre-v1.10.2 shape; to-txt must be told the same to verify it."""
    directory = copy_list("all.holesky.ethdisco.net@0002ab9", tmp_path)
    key_file = write_key(tmp_path / "k.key", KEY)
    assert run("dns", "sign", str(directory), str(key_file), "--max-children", "18")[0] == 0
    code, _, err = run("dns", "to-txt", str(directory))
    assert code == 1 and "--max-children" in one_error_line(err)
    code, out, err = run("dns", "to-txt", str(directory), "--max-children", "18")
    assert code == 0, err
    branches = [parse_entry(t) for t in json.loads(out).values() if t.startswith("enrtree-branch:") and t != "enrtree-branch:"]
    assert sorted(len(b.children) for b in branches if isinstance(b, BranchEntry)) == [2, 3, 18]


# ------------------------------------------------------------------ dns to-zone


def _zone_texts(zone_file: str, *, standalone: bool) -> dict[str, list[bytes]]:
    zone = dns.zone.from_text(zone_file, origin=None, relativize=False, check_origin=standalone)
    found = {}
    for name, rdataset in zone.iterate_rdatasets(dns.rdatatype.TXT):
        (rdata,) = rdataset
        found[name.to_text(omit_final_dot=True)] = list(rdata.strings)
    return found


@pytest.mark.parametrize("standalone", [True, False])
def test_to_zone_parses_back_to_the_txt_records(tmp_path: Path, standalone: bool) -> None:
    directory = copy_list("all.hoodi.ethdisco.net@0002ab9", tmp_path)
    code, txt, _ = run("dns", "to-txt", str(directory))
    assert code == 0
    extra = ["--nameserver", "ns1.example.org"] if standalone else []
    code, zone_file, err = run("dns", "to-zone", str(directory), "--ttl", "600", *extra)
    assert code == 0, err
    strings = _zone_texts(zone_file, standalone=standalone)
    assert {name: b"".join(parts).decode() for name, parts in strings.items()} == json.loads(txt)
    assert all(len(s) <= CHARACTER_STRING_LIMIT for parts in strings.values() for s in parts)
    assert any(len(parts) > 1 for parts in strings.values())  # full branches (365 chars) do need splitting
    assert re.search(r"^[A-Z2-7]{26} 600 IN TXT ", zone_file, re.M)
    if standalone:
        assert re.search(r"^@ 1800 IN SOA ns1\.example\.org\. hostmaster\.all\.hoodi\.ethdisco\.net\. 1893 ", zone_file, re.M)


def test_split_character_strings() -> None:
    assert split_character_strings("") == [b""]
    assert split_character_strings("a" * 255) == [b"a" * 255]
    assert split_character_strings("a" * 256) == [b"a" * 255, b"a"]
    assert b"".join(split_character_strings("x" * 1000)) == b"x" * 1000


def test_to_zone_writes_a_file(tmp_path: Path) -> None:
    directory = copy_list("les.mainnet.ethdisco.net@4b86760", tmp_path)
    out = tmp_path / "list.zone"
    assert run("dns", "to-zone", str(directory), "--out", str(out))[0] == 0
    texts = _zone_texts(out.read_text(), standalone=False)
    assert len(texts) == 3  # root, the one leaf (its own e=), the empty l= branch


# ------------------------------------------------------------------ bad input: one line, exit 1


def _bad_nodes(directory: Path, content: str) -> None:
    (directory / "nodes.json").write_text(content)


GOOD_RECORD = EXAMPLE["txt"]["37VXHXL56XDIOC3HTYWADWSFBU.nodes.example.org"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("not json", "not JSON"),
        ("[]", "expected a JSON object"),
        ('{"00": 5}', "no 'record' text"),
        ('{"00": {"record": "enr:x!"}}', "not base64"),
        (json.dumps({"00" * 32: {"record": GOOD_RECORD}}), "not the key it is listed under"),
    ],
)
@pytest.mark.parametrize("command", ["sign", "to-txt", "to-zone"])
def test_malformed_nodes_json(tmp_path: Path, command: str, content: str, why: str) -> None:
    directory = copy_list("les.goerli.ethdisco.net@6e89061", tmp_path)
    _bad_nodes(directory, content)
    key_file = write_key(tmp_path / "k.key", KEY)
    args = [str(directory), str(key_file)] if command == "sign" else [str(directory)]
    code, _, err = run("dns", command, *args)
    assert code == 1
    line = one_error_line(err)
    assert why in line and "nodes.json" in line


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        ("no-nodes", "no such file"),
        ("no-dir", "not a directory"),
        ("bad-key", "not a node key file"),
        ("no-key", "cannot read it"),
        ("bad-link", "invalid link"),
        ("bad-info", "not JSON"),
        ("bad-seq", "'seq' must be a whole number"),
        ("bad-domain", "--domain"),
    ],
)
def test_sign_bad_input(tmp_path: Path, setup: str, why: str) -> None:
    directory = copy_list("les.goerli.ethdisco.net@6e89061", tmp_path)
    key_file = write_key(tmp_path / "k.key", KEY)
    extra: list[str] = []
    if setup == "no-nodes":
        (directory / "nodes.json").unlink()
    elif setup == "no-dir":
        directory = tmp_path / "missing"
    elif setup == "bad-key":
        key_file.write_text("zz" * 32)
    elif setup == "no-key":
        key_file = tmp_path / "none.key"
    elif setup == "bad-link":
        (directory / "enrtree-info.json").write_text(json.dumps({"links": ["enrtree://x@y"]}))
    elif setup == "bad-info":
        (directory / "enrtree-info.json").write_text("{")
    elif setup == "bad-seq":
        (directory / "enrtree-info.json").write_text(json.dumps({"seq": "7"}))
    elif setup == "bad-domain":
        extra = ["--domain", "no spaces.org"]
    before = (directory / "enrtree-info.json").read_bytes() if (directory / "enrtree-info.json").exists() else None
    code, _, err = run("dns", "sign", str(directory), str(key_file), *extra)
    assert code == 1
    assert why in one_error_line(err)
    after = (directory / "enrtree-info.json").read_bytes() if (directory / "enrtree-info.json").exists() else None
    assert after == before  # nothing written


@pytest.mark.parametrize(
    ("info", "why"),
    [
        ({"seq": 1, "signature": "AAAA", "links": []}, "missing 'url'"),
        ({"url": "enrtree://nope@x.org", "seq": 1, "signature": "AAAA"}, "invalid 'url'"),
        ({"url": EXAMPLE["url"], "seq": 1}, "missing signature"),
        ({"url": EXAMPLE["url"], "seq": 1, "signature": "!!"}, "invalid signature"),
    ],
)
@pytest.mark.parametrize("command", ["to-txt", "to-zone"])
def test_export_needs_a_signed_list(tmp_path: Path, command: str, info: dict[str, Any], why: str) -> None:
    directory = copy_list("les.goerli.ethdisco.net@6e89061", tmp_path)
    (directory / "enrtree-info.json").write_text(json.dumps(info))
    code, out, err = run("dns", command, str(directory))
    assert code == 1 and out == ""
    assert why in one_error_line(err)


def test_commands_are_registered() -> None:
    code, out, _ = run("--help")
    assert code == 0 and " dns " in out and " key " in out


@pytest.mark.parametrize(
    ("micro", "text"), [(0, "2026-06-10T09:15:34Z"), (667844, "2026-06-10T09:15:34.667844Z"), (500000, "2026-06-10T09:15:34.5Z")]
)
def test_write_tree_info_times_as_go_marshals_them(tmp_path: Path, micro: int, text: str) -> None:
    from datetime import datetime, timezone

    from ethcrawl.crawler.cli_dns import write_tree_info
    from ethcrawl.wire.dnsdisc import make_tree

    tree = make_tree([], [], seq=3).signed(KEY)
    url = "enrtree://" + EXAMPLE["url"].split("//")[1]
    write_tree_info(str(tmp_path), url=url, tree=tree, now=datetime(2026, 6, 10, 9, 15, 34, micro, tzinfo=timezone.utc))
    info = json.loads((tmp_path / "enrtree-info.json").read_text())
    assert info["lastModified"] == text and info["seq"] == 3 and info["links"] == []
