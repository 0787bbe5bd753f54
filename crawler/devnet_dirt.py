"""The devnet's dirt at run time: dead records in tables, and what happens while a crawl runs.

``devnet_profile`` plans the dirt (pure); this module carries it out on a
running :class:`~ethcrawl.crawler.devnet.Devnet`:

* :func:`dead_entries` turns each planned dead record into the endpoint and
  signed record the live nodes' tables hold (a stale-old-key record takes
  its live twin's bound port);
* :func:`run_schedule` then, at the planned seconds after start, lets nodes
  join (they enter the tables that planned them), leave (their sockets
  close) and move their RLPx port (a new record, seq + 1), and lets NAT'd
  nodes dial out to ``DevnetConfig.dial_out`` (a crawler's ``--listen``),
  where they say Hello and Status like any node.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import trio

from ethcrawl.wire.crypto import PrivateKey
from ethcrawl.wire.enode import Node, format_enode
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import WireError
from ethcrawl.wire.p2p import Hello
from ethcrawl.wire.rlpx.connection import RLPxConnection
from ethcrawl.wire.rlpx.session import PeerSession

from .devnet_chain import ChainHead, converse
from .devnet_clients import choose_client
from .devnet_profile import DeadRecord, Role
from .discovery import make_local_enr
from .session_stream import SessionStream

if TYPE_CHECKING:
    from .devnet import Devnet, DevnetNode, DevnetPlan

__all__ = [
    "DeadEntry", "dead_entries", "dead_manifest_entry", "dial_out", "dirt_summary", "nat_client_id", "run_schedule",
]

log = logging.getLogger(__name__)

DIAL_OUT_TIMEOUT = 15.0  # s, longest one NAT'd node's outbound session may last
CONNECT_TIMEOUT = 5.0  # s, its TCP connect


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadEntry:
    """A dead record as tables hold it."""

    record: DeadRecord
    node: Node  # the endpoint a NEIGHBORS answer names
    enr: ENR  # the record a v5 NODES answer carries (signed with its own key, seq 1)


def dead_entries(records: Sequence[DeadRecord], nodes: Sequence[DevnetNode], head: ChainHead) -> list[DeadEntry]:
    """The table entries of ``records``; old keys name their twin's bound port."""
    entries = []
    extra = {"eth": [head.fork_id]}  # they were (or are, behind NAT) execution nodes of the network
    for record in records:
        port = nodes[record.twin].port if record.twin is not None else record.port
        key = PrivateKey(record.private_key)
        enr = make_local_enr(key, record.host, port, port, seq=1, extra=extra)
        entries.append(DeadEntry(record=record, node=enr.to_node(), enr=enr))
    return entries


def dead_manifest_entry(entry: DeadEntry, findable: bool) -> dict[str, Any]:
    record = entry.record
    return {
        "index": record.index,
        "node_id": record.node_id.hex(),
        "enode": format_enode(entry.node),
        "ip": record.host,
        "udp": entry.node.udp,
        "tcp": entry.node.tcp,
        "role": record.role.value,
        "findable": findable,  # some table a walk from the bootnode reaches holds it
        "answers": False,  # nothing answers discovery at this address for this key
        "twin": record.twin,  # stale-old-key: the live node at this address now
        "cluster": record.cluster,  # sybil: its cluster
        "dials_out_at": record.dial_out_at,  # NAT'd: when it dials the --dial-out target, if one is given
        # NAT'd nodes are alive: the client id their Hello says when they dial out.
        "client_id": nat_client_id(record) if record.role is Role.NAT else None,
    }


def nat_client_id(record: DeadRecord) -> str:
    """The client id a NAT'd node's Hello says (the same every run of the seed)."""
    return choose_client(random.Random(record.private_key))[1]


