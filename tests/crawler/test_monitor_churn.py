"""A monitor over several short cycles of a devnet that churns on a script (crawler.devnet_churn): every cycle's
stored rows (who answered, client ids, record seqs, fork next) are exactly what the script made."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import trio
from ethcrawl.crawler.crawl import CrawlOptions
from ethcrawl.crawler.devnet_churn import default_script, expectations, open_churn_devnet
from ethcrawl.crawler.monitor import CycleResult, MonitorConfig, run_monitor
from ethcrawl.db.engine import open_database
from ethcrawl.db.models import Crawl, DialAttempt, Identity, Sighting
from ethcrawl.db.schedule import Backoff
from sqlalchemy import select

DEADLINE = 120  # s for the whole run: five cycles of ~8 s each at most, and the devnet
INTERVAL = 8.0  # s between walks: one pass falls between two (nodes due REVALIDATE after their walk)
REVALIDATE = 4.0  # s
NEVER = 1000.0  # s: a node that failed is not checked again within the test


async def test_monitor_stores_exactly_the_churn_the_script_made(tmp_path: Path) -> None:
    script = default_script()
    expected = expectations(script)
    db = open_database(tmp_path / "monitor.db")
    config = MonitorConfig(
        interval=INTERVAL, cycles=3, pass_window=REVALIDATE, min_gap=0.1,
        backoff=Backoff(answered=REVALIDATE, first_failure=NEVER, repeated_failure=NEVER, given_up=NEVER),
    )
    results: list[CycleResult] = []
    with trio.fail_after(DEADLINE):
        async with open_churn_devnet(script) as churn:
            options = CrawlOptions(
                seeds=(churn.net.bootnode.enr,), listen_host="127.0.0.1", response_timeout=0.3,
                v5_response_timeout=0.3, dial_timeout=2.0,
            )

            async def after(result: CycleResult) -> None:
                results.append(result)
                await churn.after_cycle(len(results) - 1)

            ran = await run_monitor(db, options, config, handle_signals=False, on_cycle=after)
    assert ran == len(expected)
    with db.session() as session:
        crawls = session.scalars(select(Crawl).order_by(Crawl.id)).all()
        assert [c.kind for c in crawls] == [e.kind for e in expected] == [r.kind for r in results]
        assert all(c.ended_at is not None for c in crawls)
        ours = set(session.scalars(select(Identity.node_id)))
        assert len(ours) == 1 and {c.local_node_id for c in crawls} == ours  # one identity for the run
        for crawl, want in zip(crawls, expected):
            sightings = session.scalars(select(Sighting).where(Sighting.crawl_id == crawl.id)).all()
            answered = {s.node_id for s in sightings if s.responded}
            assert answered == want.answered, f"cycle {want.index} ({want.kind})"
            if want.checked is not None:
                assert {s.node_id for s in sightings} == want.checked, f"cycle {want.index}: nodes checked"
            assert {s.node_id: s.enr_seq for s in sightings if s.responded} == want.enr_seqs, f"cycle {want.index}"
            dials = session.scalars(select(DialAttempt).where(DialAttempt.crawl_id == crawl.id)).all()
            ok: dict[bytes, list[DialAttempt]] = defaultdict(list)
            for d in dials:
                if d.outcome == "ok":
                    ok[d.node_id].append(d)
            assert {n: [d.client_id for d in ds] for n, ds in ok.items()} == {
                n: [c] for n, c in want.client_ids.items()
            }, f"cycle {want.index}: client ids"
            assert {n: ds[0].fork_next for n, ds in ok.items()} == want.fork_next, f"cycle {want.index}: fork next"
    db.close()
