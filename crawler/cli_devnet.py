"""``ethcrawl devnet``: a loopback network of virtual nodes to crawl offline.

Prints the bootnode URLs and a one-line summary of the mix on stdout, then
serves until Ctrl-C, SIGTERM or ``--duration``.  ``--profile mainnet`` makes the
network as dirty as the real one (``devnet_profile``); each of its knobs is a
flag of its own, which overrides the profile.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
from dataclasses import replace
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType

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
# With --shards and no --base-port: ports below Linux's default ephemeral range (32768-60999), so that
# no port the OS hands a crawler's socket or an outgoing connection can be one a shard's node needs.
SHARDED_BASE_PORT = 20000
SHARD_START_LIMIT = 1800.0  # s a shard may take to plan and bind (100,000 records: ~2 minutes here)


def _partial(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".partial")


def _lines(net: Devnet, manifest: Path | None) -> list[str]:
    """What the devnet prints once it is up."""
    lines = [f"bootnode {net.bootnode_enode}", f"bootnode {net.bootnode_enr}"]
    if manifest is not None:
        lines.append(f"manifest {manifest}")
    return lines + [net.summary()]


async def _serve(
    config: DevnetConfig, manifest: Path | None, duration: float | None, ready: Connection | None = None
) -> None:
    """Run the devnet (or one shard of it); ``ready`` (a shard): where to report that it is up, instead of stdout."""
    async with trio.open_nursery() as nursery:
        net: Devnet = await nursery.start(run_devnet, config)
        if manifest is not None and config.shard == 0:
            # Every shard plans the whole network; shard 0 writes the manifest of all of it, which the
            # parent puts in place once every shard is up.
            written = manifest if ready is None else _partial(manifest)
            written.write_text(json.dumps(net.manifest(), indent=1) + "\n", encoding="utf-8")
        if ready is None:
            for line in _lines(net, manifest):
                click.echo(line)
        else:
            ready.send(_lines(net, manifest) if config.shard == 0 else [])
        with trio.move_on_after(duration if duration is not None else float("inf")):
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.info("received %s, stopping the devnet", signal.Signals(signum).name)
                    break
        nursery.cancel_scope.cancel()


def _shard(config: DevnetConfig, manifest: Path | None, duration: float | None, ready: Connection) -> None:
    """One shard's process: serve, and report start-up failures to the parent as one line."""
    try:
        trio.run(partial(_serve, config, manifest, duration, ready))
    except (OSError, BaseExceptionGroup) as exc:
        error = _os_error(exc)
        if error is None:
            raise
        ready.send(f"cannot start the devnet (shard {config.shard}): {error}")


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError (a port taken, too many open files) behind ``exc``, which trio may have wrapped in groups."""
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _os_error(inner)
            if found is not None:
                return found
    return None


def _run_shards(config: DevnetConfig, manifest: Path | None, duration: float | None) -> None:
    """``config.shards`` processes, each binding its share of the nodes; the manifest once all are up.

    Forked (each plans the same network from the seed: nothing is shared but the
    config), so the open-files limit and the event loop are per shard.  SIGINT or
    SIGTERM here is passed on to them; the devnet ends when all of them have.
    """
    context = multiprocessing.get_context("fork")
    workers, pipes = [], []
    for shard in range(config.shards):
        receive, send = context.Pipe(duplex=False)
        worker = context.Process(
            target=_shard, args=(replace(config, shard=shard), manifest, duration, send), daemon=True
        )
        worker.start()
        workers.append(worker)
        pipes.append(receive)

    def pass_on(signum: int, _frame: FrameType | None) -> None:
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signum)

    signal.signal(signal.SIGINT, pass_on)
    signal.signal(signal.SIGTERM, pass_on)
    lines: list[str] = []
    for shard, pipe in enumerate(pipes):
        if not pipe.poll(SHARD_START_LIMIT):
            pass_on(signal.SIGTERM, None)
            raise click.ClickException(f"cannot start the devnet: shard {shard} did not come up")
        try:
            said = pipe.recv()
        except EOFError:
            said = f"cannot start the devnet: shard {shard} ended"
        if isinstance(said, str):
            pass_on(signal.SIGTERM, None)
            raise click.ClickException(said)
        lines += said
    if manifest is not None:
        _partial(manifest).replace(manifest)  # appears whole, once every shard is up
    for line in lines:
        click.echo(line)
    for worker in workers:
        worker.join()


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
@click.option("--shards", type=click.IntRange(min=1, max=64), default=1, show_default=True,
              help="Processes to spread the live nodes over (each has its own open-files limit and core); "
                   f"needs fixed ports: --base-port, {SHARDED_BASE_PORT} if not given.")
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
    plain: bool, profile: str, dial_out: str | None, rtt_min: float | None, rtt_max: float | None, shards: int,
    **knobs: object,
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
            nodes=nodes, host=host, base_port=base_port or (SHARDED_BASE_PORT if shards > 1 else 0), network=network,
            seed=seed, awkward=not plain, dirt=dirt, dial_out=target, shards=shards,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if shards > 1:
        _run_shards(config, manifest, duration)
        return
    try:
        trio.run(partial(_serve, config, manifest, duration))
    except OSError as exc:
        raise click.ClickException(f"cannot start the devnet: {exc}") from None
