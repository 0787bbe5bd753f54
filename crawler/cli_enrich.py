"""``ethcrawl enrich`` and the ``--geoip``/``--asn`` options that ``crawl`` (and ``monitor``) share.

The files are opened and checked before the database is touched: a missing, damaged or unknown file is one
line and exit status 1, and the database stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ethcrawl.db.enrich import EnrichCounts, enrich_database
from ethcrawl.db.queries import has_crawl

from .cli_common import database, db_option
from .geoip import GeoIP, GeoIPError

__all__ = ["geoip_options", "open_geoip", "enrich_line", "enrich_command"]

GEOIP_HELP = (
    "MaxMind DB file (.mmdb) giving each node's country: GeoLite2 Country or City, DB-IP lite, IPinfo Lite "
    "(see the README's \"Country and ASN\")."
)
ASN_HELP = "MaxMind DB file (.mmdb) giving each node's AS number and organisation: GeoLite2 ASN, DB-IP ASN lite, IPinfo."


def geoip_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--geoip FILE`` and ``--asn FILE``, passed as ``geoip`` and ``asn`` (None when not given)."""
    command = click.option("--asn", "asn", default=None, metavar="FILE", help=ASN_HELP)(command)
    return click.option("--geoip", "geoip", default=None, metavar="FILE", help=GEOIP_HELP)(command)


def open_geoip(geoip: str | None, asn: str | None) -> GeoIP | None:
    """The files given, opened and checked; None if neither was given; one clear line (exit 1) if one is bad."""
    if geoip is None and asn is None:
        return None
    try:
        return GeoIP(country=geoip, asn=asn)
    except GeoIPError as exc:
        raise click.ClickException(str(exc)) from None


def enrich_line(counts: EnrichCounts, crawl_id: int | None) -> str:
    scope = f"crawl {crawl_id}" if crawl_id is not None else "every crawl"
    return (
        f"enriched {scope}: {counts.addresses} addresses looked up, {counts.located} found in the files; "
        f"filled {counts.nodes} nodes and {counts.sightings} sightings"
    )


@click.command("enrich")
@db_option
@geoip_options
@click.option("--crawl", "crawl_id", type=click.IntRange(min=1), default=None, help="Only this crawl's sightings and nodes.")
@click.option("--all", "every", is_flag=True, help="Every node and sighting (the default).")
def enrich_command(db_url: str, geoip: str | None, asn: str | None, crawl_id: int | None, every: bool) -> None:
    """Fill the country (--geoip) and AS (--asn) columns of an existing database from MaxMind DB files.

    Each node gets the place of its latest address, each sighting that of the address it had in its crawl.  Only
    the columns of the files given change; running it again with the same files changes nothing.  Prints how many
    rows it filled (changed).
    """
    if crawl_id is not None and every:
        raise click.UsageError("give --crawl N or --all, not both")
    geo = open_geoip(geoip, asn)
    if geo is None:
        raise click.UsageError("give --geoip FILE and/or --asn FILE")
    with geo, database(db_url) as db:
        if crawl_id is not None:
            with db.session() as session:
                if not has_crawl(session, crawl_id):
                    raise click.ClickException(f"the database holds no crawl {crawl_id}")
        try:
            counts = enrich_database(db, geo, crawl_id=crawl_id)
        except GeoIPError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(enrich_line(counts, crawl_id))
