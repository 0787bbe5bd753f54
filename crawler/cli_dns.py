"""``ethcrawl dns`` (publish EIP-1459 node lists) and ``ethcrawl key`` (list signing keys).

A list lives in a directory as go-ethereum's ``devp2p dns`` keeps it: ``nodes.json``
(what ``export nodes-json`` writes) and ``enrtree-info.json`` (url, seq, signature,
links, lastModified).  ``dns sign`` builds the tree from nodes.json and signs it;
``dns to-txt`` and ``dns to-zone`` rebuild it, check the signature against the url's
key, and write the records for a DNS server or provider.  Uploading is not ours.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import click

from ethcrawl.db.errors import InvalidRecord
from ethcrawl.db.nodesjson import entry_record
from ethcrawl.wire.crypto import PrivateKey, node_id_from_pubkey, pubkey_from_private
from ethcrawl.wire.dnsdisc import (
    MAX_CHILDREN,
    LinkEntry,
    Tree,
    make_tree,
    parse_root,
    parse_url,
)
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import WireError

from .cli_common import output, read_json, write_text
from .keyfile import KeyFileError, generate_key_file, read_key_file

__all__ = [
    "dns_group", "key_group", "TreeDefinition", "load_definition", "write_tree_info", "zone_text",
    "split_character_strings",
    "INFO_FILE", "NODES_FILE",
]  # fmt: skip

INFO_FILE = "enrtree-info.json"
NODES_FILE = "nodes.json"
JSON_INDENT = 4  # go-ethereum's jsonIndent for enrtree-info.json and TXT JSON
# go-ethereum's deploy TTLs (cmd/devp2p/dnscmd.go): the root changes with every signing, entries never
# change (their name is their hash), so they may be cached for long.
ROOT_TTL = 30 * 60  # s
ENTRY_TTL = 4 * 7 * 24 * 60 * 60  # s
CHARACTER_STRING_LIMIT = 255  # bytes per DNS character-string (RFC 1035 3.3); longer TXT data is several
SOA_SERIAL_MODULUS = 2**32  # RFC 1982 serials are 32 bits; the tree's seq (uint64) is reduced to fit
# SOA timers of a standalone zone (s): refresh, retry, expire, negative-cache TTL; common defaults (RFC 1912).
SOA_TIMERS = (3600, 600, 1209600, 300)

max_children_option = click.option(
    "--max-children", type=click.IntRange(2, 64), default=MAX_CHILDREN, show_default=True,
    help="Children per branch: 13 as go-ethereum since v1.10.2; 18 rebuilds trees signed by older versions.",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeDefinition:
    """A list directory: its records, and what enrtree-info.json says (absent fields as go-ethereum reads them)."""

    directory: str
    records: tuple[ENR, ...]
    url: str
    seq: int
    signature: str
    links: tuple[str, ...]


def _info_path(directory: str) -> str:
    return os.path.join(directory, INFO_FILE)


def _load_records(path: str) -> tuple[ENR, ...]:
    """The records of a nodes.json, each checked as go-ethereum's nodeSet.verify does."""
    if not os.path.exists(path):
        raise click.ClickException(f"{path}: no such file (write it with 'ethcrawl export nodes-json --out {path}')")
    data = read_json(path)
    if not isinstance(data, dict):
        raise click.ClickException(f"{path}: expected a JSON object keyed by node id")
    records = []
    for key, entry in data.items():
        try:
            records.append(entry_record(key, entry))
        except InvalidRecord as exc:
            raise click.ClickException(f"{path}: node {key[:16]}: {exc}") from None
    return tuple(records)


_KIND_NAMES = {int: "whole number", str: "string", list: "list"}


def _field(info: Mapping[str, Any], name: str, kind: type, default: Any, path: str) -> Any:
    """A field of enrtree-info.json; absent or null reads as go-ethereum's zero value."""
    value = info.get(name, default)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool):
        raise click.ClickException(f"{path}: '{name}' must be a {_KIND_NAMES[kind]}")
    return value


def load_definition(directory: str) -> TreeDefinition:
    """Read a list directory; every problem is one clear line (ClickException)."""
    if not os.path.isdir(directory):
        raise click.ClickException(f"{directory}: not a directory")
    info_path = _info_path(directory)
    info: Any = read_json(info_path) if os.path.exists(info_path) else {}
    if not isinstance(info, dict):
        raise click.ClickException(f"{info_path}: expected a JSON object")
    seq = _field(info, "seq", int, 0, info_path)
    if not 0 <= seq < 2**64:
        raise click.ClickException(f"{info_path}: 'seq' {seq} out of range")
    links = _field(info, "links", list, [], info_path)
    for link in links:
        try:
            parse_url(link if isinstance(link, str) else "")
        except WireError as exc:
            raise click.ClickException(f"{info_path}: invalid link {link!r}: {exc}") from None
    return TreeDefinition(
        directory=directory,
        records=_load_records(os.path.join(directory, NODES_FILE)),
        url=_field(info, "url", str, "", info_path),
        seq=seq,
        signature=_field(info, "signature", str, "", info_path),
        links=tuple(links),
    )


