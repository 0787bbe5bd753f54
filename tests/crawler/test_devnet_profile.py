"""The dirt of ``devnet --profile mainnet``, as planned: pure, no sockets.

Shares of each kind of record, where dead records live (never where a socket
is), geth's IP limits in the planned tables, the schedule of joins, leaves and
record changes, and determinism from the seed.
"""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address, ip_address
from typing import Any

import pytest

from ethcrawl.crawler.devnet import DIRTY_HOLDERS, WITHOUT_RLPX_LISTENER, DevnetConfig, Kind, plan_devnet
from ethcrawl.crawler.devnet_profile import IDEAL, MAINNET, PROFILES, DirtConfig, Role, draw_rtt
from ethcrawl.crawler.relay import relay_error
from ethcrawl.crawler.devnet_tables import served
from ethcrawl.crawler.table import BUCKET_IP_LIMIT, TABLE_IP_LIMIT, bucket_index

import random

LIVE = 300


@pytest.fixture(scope="module")
def plan() -> Any:
    return plan_devnet(DevnetConfig(nodes=LIVE, seed=7, dirt=MAINNET))


def test_profiles_are_ideal_and_mainnet() -> None:
    assert PROFILES == {"ideal": IDEAL, "mainnet": MAINNET}
    assert not IDEAL.has_dead_records and not IDEAL.shapes_links
    assert MAINNET.stale_share == 0.6 and MAINNET.loss == 0.02 and (MAINNET.rtt_min, MAINNET.rtt_max) == (0.02, 0.4)
    assert MAINNET.bond_expiry == 24 * 3600  # geth's bondExpiration


def test_the_ideal_profile_plans_what_the_devnet_always_planned() -> None:
    config = DevnetConfig(nodes=50, seed=3)
    assert config.dirt is IDEAL
    plan = plan_devnet(config)
    assert plan.records == () and all(s.events.rtt == 0 and s.events.leave_at is None for s in plan.nodes)
    # Dirt draws from an RNG of its own: the live nodes' keys and kinds are the same either way.
    dirty = plan_devnet(DevnetConfig(nodes=50, seed=3, dirt=MAINNET))
    assert [(s.node_id, s.kind) for s in dirty.nodes] == [(s.node_id, s.kind) for s in plan.nodes]


def test_flags_override_the_profile_and_bad_values_are_refused() -> None:
    assert MAINNET.overridden(loss=0.1, rtt_max=None).loss == 0.1
    assert MAINNET.overridden(loss=0.1).rtt_max == MAINNET.rtt_max
    with pytest.raises(ValueError, match="unknown knobs"):
        MAINNET.overridden(lossy=1)
    for bad in ({"loss": 1.5}, {"stale_share": 0.8, "nat_share": 0.3}, {"rtt_min": 0.3, "rtt_max": 0.1}, {"churn_share": 0.6}):
        with pytest.raises(ValueError):
            DirtConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="127.0.0.0/16"):
        DevnetConfig(nodes=5, host="127.3.0.1", dirt=MAINNET)


def test_shares_of_each_kind(plan: Any) -> None:
    roles = Counter(r.role for r in plan.records)
    total = LIVE / (1 - MAINNET.stale_share - MAINNET.nat_share)
    assert roles[Role.STALE] + roles[Role.STALE_OLD_KEY] == round(total * MAINNET.stale_share)
    assert roles[Role.STALE_OLD_KEY] == round(MAINNET.old_key_share * round(total * MAINNET.stale_share))
    assert roles[Role.NAT] == round(total * MAINNET.nat_share)
    assert roles[Role.SYBIL] == MAINNET.sybil_clusters * MAINNET.sybil_size
    assert [r.index for r in plan.records] == list(range(LIVE, LIVE + len(plan.records)))
    # What the live nodes hand out is mostly dead, as on the real network.
    entries = [j for s in plan.nodes for j in s.known]
    dead = sum(j >= LIVE for j in entries) / len(entries)
    assert 0.55 < dead < 0.85


def test_dead_records_point_where_no_socket_is(plan: Any) -> None:
    live_hosts = {s.host for s in plan.nodes}
    for record in plan.records:
        if record.role is Role.STALE_OLD_KEY:
            twin = plan.nodes[record.twin]
            # A live node's address (its port is known once bound), under a key it no longer has.
            assert record.twin != 0 and record.host == twin.host and record.port == 0
            assert record.node_id != twin.node_id
            continue
        assert record.host not in live_hosts and ip_address(record.host).is_loopback
        assert record.port > 1024
        # A live node would believe it if another live node relayed it (no "special" address).
        assert relay_error(IPv4Address("127.0.0.1"), ip_address(record.host), record.port) is None
    assert len({r.node_id for r in plan.records} | {s.node_id for s in plan.nodes}) == LIVE + len(plan.records)


def test_sybil_clusters_share_an_endpoint_or_an_ip(plan: Any) -> None:
    clusters: dict[int, list[Any]] = {}
    for record in plan.records:
        if record.role is Role.SYBIL:
            clusters.setdefault(record.cluster, []).append(record)
    assert len(clusters) == MAINNET.sybil_clusters
    for cluster, members in clusters.items():
        assert len({m.host for m in members}) == 1
        assert len({m.port for m in members}) == (1 if cluster % 2 == 0 else len(members))


