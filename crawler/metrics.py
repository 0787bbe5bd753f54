"""``--metrics HOST:PORT``: a Prometheus endpoint for ``crawl`` and ``monitor``.

Every number is read, when Prometheus scrapes, from the counters the crawl already keeps (the engine's
``statistics()``, the discovery sockets', the dial counter: ``crawl.LiveCounters``, the live display's source);
nothing here counts on its own.  A crawl's counters start from zero each cycle, so for a monitor the counters
of finished cycles are kept as a base and the running cycle's are added on top, which keeps every ``_total``
monotonic.  The kernel's drop count is the socket's own running total and is passed through as it is.

The text is made by the official ``prometheus_client`` from a registry of our own (not the process-wide
default, so tests can run several).  It is served by a small HTTP responder on trio in the crawl's own event
loop: collection then runs between the crawl's steps and never reads its state from another thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from functools import partial

import trio
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from .crawl import LiveCounters

__all__ = ["DEFAULT_HOST", "METRICS", "Metrics", "serve_metrics"]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"  # metrics tell about the crawl's host; exposing them is an explicit choice
REQUEST_TIMEOUT = 10.0  # s for a scraper to send its request and take the answer
MAX_REQUEST = 8192  # bytes of request head we read; a scrape sends a few hundred
METRICS_PATH = b"/metrics"

# (name, help): counters first, then gauges.  Names follow Prometheus' conventions (ethcrawl_ prefix, _total
# counters, base units in the name).
METRICS: dict[str, str] = {
    "ethcrawl_discovery_datagrams_received_total": "Discovery datagrams received, by protocol.",
    "ethcrawl_discovery_datagrams_sent_total": "Discovery datagrams sent, by protocol.",
    "ethcrawl_discovery_datagrams_dropped_total": (
        "Discovery datagrams dropped, by reason: bad_packet (v4 undecodable or badly signed), v5_dropped (v5 "
        "undecodable or unexpected), lane_overflow (our reader fell behind), kernel (full socket buffer)."
    ),
    "ethcrawl_discovery_exchanges_total": "Discovery requests we made, by protocol and kind (findnode, handshake).",
    "ethcrawl_discovery_timeouts_total": "Discovery requests that met silence, by protocol.",
    "ethcrawl_dials_total": "RLPx attempts ended, by outcome (ok, timeout, refused, too-many-peers, ...).",
    "ethcrawl_cycles_total": "Cycles finished, by kind (crawl: a walk of the DHT; revalidation: a pass over known nodes).",
    "ethcrawl_nodes_known": "Nodes known in the running (or last) cycle of each kind: discovered in a walk, checked in a pass.",
    "ethcrawl_nodes_answered": "Of those, nodes that answered discovery.",
    "ethcrawl_nodes_dialed": "RLPx dials started in the running (or last) cycle of each kind.",
    "ethcrawl_queue_size": (
        "Work waiting in the running cycle, by queue: frontier (nodes to visit), visits and dials (in flight), "
        "records (on their way to the database)."
    ),
    "ethcrawl_cycle_duration_seconds": "How long the last finished cycle of each kind took.",
    "ethcrawl_last_success_timestamp_seconds": "Unix time the last cycle of each kind finished (not stopped early).",
}

_Key = tuple[str, tuple[tuple[str, str], ...]]  # metric name, label pairs


def _counter_samples(c: LiveCounters) -> dict[_Key, float]:
    """The counters of one reading, keyed by metric and labels (the kernel's drops apart: see the module doc)."""
    samples: dict[_Key, float] = {}

    def put(name: str, value: float, **labels: str) -> None:
        samples[(name, tuple(sorted(labels.items())))] = value

    if c.v4 is not None:
        put("ethcrawl_discovery_datagrams_received_total", c.v4.packets_in, protocol="v4")
        put("ethcrawl_discovery_datagrams_sent_total", c.v4.packets_out, protocol="v4")
        put("ethcrawl_discovery_datagrams_dropped_total", c.v4.bad_packets, reason="bad_packet")
        put("ethcrawl_discovery_exchanges_total", c.v4.findnode_requests, protocol="v4", kind="findnode")
        put("ethcrawl_discovery_timeouts_total", c.v4.timeouts, protocol="v4")
    if c.v5 is not None:
        put("ethcrawl_discovery_datagrams_received_total", c.v5.packets_in, protocol="v5")
        put("ethcrawl_discovery_datagrams_sent_total", c.v5.packets_out, protocol="v5")
        put("ethcrawl_discovery_datagrams_dropped_total", c.v5.dropped, reason="v5_dropped")
        put("ethcrawl_discovery_exchanges_total", c.v5.findnode_requests, protocol="v5", kind="findnode")
        put("ethcrawl_discovery_exchanges_total", c.v5.handshakes, protocol="v5", kind="handshake")
        put("ethcrawl_discovery_timeouts_total", c.v5.timeouts, protocol="v5")
    put("ethcrawl_discovery_datagrams_dropped_total", c.lane_overflow, reason="lane_overflow")
    for outcome, count in c.dial_outcomes.items():
        put("ethcrawl_dials_total", count, outcome=outcome)
    return samples


class Metrics:
    """The process's metrics: a registry of its own, filled at scrape time from the running cycle's counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._reader: Callable[[], LiveCounters] | None = None
        self._base: dict[_Key, float] = {}  # counters of the finished cycles
        self._kernel_drops: int | None = None
        self._cycles: dict[str, int] = {}
        self._nodes: dict[str, tuple[int, int, int]] = {}  # kind -> known, answered, dialed
        self._duration: dict[str, float] = {}
        self._last_success: dict[str, float] = {}
        self.registry.register(self)

    def watch(self, reader: Callable[[], LiveCounters] | None) -> None:
        """``crawl.CounterWatch``: a cycle starts (its counters' reader) or ends (None: its last reading kept)."""
        if reader is None and self._reader is not None:
            last = self._reader()
            for key, value in _counter_samples(last).items():
                self._base[key] = self._base.get(key, 0.0) + value
            self._note(last)
        self._reader = reader

    def cycle_finished(self, kind: str, *, duration: float, finished_at: float, stopped: bool) -> None:
        """A cycle ended: its duration, and (unless stopped early) the time of the kind's last success."""
        self._cycles[kind] = self._cycles.get(kind, 0) + 1
        self._duration[kind] = duration
        if not stopped:
            self._last_success[kind] = finished_at

    def _note(self, c: LiveCounters) -> None:
        self._nodes[c.kind] = (c.nodes, c.answered, c.dials_started)
        if c.kernel_drops is not None:
            self._kernel_drops = c.kernel_drops

    def collect(self) -> Iterator[Metric]:
        counters = dict(self._base)
        queues: Mapping[str, int] = {}
        if self._reader is not None:
            live = self._reader()
            for key, value in _counter_samples(live).items():
                counters[key] = counters.get(key, 0.0) + value
            self._note(live)
            queues = live.queues
        if self._kernel_drops is not None:
            counters[("ethcrawl_discovery_datagrams_dropped_total", (("reason", "kernel"),))] = self._kernel_drops
        for kind, count in self._cycles.items():
            counters[("ethcrawl_cycles_total", (("kind", kind),))] = count
        families: dict[str, CounterMetricFamily] = {}
        for (name, labels), value in sorted(counters.items()):
            family = families.get(name)
            if family is None:
                family = families[name] = CounterMetricFamily(name, METRICS[name], labels=[k for k, _ in labels])
            family.add_metric([v for _, v in labels], value)
        yield from families.values()
        yield from self._gauges(queues)

    def _gauges(self, queues: Mapping[str, int]) -> Iterator[Metric]:
        for index, name in enumerate(("ethcrawl_nodes_known", "ethcrawl_nodes_answered", "ethcrawl_nodes_dialed")):
            gauge = GaugeMetricFamily(name, METRICS[name], labels=["kind"])
            for kind, numbers in sorted(self._nodes.items()):
                gauge.add_metric([kind], numbers[index])
            yield gauge
        gauge = GaugeMetricFamily("ethcrawl_queue_size", METRICS["ethcrawl_queue_size"], labels=["queue"])
        for queue, size in sorted(queues.items()):
            gauge.add_metric([queue], size)
        yield gauge
        for name, values in (
            ("ethcrawl_cycle_duration_seconds", self._duration),
            ("ethcrawl_last_success_timestamp_seconds", self._last_success),
        ):
            gauge = GaugeMetricFamily(name, METRICS[name], labels=["kind"])
            for kind, value in sorted(values.items()):
                gauge.add_metric([kind], value)
            yield gauge

    def text(self) -> bytes:
        """The exposition text, as a scrape gets it."""
        return generate_latest(self.registry)


async def serve_metrics(
    metrics: Metrics, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Answer ``GET /metrics`` on ``host:port`` until cancelled; reports the bound port (``OSError`` if taken)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("metrics on http://%s:%d/metrics", f"[{host}]" if ":" in host else host, bound)
    task_status.started(bound)
    await trio.serve_listeners(partial(_answer, metrics), listeners)


async def _answer(metrics: Metrics, stream: trio.SocketStream) -> None:
    """One HTTP/1.0-style exchange: read the request head, answer, close."""
    try:
        with trio.move_on_after(REQUEST_TIMEOUT):
            head = b""
            while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST:
                chunk = await stream.receive_some(MAX_REQUEST)
                if not chunk:
                    break
                head += chunk
            words = head.split(b"\r\n", 1)[0].split()
            if len(words) < 2 or words[0] not in (b"GET", b"HEAD"):
                await stream.send_all(_response(b"405 Method Not Allowed", b"text/plain", b"GET /metrics\n"))
            elif words[1].split(b"?", 1)[0] not in (METRICS_PATH, b"/"):
                await stream.send_all(_response(b"404 Not Found", b"text/plain", b"try /metrics\n"))
            else:
                body = metrics.text()
                await stream.send_all(_response(b"200 OK", CONTENT_TYPE_LATEST.encode(), b"" if words[0] == b"HEAD" else body, len(body)))
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        log.debug("metrics request ended err=%r", exc)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            await stream.aclose()


def _response(status: bytes, content_type: bytes, body: bytes, length: int | None = None) -> bytes:
    size = str(len(body) if length is None else length).encode()
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type + b"\r\nContent-Length: " + size
        + b"\r\nConnection: close\r\n\r\n" + body
    )