def dirt_summary(plan: DevnetPlan) -> str:
    """The tail of the devnet's summary line: how dirty it is."""
    dirt = plan.config.dirt
    roles = Counter(r.role for r in plan.records)
    events = [s.events for s in plan.nodes]
    clusters = len({r.cluster for r in plan.records if r.cluster is not None})
    return (
        f"; dirt: {len(plan.records)} dead records (stale {roles[Role.STALE]}, old keys {roles[Role.STALE_OLD_KEY]}, "
        f"NAT'd {roles[Role.NAT]}, sybils {roles[Role.SYBIL]} in {clusters} clusters); "
        f"rtt {dirt.rtt_min * 1000:.0f}-{dirt.rtt_max * 1000:.0f} ms, loss {dirt.loss:.0%}; "
        f"within {dirt.churn_window:g} s: {sum(e.leave_at is not None for e in events)} leave, "
        f"{sum(e.join_at is not None for e in events)} join, {sum(e.enr_change_at is not None for e in events)} "
        f"change their record"
    )


async def run_schedule(
    net: Devnet, head: ChainHead, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Carry out the plan's joins, leaves, record changes and dial-outs at their times; returns when all are done."""
    start = trio.current_time()
    plan = net.plan
    config = plan.config
    # With shards, each process carries out what happens to the nodes it binds (and shard 0 the dial-outs).
    served = [spec for spec in plan.nodes if spec.served_by(config)]
    holders: dict[int, list[int]] = {}
    for spec in served:
        for j in spec.known:
            holders.setdefault(j, []).append(spec.index)
    schedule: list[tuple[float, int, str]] = []
    for spec in plan.nodes:
        if not spec.served_by(config):
            if spec.events.join_at is not None and spec.index in holders:
                schedule.append((spec.events.join_at, spec.index, "join"))  # our tables learn of it then
            continue
        events = spec.events
        for at, what in ((events.join_at, "join"), (events.leave_at, "leave"), (events.enr_change_at, "move")):
            if at is not None:
                schedule.append((at, spec.index, what))
    if config.dial_out is not None and config.shard == 0:
        schedule += [(r.dial_out_at, r.index, "dial") for r in plan.records if r.dial_out_at is not None]
    schedule.sort()
    task_status.started()
    async with trio.open_nursery() as nursery:
        for at, index, what in schedule:
            await trio.sleep_until(start + at)
            if what == "join":
                for holder in holders.get(index, ()):
                    net.introduce(net.nodes[holder], index)
                log.info("devnet node %d joined", index)
            elif what == "leave":
                net.nodes[index].leave()
                log.info("devnet node %d left", index)
            elif what == "move":
                node = net.nodes[index]
                if not node.left:
                    await node.move_rlpx(_listenerless_ports(net, node))
            else:
                target = plan.config.dial_out
                assert target is not None
                nursery.start_soon(dial_out, net.dead[index - len(net.nodes)].record, target, head)


def _listenerless_ports(net: Devnet, node: DevnetNode) -> frozenset[int]:
    from .devnet import WITHOUT_RLPX_LISTENER  # the devnet imports us: import its constant late

    host = node.spec.host
    return frozenset(n.port for n in net.nodes if n.spec.host == host and n.spec.kind in WITHOUT_RLPX_LISTENER)


async def dial_out(record: DeadRecord, target: Node, head: ChainHead) -> None:
    """A NAT'd node's outbound RLPx session to ``target``: Hello (its client id), Status, headers, until closed."""
    key = PrivateKey(record.private_key)
    _, client_id, caps = choose_client(random.Random(record.private_key))
    hello = Hello(protocol_version=5, client_id=client_id, capabilities=caps, listen_port=0, node_pubkey=record.pubkey)
    session = PeerSession(RLPxConnection.initiator(key, target.pubkey, eip8=True), hello=hello)
    assert target.ip is not None and target.tcp
    try:
        with trio.fail_after(CONNECT_TIMEOUT):
            stream = await trio.open_tcp_stream(str(target.ip), target.tcp)
    except (OSError, trio.TooSlowError) as exc:
        log.info("devnet NAT'd node %d could not dial out: %r", record.index, exc)
        return
    try:
        with trio.move_on_after(DIAL_OUT_TIMEOUT):
            await converse(SessionStream(stream, session), head)
    except (WireError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        log.debug("devnet NAT'd node %d session ended: %r", record.index, exc)
    finally:
        with trio.move_on_after(1) as cleanup:
            cleanup.shield = True
            await stream.aclose()
