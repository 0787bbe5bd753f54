"""Our discovery endpoint: discovery v4 and v5 on one UDP port, as go-ethereum runs them.

One socket, one key, one ENR: a :class:`~ethcrawl.crawler.udp.ProtocolDemux`
hands v4 packets to :class:`DiscoveryV4` and everything else to
:class:`DiscoveryV5`, so peers that know us over one protocol find the same
endpoint in our record for the other.  The crawl, the devnet and the tests
all build their endpoints here.

A node listening on an unspecified address (0.0.0.0, ::) learns the endpoint
peers see it at from their PONGs (``endpoint.EndpointPredictor``) and then
signs a new record naming it, served by both protocols.  On ``::`` (one
dual-stack socket, see :mod:`~ethcrawl.crawler.udp`) that is per family: the
record names ``ip`` once IPv4 peers agree, ``ip6`` once IPv6 peers do.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from ipaddress import ip_address
from typing import Callable, Mapping

import trio

from ethcrawl.wire import discv4
from ethcrawl.wire.crypto import PrivateKey, node_id_from_pubkey, pubkey_from_private
from ethcrawl.wire.enr import ENR

from .discovery import DiscoveryConfig, DiscoveryV4, make_local_enr
from .discovery_v5 import DiscoveryV5, DiscoveryV5Config
from .endpoint import EndpointPredictor
from .rtt import RoundTrips
from .udp import DatagramTransport, ProtocolDemux, serve_datagrams

__all__ = ["DiscoveryNode"]

log = logging.getLogger(__name__)

LEARNED_VERSIONS = (4, 6)  # IP versions our endpoint is learned for, each on its own (geth endpoint4/endpoint6)


class DiscoveryNode:
    """Discovery v4 and v5 sharing one UDP socket (``speaks_v4``/``speaks_v5`` turn one off).

    Set :attr:`tcp_port` before :meth:`run` if an RLPx listener is bound
    elsewhere (default: the UDP port number); :attr:`v4` and :attr:`v5` exist
    once ``await nursery.start(node.run)`` has returned.
    """

    def __init__(
        self,
        private_key: PrivateKey,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tcp_port: int = 0,
        v4_config: DiscoveryConfig = DiscoveryConfig(),
        v5_config: DiscoveryV5Config | None = None,
        speaks_v5: bool = True,
        speaks_v4: bool = True,
        wall_clock: Callable[[], float] = time.time,
        enr_extra: Mapping[str, object] | None = None,
        transport: DatagramTransport | None = None,
        learn_endpoint: bool | None = None,
    ) -> None:
        self.private_key = private_key
        self.node_id = node_id_from_pubkey(pubkey_from_private(private_key))
        self.host = host
        self.port = port
        self.tcp_port = tcp_port
        if not (speaks_v4 or speaks_v5):
            raise ValueError("a discovery node speaks v4, v5 or both")
        self.speaks_v4 = speaks_v4
        self.speaks_v5 = speaks_v5
        self._v4_config = v4_config
        self._v5_config = v5_config or DiscoveryV5Config()
        self._wall_clock = wall_clock
        self._enr_extra = enr_extra
        self._transport = transport
        # Default: learn only when the listen address says nothing about where we are reachable.
        self.learn_endpoint = ip_address(host).is_unspecified if learn_endpoint is None else learn_endpoint
        self._predictor = EndpointPredictor()
        # One node, one path: the round trips v4 measures widen v5's windows for the same peer, and back.
        self.round_trips = RoundTrips()
        # The learned endpoints our record names, by IP version (4, 6), once known.
        self.advertised: dict[int, tuple[str, int]] = {}
        self._v4: DiscoveryV4 | None = None
        self._v5: DiscoveryV5 | None = None
        self._started = False
        self.demux: ProtocolDemux | None = None

    @property
    def v4(self) -> DiscoveryV4:
        """The v4 side (RuntimeError for a v5-only node)."""
        self._check_started()
        if self._v4 is None:
            raise RuntimeError("this node does not speak discovery v4")
        return self._v4

    @property
    def v5(self) -> DiscoveryV5 | None:
        """The v5 side (None for a v4-only node)."""
        self._check_started()
        return self._v5

    @property
    def enr(self) -> ENR:
        """Our record: the same bytes over both protocols."""
        self._check_started()
        if self._v5 is not None:
            return self._v5.enr
        assert self._v4 is not None and self._v4.enr is not None
        return self._v4.enr

    def _check_started(self) -> None:
        if not self._started:
            raise RuntimeError("DiscoveryNode.run() must be started first")

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind (unless a transport was given), start both protocols, report the UDP port, serve until cancelled."""
        await serve_datagrams(self._transport, self.host, self.port, partial(self._serve, task_status=task_status))

    async def _serve(self, transport: DatagramTransport, *, task_status: trio.TaskStatus[int]) -> None:
        self.port = transport.local_address[1]
        tcp_port = self.tcp_port or self.port
        self.demux = demux = ProtocolDemux(
            transport, discv4.looks_like_v4, serve_v4=self.speaks_v4, serve_v5=self.speaks_v5
        )
        v4 = None
        if self.speaks_v4:
            v4 = DiscoveryV4(
                self.private_key, host=self.host, port=self.port, tcp_port=tcp_port, config=self._v4_config,
                wall_clock=self._wall_clock, transport=demux.v4, enr_extra=self._enr_extra,
                round_trips=self.round_trips,
            )
        v5 = None
        if self.speaks_v5:
            v5 = DiscoveryV5(
                self.private_key, host=self.host, port=self.port, tcp_port=tcp_port, config=self._v5_config,
                transport=demux.v5, enr_extra=self._enr_extra, round_trips=self.round_trips,
            )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(demux.run)
            if v4 is not None:
                await nursery.start(v4.run)
            if v5 is not None:
                await nursery.start(v5.run)
            self._v4, self._v5, self._started = v4, v5, True
            if self.learn_endpoint:
                for side in (v4, v5):
                    if side is not None:
                        side.on_endpoint_statement = partial(self._endpoint_statement, tcp_port)
            task_status.started(self.port)

    def _endpoint_statement(self, tcp_port: int, voter_ip: str, ip: str, port: int) -> None:
        now = trio.current_time()
        self._predictor.add(voter_ip, (ip, port), now)
        learned = dict(self.advertised)
        for version in LEARNED_VERSIONS:
            predicted = self._predictor.predict(now, version)
            if predicted is not None:
                learned[version] = predicted
        if learned == self.advertised:
            return
        self.advertised = learned
        enr = make_local_enr(
            self.private_key, self.host, self.port, tcp_port, seq=self.enr.seq + 1, extra=self._enr_extra,
            learned=[learned[v] for v in LEARNED_VERSIONS if v in learned],
        )
        if self._v4 is not None:
            self._v4.set_local_enr(enr)
        if self._v5 is not None:
            self._v5.set_local_enr(enr)
        named = " ".join(f"{h}:{p}" if v == 4 else f"[{h}]:{p}" for v, (h, p) in sorted(learned.items()))
        log.info("peers see us at %s; our record now names it (seq %d)", named, enr.seq)
