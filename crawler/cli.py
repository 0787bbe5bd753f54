"""The ``ethcrawl`` command line: a thin click layer over wire/ and crawler/.

``main`` is the root group; it owns the options every command shares
(``--version``, ``-v/--verbose``).  Each feature adds its commands as a group
or command registered with ``main.add_command(...)``, ideally from its own
module, so this file stays a table of contents.  Commands print results to
stdout (one JSON object per line where that makes sense), diagnostics to
stderr, and never a traceback for bad input: exit 1 when some input failed,
2 for usage errors (click's default).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import click

from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import WireError

__all__ = ["main", "enr_group"]

log = logging.getLogger("ethcrawl")

# -v for progress, -vv for per-packet detail; quiet (warnings only) by default.
_LOG_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Value of "ENR ..." meaning "read records from standard input".
STDIN_ARGUMENT = "-"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ethcrawl", prog_name="ethcrawl", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Ethereum devp2p crawler: discovery, node records, RLPx and eth status."""
    logging.basicConfig(
        level=_LOG_LEVELS[min(verbose, len(_LOG_LEVELS) - 1)], format=_LOG_FORMAT, stream=sys.stderr
    )


@click.group("enr")
def enr_group() -> None:
    """Ethereum Node Records (EIP-778)."""


def _stdin_records() -> Iterator[tuple[str, str | None]]:
    """(label, text or None if undecodable) for each non-blank line of stdin."""
    for number, line in enumerate(sys.stdin.buffer, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        try:
            yield f"line {number}", stripped.decode("ascii")
        except UnicodeDecodeError:
            yield f"line {number}", None


@enr_group.command("decode")
@click.argument("records", nargs=-1, metavar="[ENR ...]")
def enr_decode(records: tuple[str, ...]) -> None:
    """Print each record as one JSON object per line.

    Give records as arguments, or "-" alone to read them from stdin, one per
    line (blank lines are skipped).  A record that cannot be decoded is
    reported on stderr and the others still print; the exit status is then 1.
    A record with a bad signature still prints, with "valid_signature": false.
    """
    if not records:
        raise click.UsageError("give one or more enr: records, or '-' to read them from stdin")
    if STDIN_ARGUMENT in records and len(records) > 1:
        raise click.UsageError("'-' (read stdin) cannot be combined with other records")
    if records == (STDIN_ARGUMENT,):
        inputs: Iterator[tuple[str, str | None]] = _stdin_records()
    else:
        inputs = ((f"argument {i}", text.strip()) for i, text in enumerate(records, start=1))

    failed = 0
    for label, text in inputs:
        if text is None:
            click.echo(f"error: {label}: not ASCII text", err=True)
            failed += 1
            continue
        try:
            record = ENR.from_text(text, verify=False)
        except WireError as exc:
            click.echo(f"error: {label}: {exc}", err=True)
            failed += 1
            continue
        click.echo(json.dumps(record.to_dict()))
    if failed:
        log.info("enr decode: %d record(s) failed", failed)
        sys.exit(1)


main.add_command(enr_group)

# Registered last: these modules import the whole crawler, which `enr decode` does not need.
from .cli_crawl import crawl_command, ping_command  # noqa: E402

main.add_command(crawl_command)
main.add_command(ping_command)
from .cli_devnet import devnet_command  # noqa: E402
from .cli_monitor import monitor_command  # noqa: E402

main.add_command(monitor_command)

main.add_command(devnet_command)

from .cli_export import export_group, import_group  # noqa: E402
from .cli_history import HISTORY_COMMANDS  # noqa: E402
from .cli_query import query_group  # noqa: E402

main.add_command(export_group)
main.add_command(import_group)
main.add_command(query_group)
for _command in HISTORY_COMMANDS:
    query_group.add_command(_command)

from .cli_dns import dns_group, key_group  # noqa: E402

main.add_command(dns_group)
main.add_command(key_group)
from .cli_dns_sync import sync_command  # noqa: E402

dns_group.add_command(sync_command)
from .cli_enrich import enrich_command  # noqa: E402

main.add_command(enrich_command)

# ethcrawl.web: the report and the dashboard (their heavy imports wait until the command runs).
from ethcrawl.web.cli import report_command, serve_command  # noqa: E402

main.add_command(report_command)
main.add_command(serve_command)
