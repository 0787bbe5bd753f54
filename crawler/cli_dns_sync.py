"""``ethcrawl dns sync``: download an EIP-1459 list into a tree definition directory, as ``devp2p dns sync`` does.

The directory holds go-ethereum's two files: ``nodes.json`` (the records, in ``devp2p nodeset``'s format) and
``enrtree-info.json`` (url, seq, signature, links, lastModified), so ``devp2p dns sign``/``to-txt`` and ours read it.
The ``--dns-server`` option and its parser are shared with ``ethcrawl crawl`` (enrtree:// seeds).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import trio

from ethcrawl.wire.dnsdisc import DNSDiscError, parse_url

from .cli_common import parse_host_port, read_json, write_text
from .cli_dns import INFO_FILE, JSON_INDENT, NODES_FILE, write_tree_info
from .dns import LOOKUP_TIMEOUT, DNSListError, DNSResolver, SyncedTree, sync_tree

__all__ = ["sync_command", "dns_server_option", "make_resolver", "write_tree_definition", "previous_seq"]

# A synced record has never been checked by us: geth writes Go's zero time.Time (its omitempty does not omit a
# struct) for the three times of such a nodes.json entry, and leaves out the zero score.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
DNS_SERVER_HELP = "Ask this DNS server (IP:PORT, e.g. 127.0.0.1:5353) instead of the system's resolver."
MAX_LOOKUP_TIMEOUT = 60.0  # s: a DNS answer later than a minute is no answer


def _dns_server(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, int] | None:
    return None if value is None else parse_host_port(value, min_port=1)


dns_server_option = click.option(
    "--dns-server", "dns_server", default=None, metavar="IP:PORT", callback=_dns_server, help=DNS_SERVER_HELP
)


def make_resolver(server: tuple[str, int] | None, timeout: float = LOOKUP_TIMEOUT) -> DNSResolver:
    """A resolver for a command, or one clear line when the system has none configured."""
    try:
        return DNSResolver(server, timeout=timeout)
    except DNSListError as exc:
        raise click.ClickException(str(exc)) from None


def _write(path: Path, data: Any) -> None:
    # geth writes json.MarshalIndent's bytes with no newline after them; so do we, for byte-equal files.
    write_text(os.fspath(path), json.dumps(data, indent=JSON_INDENT))


def write_tree_definition(directory: Path, tree: SyncedTree, *, now: datetime) -> None:
    """DIR/nodes.json and DIR/enrtree-info.json of ``tree``, as ``devp2p dns sync`` writes them."""
    nodes = {
        record.node_id.hex(): {
            "seq": record.seq,
            "record": record.to_text(),
            "firstResponse": GO_ZERO_TIME,
            "lastResponse": GO_ZERO_TIME,
            "lastCheck": GO_ZERO_TIME,
        }
        for record in tree.records
        if record.node_id is not None  # a leaf parsed as a v4 record always has one
    }
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / NODES_FILE, dict(sorted(nodes.items())))
    write_tree_info(os.fspath(directory), url=tree.url, tree=tree.as_tree(), now=now)


def previous_seq(directory: Path, domain: str) -> int | None:
    """The seq of the list at ``domain`` that DIR/enrtree-info.json holds, if it holds that list."""
    path = directory / INFO_FILE
    if not path.exists():
        return None
    info = read_json(os.fspath(path))  # unreadable, not UTF-8, not JSON or too deep: one clear line
    if not isinstance(info, dict) or not isinstance(info.get("url"), str):
        return None  # a definition not yet signed (no url): nothing synced before
    try:
        previous = parse_url(info["url"])
    except DNSDiscError:
        raise click.ClickException(f"{path}: 'url' is not an enrtree:// URL") from None
    seq = info.get("seq")
    if previous.domain.lower() != domain.lower() or not isinstance(seq, int) or isinstance(seq, bool):
        return None
    return seq


@click.command("sync")
@click.argument("url")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@dns_server_option
@click.option("--timeout", type=click.FloatRange(min=0.01, max=MAX_LOOKUP_TIMEOUT), default=LOOKUP_TIMEOUT,
              show_default=True, help="Seconds to wait for each DNS lookup.")  # fmt: skip
def sync_command(url: str, directory: Path | None, dns_server: tuple[str, int] | None, timeout: float) -> None:
    """Download the node list at URL (enrtree://KEY@DOMAIN) into DIRECTORY (default: DOMAIN).

    The root must be signed by KEY, every entry must hash to its name, and the seq must not be below the one in
    DIRECTORY/enrtree-info.json from an earlier sync of the same list.  Writes DIRECTORY/nodes.json and
    DIRECTORY/enrtree-info.json as 'devp2p dns sync' does.  Links to other lists are listed there, not followed
    (sync each by its own URL; a crawl seeded with the URL follows them).
    """
    try:
        domain = parse_url(url.strip()).domain
    except DNSDiscError as exc:
        raise click.BadParameter(str(exc), param_hint="URL") from None
    target = directory if directory is not None else Path(domain)
    min_seq = previous_seq(target, domain)
    resolver = make_resolver(dns_server, timeout)
    try:
        result = trio.run(lambda: sync_tree(resolver, url.strip(), min_seq=min_seq, follow_links=False))
    except (DNSListError, DNSDiscError) as exc:
        raise click.ClickException(f"{url.strip()}: {exc}") from None
    tree = result.tree
    try:
        write_tree_definition(target, tree, now=datetime.now(timezone.utc))
    except OSError as exc:
        raise click.ClickException(f"{target}: cannot write the tree definition ({exc.strerror or exc})") from None
    click.echo(
        f"{domain}: seq {tree.root.seq}, {len(tree.records)} records, {len(tree.links)} links "
        f"({result.fetched} entries fetched) -> {os.fspath(target)}"
    )
    for why, count in result.dropped:
        click.echo(f"{domain}: dropped {count} entries: {why}", err=True)

