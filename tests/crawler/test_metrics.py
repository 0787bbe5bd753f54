"""--metrics: the Prometheus endpoint scraped during a devnet crawl on loopback, parsed by prometheus_client."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import trio
from ethcrawl.crawler.crawl import CrawlOptions, CrawlProgress, run_crawl
from ethcrawl.crawler.devnet import open_devnet
from ethcrawl.crawler.metrics import METRICS, Metrics, serve_metrics
from ethcrawl.db.engine import open_database
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

DEADLINE = 60  # s for the devnet and the crawl
DEVNET_NODES = 30


async def scrape(port: int, path: str = "/metrics") -> tuple[str, str]:
    """(status line, body) of one GET on 127.0.0.1:port."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode()


def samples(families: Iterable[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


async def test_metrics_scraped_during_and_after_a_devnet_crawl(tmp_path: Path) -> None:
    metrics = Metrics()
    db = open_database(tmp_path / "crawl.db")
    during: list[str] = []
    with trio.fail_after(DEADLINE):
        async with open_devnet(nodes=DEVNET_NODES, seed=3) as net, trio.open_nursery() as nursery:
            port = await nursery.start(serve_metrics, metrics, "127.0.0.1", 0)

            def progress(p: CrawlProgress) -> None:
                if not during and p.crawl.visited:
                    nursery.start_soon(_scrape_into, during, port)

            options = CrawlOptions(seeds=(net.bootnode.enr,), listen_host="127.0.0.1", dial_timeout=2.0)
            summary = await run_crawl(db, options, watch=metrics.watch, on_progress=progress, handle_signals=False)
            metrics.cycle_finished("crawl", duration=1.5, finished_at=1_700_000_000.0, stopped=False)
            status, after = await scrape(port)
            assert status == "HTTP/1.1 200 OK"
            assert (await scrape(port, "/nothing"))[0] == "HTTP/1.1 404 Not Found"
            nursery.cancel_scope.cancel()
    db.close()
    assert during, "no scrape finished during the crawl"
    live = samples(text_string_to_metric_families(during[0]))
    assert live[("ethcrawl_discovery_datagrams_received_total", (("protocol", "v4"),))] > 0
    assert ("ethcrawl_queue_size", (("queue", "frontier"),)) in live
    final_families = list(text_string_to_metric_families(after))
    assert {f.name for f in final_families} >= {name.removesuffix("_total") for name in METRICS}
    final = samples(final_families)
    # The endpoint's numbers are the crawl's own: the same as the summary it stored.
    assert final[("ethcrawl_nodes_known", (("kind", "crawl"),))] == summary.nodes
    assert final[("ethcrawl_nodes_answered", (("kind", "crawl"),))] == summary.responded
    dials = {dict(labels)["outcome"]: v for (name, labels), v in final.items() if name == "ethcrawl_dials_total"}
    assert dials == dict(summary.outcomes) and sum(dials.values()) == summary.dials
    assert final[("ethcrawl_cycles_total", (("kind", "crawl"),))] == 1
    assert final[("ethcrawl_cycle_duration_seconds", (("kind", "crawl"),))] == 1.5
    assert final[("ethcrawl_last_success_timestamp_seconds", (("kind", "crawl"),))] == 1_700_000_000.0
    # Counters never go back: the finished crawl's are the base of the next.
    for key, value in live.items():
        if key[0].endswith("_total") and key in final:
            assert final[key] >= value, key


async def _scrape_into(into: list[str], port: int) -> None:
    into.append((await scrape(port))[1])


def test_counters_of_finished_cycles_add_up() -> None:
    """Two cycles' counters: the second's live numbers come on top of the first's final ones."""
    from ethcrawl.crawler.crawl import LiveCounters

    def reading(dials_ok: int) -> LiveCounters:
        return LiveCounters(
            kind="revalidation", nodes=3, answered=2, dials_started=dials_ok, dial_outcomes={"ok": dials_ok}, v4=None,
            v5=None, lane_overflow=0, kernel_drops=7, queues={},
        )

    metrics = Metrics()
    metrics.watch(lambda: reading(2))
    metrics.watch(None)
    metrics.watch(lambda: reading(5))
    final = samples(text_string_to_metric_families(metrics.text().decode()))
    assert final[("ethcrawl_dials_total", (("outcome", "ok"),))] == 7
    # The kernel's count is the socket's own running total: passed through, not added up.
    assert final[("ethcrawl_discovery_datagrams_dropped_total", (("reason", "kernel"),))] == 7