def _make_tree(definition: TreeDefinition, seq: int, max_children: int) -> Tree:
    try:
        return make_tree(definition.records, definition.links, seq=seq, max_children=max_children)
    except WireError as exc:
        raise click.ClickException(f"{definition.directory}: cannot build the tree: {exc}") from None


def _signed_tree(definition: TreeDefinition, max_children: int) -> tuple[str, Tree]:
    """(domain, tree with its published signature), refused unless the signature verifies (geth's rule)."""
    info_path = _info_path(definition.directory)
    if not definition.url:
        raise click.ClickException(f"missing 'url' field in {info_path}, run 'ethcrawl dns sign' first")
    try:
        link = parse_url(definition.url)
    except WireError as exc:
        raise click.ClickException(f"invalid 'url' field in {info_path}: {exc}") from None
    if not definition.signature:
        raise click.ClickException(f"missing signature in {info_path}, run 'ethcrawl dns sign' first")
    tree = _make_tree(definition, definition.seq, max_children)
    try:
        root = parse_root(f"{tree.root.signed_text()} sig={definition.signature}")
    except WireError:
        root = None
    if root is None or not root.verify(link.pubkey):
        raise click.ClickException(
            f"invalid signature on the tree in {definition.directory}, run 'ethcrawl dns sign' to update it"
            f" (or give the --max-children it was signed with)"
        )
    return link.domain, Tree(root, tree.entries)


def _rfc3339_nano(moment: datetime) -> str:
    """UTC time as Go's time.Time marshals it: RFC 3339 with the fraction's trailing zeros dropped."""
    text = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def write_tree_info(directory: str, *, url: str, tree: Tree, now: datetime) -> None:
    """Write DIRECTORY/enrtree-info.json for a signed ``tree`` as go-ethereum's writeTreeMetadata (sign and sync).

    Fields in dnsMetaJSON's order, 4-space indent, no trailing newline.
    """
    info = {
        "url": url,
        "seq": tree.root.seq,
        "signature": tree.root.text().rsplit(" sig=", 1)[1],
        "links": tree.links(),
        "lastModified": _rfc3339_nano(now),
    }
    write_text(_info_path(directory), json.dumps(info, indent=JSON_INDENT))


def _load_key(path: str) -> PrivateKey:
    try:
        return read_key_file(path)
    except KeyFileError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


@click.group("dns")
def dns_group() -> None:
    """EIP-1459 DNS node lists: sign a nodes.json as a tree, write its TXT records or a zone file."""


@dns_group.command("sign")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("keyfile", type=click.Path(dir_okay=False))
@click.option("--domain", default=None, help="Domain of the list (default: the url's in enrtree-info.json, else DIRECTORY's name).")
@click.option("--seq", type=click.IntRange(0, 2**64 - 1), default=None, help="Sequence number (default: the last one + 1).")
@max_children_option
def dns_sign(directory: str, keyfile: str, domain: str | None, seq: int | None, max_children: int) -> None:
    """Build the tree of DIRECTORY/nodes.json, sign it with KEYFILE, write DIRECTORY/enrtree-info.json.

    As go-ethereum's `devp2p dns sign`, except that KEYFILE is a plain hex key (`ethcrawl key generate`,
    `devp2p key generate`) rather than an encrypted keystore.  Prints the list's enrtree:// URL.
    """
    definition = load_definition(directory)
    key = _load_key(keyfile)
    if domain is None:
        domain = os.path.basename(os.path.abspath(directory))
        if definition.url:
            try:
                domain = parse_url(definition.url).domain
            except WireError as exc:
                raise click.ClickException(f"invalid 'url' field in {_info_path(directory)}: {exc}") from None
    if seq is None:
        if definition.seq >= 2**64 - 1:
            raise click.ClickException(f"{_info_path(directory)}: seq cannot be bumped past {definition.seq}")
        seq = definition.seq + 1
    try:
        url = LinkEntry.for_key(key, domain).text()
    except WireError as exc:
        raise click.ClickException(f"--domain {domain!r}: {exc}") from None
    tree = _make_tree(definition, seq, max_children).signed(key)
    write_tree_info(directory, url=url, tree=tree, now=datetime.now(timezone.utc))
    click.echo(url)


