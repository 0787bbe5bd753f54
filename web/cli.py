"""``ethcrawl report`` and ``ethcrawl serve``: the command-line side of web/ (registered in crawler/cli.py)."""

from __future__ import annotations

import logging
import socket
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path

import click

from ethcrawl.crawler.cli_common import database, db_option, parse_host_port, scope_options, write_text
from ethcrawl.db.scope import scope_of

__all__ = ["report_command", "serve_command", "DEFAULT_LISTEN"]

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8000"  # loopback: the dashboard is for this machine unless told otherwise
LISTEN_BACKLOG = 64  # pending connections; a dashboard has few users


@click.command("report")
@db_option
@click.option("--out", "out", required=True, help="The HTML file to write ('-' for stdout), or with --format png|svg a folder.")
@scope_options
@click.option(
    "--format", "fmt", type=click.Choice(["html", "png", "svg"]), default="html", show_default=True,
    help="html: one self-contained file; png or svg: each chart as an image file in the folder --out.",
)
def report_command(
    db_url: str, out: str, crawl_id: int | None, since: datetime | None, until: datetime | None, fmt: str
) -> None:
    """Write a report: charts of clients, versions, platforms, networks, forks, layers, outcomes, topology,
    history and the network over time (readiness per client, client share per crawl, churn, uptime), each beside
    the table of its numbers (the rows `ethcrawl query ... --format json` prints).

    The HTML file opens offline: charts are inline SVG, styles inline, no script and nothing fetched.
    """
    # Imported here: matplotlib and the templates are not needed by the crawler's commands.
    from .model import Scope
    from .report import report_html, report_images

    with database(db_url, read_only=True) as db, db.session() as session:
        scope_of(session, crawl_id, since, until)  # an unknown crawl or an empty window: one line
        scope = Scope(crawl_id=crawl_id, since=since, until=until)
        if fmt == "html":
            write_text(out, report_html(session, scope, db_url))
            return
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise click.ClickException(f"--out {out} is a file; with --format {fmt} give a folder")
        try:
            written = report_images(session, scope, folder, fmt)
        except OSError as exc:
            raise click.ClickException(f"cannot write into {out}: {exc.strerror}") from None
    for path in written:
        click.echo(str(path))


def _listen(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, int]:
    return parse_host_port(value)  # port 0: any free port (printed when serving starts)


def _bound_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket, bound here so that a taken port or a foreign address is one clear line."""
    family = socket.AF_INET6 if ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


@click.command("serve")
@db_option
@click.option(
    "--listen", default=DEFAULT_LISTEN, show_default=True, callback=_listen,
    help="IP:PORT to serve on ([v6]:PORT for IPv6; port 0: any free one); beyond loopback, anyone who reaches it "
    "reads the database.",
)
def serve_command(db_url: str, listen: tuple[str, int]) -> None:
    """A read-only web dashboard and JSON API over the database (overview, nodes, crawls; /openapi.json).

    The database is opened read-only, so it can be served while a crawl writes it.
    """
    import uvicorn

    from .app import create_app

    host, port = listen
    with database(db_url, read_only=True) as db:
        sock = _bound_socket(host, port)
        if not ip_address(host).is_loopback:
            click.echo(f"warning: serving beyond loopback on {host}:{port}: anyone who reaches it reads the database", err=True)
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"serving {db_url} read-only on http://{shown}:{sock.getsockname()[1]}/ (Ctrl-C stops)", err=True)
        config = uvicorn.Config(create_app(db, database_name=db_url), log_level="warning", access_log=False)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            sock.close()