def test_tables_keep_geths_ip_limits(plan: Any) -> None:
    subnet = {r.index: r.subnet for r in plan.records}
    spread = Counter()
    for spec in plan.nodes:
        me = int.from_bytes(spec.node_id, "big")
        per_table: Counter[int] = Counter()
        per_bucket: Counter[tuple[int, int]] = Counter()
        for j in spec.known:
            key = subnet.get(j)
            if key is None:
                continue  # live nodes share loopback addresses, exempt as in geth
            other = plan.records[j - LIVE]
            per_table[key] += 1
            per_bucket[(me ^ int.from_bytes(other.node_id, "big")).bit_length(), key] += 1
            if other.role is Role.SYBIL:
                spread[other.cluster] += 1
        assert max(per_table.values(), default=0) <= TABLE_IP_LIMIT
        assert max(per_bucket.values(), default=0) <= BUCKET_IP_LIMIT
    # No one table holds a cluster whole, but the network as a whole hands out more of it.
    assert all(count > TABLE_IP_LIMIT for count in spread.values())


def test_every_staying_live_node_is_findable_and_held_by_several(plan: Any) -> None:
    findable = plan.findable()
    staying = {s.index for s in plan.nodes if s.events.leave_at is None}
    assert staying <= findable
    holders = Counter(j for i in staying for j in plan.nodes[i].known)
    assert min(holders[j] for j in staying - {0}) >= DIRTY_HOLDERS
    # Dead records are found only through live tables: nearly all of them are in one.
    assert len(findable - set(range(LIVE))) > 0.95 * len(plan.records)


def test_findable_counts_what_a_bucket_can_serve_not_what_the_plan_filed() -> None:
    """A running routing table keeps BUCKET_SIZE per bucket (the nearest distances share bucket 0); what a plan
    files past that waits as a replacement and is never handed out, so it is not findable through that table.
    At 100,000 records the bootnode's plan held 8,464 records and served 142: 730 live nodes were counted as
    findable that no walk could find."""
    owner = 0
    ids = [owner] + [(1 << 255) | k for k in range(1, 21)]  # 20 records at log distance 256: one bucket
    ids += [1, 2, 3]  # log distances 1, 2, 2: bucket 0, with room
    table = list(range(1, len(ids)))
    kept = served(owner, table, ids)
    assert kept == list(range(1, 17)) + [21, 22, 23]  # the first 16 filed at 256, and bucket 0's three
    assert bucket_index(256) == 16 and bucket_index(241) == 1 and bucket_index(240) == bucket_index(1) == 0
    # Records filed late (joiners, filed when they join) find the bucket full.
    assert served(owner, table, ids, late={1, 2}) == list(range(3, 19)) + [21, 22, 23]


def test_the_schedule_of_churn_and_record_changes(plan: Any) -> None:
    events = [s.events for s in plan.nodes]
    leave = [i for i, e in enumerate(events) if e.leave_at is not None]
    join = [i for i, e in enumerate(events) if e.join_at is not None]
    change = [i for i, e in enumerate(events) if e.enr_change_at is not None]
    assert len(leave) == len(join) == round(MAINNET.churn_share * LIVE)
    assert len(change) == round(MAINNET.enr_change_share * LIVE)
    assert not set(leave) & set(join) and not set(change) & (set(leave) | set(join))
    assert 0 not in leave + join + change  # the bootnode stays as it is
    for i in change:
        assert plan.nodes[i].kind not in WITHOUT_RLPX_LISTENER and plan.nodes[i].kind is not Kind.NO_ENR
    at = [t for e in events for t in (e.leave_at, e.join_at, e.enr_change_at) if t is not None]
    assert all(0 <= t <= MAINNET.churn_window for t in at)
    nat_dials = [r.dial_out_at for r in plan.records if r.dial_out_at is not None]
    assert len(nat_dials) == round(MAINNET.nat_dial_share * sum(r.role is Role.NAT for r in plan.records))


def test_round_trips_spread_with_a_heavy_tail() -> None:
    rng = random.Random(1)
    rtts = sorted(draw_rtt(MAINNET, rng) for _ in range(5000))
    assert MAINNET.rtt_min <= rtts[0] and rtts[-1] <= MAINNET.rtt_max
    median, p90 = rtts[len(rtts) // 2], rtts[len(rtts) * 9 // 10]
    assert 0.04 < median < 0.1 and p90 > 2.5 * median  # most are fast, a tail is slow
    assert draw_rtt(IDEAL, rng) == 0.0


def test_dirty_plans_are_deterministic_per_seed() -> None:
    dirt = MAINNET.overridden(stale_share=0.5)
    a, b = plan_devnet(DevnetConfig(nodes=80, seed=2, dirt=dirt)), plan_devnet(DevnetConfig(nodes=80, seed=2, dirt=dirt))
    c = plan_devnet(DevnetConfig(nodes=80, seed=3, dirt=dirt))
    assert a == b
    assert [r.node_id for r in a.records] != [r.node_id for r in c.records]