@dns_group.command("to-txt")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("out", default="-", required=False)
@max_children_option
def dns_to_txt(directory: str, out: str, max_children: int) -> None:
    """The TXT records of the signed list in DIRECTORY as JSON (name -> text), as `devp2p dns to-txt`.

    Writes to OUT, or stdout if OUT is omitted or "-".  Refuses a list whose signature does not verify.
    """
    domain, tree = _signed_tree(load_definition(directory), max_children)
    text = json.dumps(tree.txt_records(domain), indent=JSON_INDENT, sort_keys=True)
    if out == "-":
        click.echo(text)
    else:
        write_text(out, text)


def split_character_strings(text: str) -> list[bytes]:
    """``text`` as DNS character-strings of at most 255 bytes each; a client joins them back."""
    data = text.encode("utf-8")
    return [data[i:i + CHARACTER_STRING_LIMIT] for i in range(0, len(data), CHARACTER_STRING_LIMIT)] or [b""]


def _quoted(chunk: bytes) -> str:
    """A master-file <character-string> (RFC 1035 5.1): printable ASCII as is, '"' and '\\' escaped, others \\DDD."""
    parts = []
    for byte in chunk:
        if byte in b'"\\':
            parts.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            parts.append(chr(byte))
        else:
            parts.append(f"\\{byte:03d}")
    return '"' + "".join(parts) + '"'


def zone_text(
    domain: str, records: Mapping[str, str], *, ttl: int, root_ttl: int, seq: int, nameserver: str | None
) -> str:
    """A master file (BIND format) serving ``records`` (as Tree.txt_records(domain) gives them).

    Without ``nameserver`` the file holds only the TXT records, to $INCLUDE into the zone that
    holds ``domain``; with it, a standalone zone with SOA (serial = seq) and NS at the apex.
    """
    origin = domain.rstrip(".") + "."
    lines = [f"; EIP-1459 node list {domain}, seq {seq}, written by ethcrawl", f"$ORIGIN {origin}", f"$TTL {ttl}"]
    if nameserver is not None:
        ns = nameserver if nameserver.endswith(".") else nameserver + "."
        timers = " ".join(str(t) for t in SOA_TIMERS)
        lines.append(f"@ {root_ttl} IN SOA {ns} hostmaster.{origin} {seq % SOA_SERIAL_MODULUS} {timers}")
        lines.append(f"@ {root_ttl} IN NS {ns}")
    for name, text in sorted(records.items(), key=lambda item: (item[0] != domain, item[0])):
        owner = "@" if name == domain else name.removesuffix("." + domain)
        strings = " ".join(_quoted(chunk) for chunk in split_character_strings(text))
        lines.append(f"{owner} {root_ttl if owner == '@' else ttl} IN TXT {strings}")
    return "\n".join(lines) + "\n"


@dns_group.command("to-zone")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--out", default="-", show_default=True, help="File to write, or - for stdout.")
@click.option("--ttl", type=click.IntRange(1, 2**31 - 1), default=ENTRY_TTL, show_default=True, help="TTL of the entries (s).")
@click.option("--root-ttl", type=click.IntRange(1, 2**31 - 1), default=ROOT_TTL, show_default=True, help="TTL of the root (s).")
@click.option("--nameserver", default=None, help="Write a standalone zone: SOA and NS naming this server.")
@max_children_option
def dns_to_zone(directory: str, out: str, ttl: int, root_ttl: int, nameserver: str | None, max_children: int) -> None:
    """The signed list in DIRECTORY as a zone file (BIND format) a DNS server loads.

    Texts over 255 bytes (full branches) are split into several character-strings, which clients
    join.  Without --nameserver the file is for $INCLUDE into the zone holding the list's domain.
    """
    definition = load_definition(directory)
    domain, tree = _signed_tree(definition, max_children)
    text = zone_text(
        domain, tree.txt_records(domain), ttl=ttl, root_ttl=root_ttl, seq=definition.seq, nameserver=nameserver
    )
    with output(out) as handle:
        handle.write(text)


@click.group("key")
def key_group() -> None:
    """secp256k1 key files, in go-ethereum's hex format (devp2p key)."""


@key_group.command("generate")
@click.argument("file", type=click.Path(dir_okay=False))
def key_generate(file: str) -> None:
    """Write a new key to FILE as `devp2p key generate` does (64 hex characters, mode 0600); never overwrites.

    Prints the key's node id.
    """
    try:
        key = generate_key_file(file)
    except KeyFileError as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    click.echo(node_id_from_pubkey(pubkey_from_private(key)).hex())
