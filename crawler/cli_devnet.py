"""``ethcrawl devnet``: a loopback network of virtual nodes to crawl offline.

Prints the bootnode URLs and a one-line summary of the mix on stdout, then
serves until Ctrl-C, SIGTERM or ``--duration``.  ``--profile mainnet`` makes the
network as dirty as the real one (``devnet_profile``); each of its knobs is a
flag of its own, which overrides the profile.
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

from ethcrawl.wire.enode import parse_enode
from ethcrawl.wire.errors import WireError

from .devnet import Devnet, DevnetConfig, run_devnet
from .devnet_profile import PROFILES

__all__ = ["devnet_command"]

log = logging.getLogger(__name__)

_SHARE = click.FloatRange(min=0, max=1)


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
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default="ideal", show_default=True,
              help="How dirty the network is: ideal (every entry alive, instant, lossless) or mainnet "
                   "(stale and NAT'd records, latency, loss, sybils, churn). The flags below override it.")
@click.option("--stale-share", type=_SHARE, help="Share of all records that are stale: nothing answers (mainnet 0.6).")
@click.option("--old-key-share", type=_SHARE, help="Share of stale records naming a live node's address with an old key.")
@click.option("--nat-share", type=_SHARE, help="Share of all records that are NAT'd nodes: in tables, never answer.")
@click.option("--nat-dial-share", type=_SHARE, help="Share of NAT'd nodes that dial out to --dial-out.")
@click.option("--dial-out", "dial_out", metavar="ENODE", default=None,
              help="Where NAT'd nodes dial out: a crawler's --listen, as an enode URL.")
@click.option("--rtt-min", type=click.FloatRange(min=0), help="Fastest per-node round trip, ms (mainnet 20).")
@click.option("--rtt-max", type=click.FloatRange(min=0), help="Slowest per-node round trip, ms (mainnet 400).")
@click.option("--jitter", type=click.FloatRange(min=0), help="Per-packet extra delay, at most this share of the round trip.")
@click.option("--loss", type=_SHARE, help="Per-packet drop rate, each direction (mainnet 0.02).")
@click.option("--bond-expiry", type=click.FloatRange(min=0, min_open=True),
              help="s a node remembers a peer's endpoint proof; FINDNODE needs one (geth: 86400).")
@click.option("--ip-limits/--no-ip-limits", default=None,
              help="geth's table limits (2 per /24 per bucket, 10 per table) over the records' addresses.")
@click.option("--sybil-clusters", type=click.IntRange(min=0), help="Clusters of ids on one IP:port (even) or one IP (odd).")
@click.option("--sybil-size", type=click.IntRange(min=0), help="Ids per sybil cluster.")
@click.option("--enr-change-share", type=_SHARE, help="Share of live nodes that move their RLPx port (new record, seq + 1).")
@click.option("--churn-share", type=click.FloatRange(min=0, max=0.5),
              help="Share of live nodes that leave during the run; as many join.")
@click.option("--churn-window", type=click.FloatRange(min=0),
              help="s after start within which nodes join, leave, change records and dial out.")
def devnet_command(
    nodes: int, base_port: int, host: str, network: str, seed: int, duration: float | None, manifest: Path | None,
    plain: bool, profile: str, dial_out: str | None, rtt_min: float | None, rtt_max: float | None, **knobs: object,
) -> None:
    """Run NODES virtual devp2p nodes on loopback: a network to crawl offline.

    Then, in another terminal: ethcrawl crawl --bootnode <the printed enode>.
    With --profile mainnet, NODES live nodes come with stale, NAT'd and sybil
    records that need no socket (about 2.3 per live node), so a crawl meets
    what it meets on the real network; --manifest says what each record is.
    """
    try:
        target = parse_enode(dial_out) if dial_out is not None else None
    except (WireError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--dial-out") from None
    try:
        dirt = PROFILES[profile].overridden(
            rtt_min=rtt_min / 1000 if rtt_min is not None else None,
            rtt_max=rtt_max / 1000 if rtt_max is not None else None,
            **knobs,
        )
        config = DevnetConfig(
            nodes=nodes, host=host, base_port=base_port, network=network, seed=seed, awkward=not plain, dirt=dirt,
            dial_out=target,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        trio.run(partial(_serve, config, manifest, duration))
    except OSError as exc:
        raise click.ClickException(f"cannot start the devnet: {exc}") from None
