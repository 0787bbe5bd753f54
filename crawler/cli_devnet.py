"""``ethcrawl devnet``: a loopback network of virtual nodes to crawl offline.

Prints the bootnode URLs and a one-line summary of the mix on stdout, then
serves until Ctrl-C, SIGTERM or ``--duration``.
"""

from __future__ import annotations

import json
import logging
import signal
from functools import partial
from pathlib import Path

import click
import trio
from ethcrawl.wire.chains import CHAINS

from .devnet import Devnet, DevnetConfig, run_devnet

__all__ = ["devnet_command"]

log = logging.getLogger(__name__)


async def _serve(config: DevnetConfig, manifest: Path | None, duration: float | None) -> None:
    async with trio.open_nursery() as nursery:
        net: Devnet = await nursery.start(run_devnet, config)
        if manifest is not None:
            manifest.write_text(json.dumps(net.manifest(), indent=1) + "\n", encoding="utf-8")
        click.echo(f"bootnode {net.bootnode_enode}")
        click.echo(f"bootnode {net.bootnode_enr}")
        if manifest is not None:
            click.echo(f"manifest {manifest}")
        click.echo(net.summary())
        with trio.move_on_after(duration if duration is not None else float("inf")):
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.info("received %s, stopping the devnet", signal.Signals(signum).name)
                    break
        nursery.cancel_scope.cancel()


@click.command("devnet")
@click.option("--nodes", type=click.IntRange(min=1, max=100_000), default=100, show_default=True, help="Number of virtual nodes.")
@click.option("--base-port", type=click.IntRange(min=0, max=65535), default=0, show_default=True,
              help="First UDP/TCP port on each loopback address (0: ports chosen by the OS).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="First loopback address; every 1,000 nodes take the next one (127.0.0.2, ...).")
@click.option("--network", type=click.Choice(sorted(CHAINS)), default="mainnet", show_default=True,
              help="Chain of the nodes' Status (a few awkward nodes announce another).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same network: keys, clients, tables.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this many seconds (default: until Ctrl-C or SIGTERM).")
@click.option("--manifest", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write a JSON of every node (id, enode, ENR, client id, kind, network) here.")
@click.option("--plain", is_flag=True, help="No awkward nodes: every node answers everything.")
def devnet_command(
    nodes: int, base_port: int, host: str, network: str, seed: int, duration: float | None, manifest: Path | None,
    plain: bool,
) -> None:
    """Run NODES virtual devp2p nodes on loopback: a network to crawl offline.

    Then, in another terminal: ethcrawl crawl --bootnode <the printed enode>.
    """
    try:
        config = DevnetConfig(nodes=nodes, host=host, base_port=base_port, network=network, seed=seed, awkward=not plain)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        trio.run(partial(_serve, config, manifest, duration))
    except OSError as exc:
        raise click.ClickException(f"cannot start the devnet: {exc}") from None
