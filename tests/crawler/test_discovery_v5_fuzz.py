"""Fuzz and flood tests for the discovery v5 node, the v5 crawl and the shared v4/v5 socket.

Everything runs on the in-memory network (memnet) under trio's MockClock, so
"a flood" is counted in datagrams and the rate limits in mock seconds.  The
random inputs come from seeded ``random.Random`` instances: a failure names
the seed and is reproducible.

What is checked, beyond "nothing raised" (an exception escaping a node's task
would fail the test through its nursery):

* every datagram is counted, and each one is either dropped or answered by at
  most one 63-byte WHOAREYOU, which the wire layer's rate limits bound;
* replayed handshakes create no session, replayed WHOAREYOUs no handshake
  storm; unsolicited WHOAREYOUs get no answer at all;
* the node still answers a proper client afterwards, and a crawl under a flood
  still finds every node and ends by itself;
* on a shared socket, junk reaches the v5 lane only, and a v5 flood that
  overflows its lane leaves v4 answering.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import ip_address

import trio
from memnet import MemoryEndpoint, MemoryNetwork, collect_records
from trio.testing import MockClock

from ethcrawl.crawler.discovery import DiscoveryV4
from ethcrawl.crawler.discovery_v5 import DiscoveryV5, DiscoveryV5Config
from ethcrawl.crawler.engine import Crawler
from ethcrawl.crawler.targets import TargetTable
from ethcrawl.crawler.udp import ProtocolDemux
from ethcrawl.db.records import NodeSeen
from ethcrawl.wire import discv4
from ethcrawl.wire.crypto import PrivateKey, generate_private_key
from ethcrawl.wire.discv5.crypto import ID_SIGNATURE_SIZE, MASKING_IV_SIZE, NODE_ID_SIZE, NONCE_SIZE, mask
from ethcrawl.wire.discv5.messages import Pong
from ethcrawl.wire.discv5.packet import (
    FLAG_HANDSHAKE,
    FLAG_MESSAGE,
    FLAG_WHOAREYOU,
    ID_NONCE_SIZE,
    MAX_PACKET_SIZE,
    MIN_PACKET_SIZE,
    PROTOCOL_ID,
    STATIC_HEADER_SIZE,
    VERSION,
    HandshakeAuthdata,
    Header,
    MessageAuthdata,
    Packet,
    WhoareyouAuthdata,
    decode_packet,
    encode_packet,
)
from ethcrawl.wire.discv5.session import Config, Discv5Protocol, HandshakeCompleted, MessageReceived, Outgoing
from ethcrawl.wire.enr import ENR

Address = tuple[str, int]

# Datagrams sent between two waits for quiet: well below memnet's 1,024-slot
# receive queue, so the network itself never drops what the test means to deliver.
BURST = 100
WHOAREYOU_SIZE = MIN_PACKET_SIZE  # bytes: masking iv, static header and the 24-byte authdata, no message
COMPRESSED_KEY_SIZE = 33  # bytes, the v4 identity scheme's ephemeral key
SIZES_THAT_MATTER = (0, 1, 62, 63, 64, 1279, 1280, 1281, 1500)  # bytes: around the 63-byte minimum and 1280 limit
WALL_EPOCH = 1_700_000_000.0  # s, NodeSeen timestamps in the crawl test


async def idle() -> None:
    """Return once every other task is blocked: under the autojump clock a sleep ends only then."""
    await trio.sleep(0.001)


async def start_v5(net: MemoryNetwork, nursery: trio.Nursery, *, config: DiscoveryV5Config | None = None) -> DiscoveryV5:
    node = DiscoveryV5(generate_private_key(), transport=net.open(), config=config)
    await nursery.start(node.run)
    return node


def address_of(node: DiscoveryV5) -> Address:
    return ("127.0.0.1", node.port)


def sent_from(net: MemoryNetwork, addr: Address, since: int) -> list[tuple[Address, bytes]]:
    """Datagrams ``addr`` sent since ``net.sent[since]``, as (destination, bytes)."""
    return [(dst, data) for src, dst, data in net.sent[since:] if src == addr]


async def blast(sources: list[MemoryEndpoint], datagrams: list[bytes], dst: Address) -> None:
    """Send ``datagrams`` to ``dst`` round-robin from ``sources``, waiting for quiet every BURST."""
    for i, data in enumerate(datagrams):
        await sources[i % len(sources)].sendto(data, dst)
        if i % BURST == BURST - 1:
            await idle()
    await idle()


@contextmanager
def impersonate(net: MemoryNetwork, addr: Address) -> Iterator[MemoryEndpoint]:
    """Take over ``addr``: datagrams to it reach the yielded endpoint (its owner goes deaf) until exit."""
    owner = net.endpoints[addr]
    spoof = net.open(*addr)
    try:
        yield spoof
    finally:
        net.endpoints[addr] = owner


def frame(dest_id: bytes, masking_iv: bytes, header: bytes, message: bytes) -> bytes:
    """A datagram with ``header`` masked for ``dest_id``, whatever the header says (encode_packet checks it)."""
    return masking_iv + mask(dest_id, masking_iv, header) + message


def whoareyou(rng: random.Random, dest_id: bytes, nonce: bytes, enr_seq: int = 0) -> bytes:
    authdata = WhoareyouAuthdata(id_nonce=rng.randbytes(ID_NONCE_SIZE), enr_seq=enr_seq)
    return encode_packet(Packet(masking_iv=rng.randbytes(MASKING_IV_SIZE), header=Header(nonce=nonce, authdata=authdata)), dest_id)


def sessionless(rng: random.Random, dest_id: bytes, src_id: bytes) -> bytes:
    """An ordinary message packet from ``src_id`` that no session can decrypt: it asks for a WHOAREYOU."""
    header = Header(nonce=rng.randbytes(NONCE_SIZE), authdata=MessageAuthdata(src_id=src_id))
    packet = Packet(masking_iv=rng.randbytes(MASKING_IV_SIZE), header=header, message=rng.randbytes(rng.randint(16, 200)))
    return encode_packet(packet, dest_id)


def unsolicited_handshake(rng: random.Random, dest_id: bytes) -> bytes:
    authdata = HandshakeAuthdata(
        src_id=rng.randbytes(NODE_ID_SIZE),
        id_signature=rng.randbytes(ID_SIGNATURE_SIZE),
        eph_pubkey=rng.randbytes(COMPRESSED_KEY_SIZE),
        record=rng.randbytes(rng.choice((0, 50, 300))),
    )
    header = Header(nonce=rng.randbytes(NONCE_SIZE), authdata=authdata)
    packet = Packet(masking_iv=rng.randbytes(MASKING_IV_SIZE), header=header, message=rng.randbytes(40))
    return encode_packet(packet, dest_id)


# ---------------------------------------------------------------------- 1. random datagrams


async def test_random_datagrams_are_counted_and_dropped(autojump_clock: MockClock) -> None:
    seed = 0x5EED01
    rng = random.Random(seed)
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        node = await start_v5(net, nursery)
        senders = [net.open(f"127.0.3.{i}") for i in range(1, 5)]
        sizes = [*SIZES_THAT_MATTER, *(rng.randint(0, 1500) for _ in range(600))]
        mark = len(net.sent)
        await blast(senders, [rng.randbytes(size) for size in sizes], address_of(node))
        stats = node.statistics()
        assert stats.packets_in == len(sizes), seed
        # Random bytes never unmask to "discv5": every one is dropped, none answered.
        assert stats.dropped == len(sizes), seed
        assert stats.packets_out == 0 and sent_from(net, address_of(node), mark) == []

        client = await start_v5(net, nursery)
        assert await client.ping(node.enr) is not None
        assert node.statistics().dropped == len(sizes)  # the proper exchange dropped nothing
        nursery.cancel_scope.cancel()


def random_behind_header(rng: random.Random, dest_id: bytes, size: int) -> tuple[bytes, bool]:
    """A datagram of about ``size`` bytes with a masked discv5 header whose fields are randomly right or wrong.

    Returns it with whether it is a well-formed ordinary message packet (which a
    node without a session must answer with a WHOAREYOU).
    """
    protocol_id = PROTOCOL_ID if rng.random() < 0.9 else rng.randbytes(len(PROTOCOL_ID))
    version = VERSION if rng.random() < 0.9 else rng.randrange(1 << 16)
    flag = rng.choice((FLAG_MESSAGE, FLAG_MESSAGE, FLAG_WHOAREYOU, FLAG_HANDSHAKE, 3, 255))
    natural = {FLAG_MESSAGE: NODE_ID_SIZE, FLAG_WHOAREYOU: ID_NONCE_SIZE + 8}.get(flag, rng.randint(0, 200))
    authdata = rng.randbytes(natural if rng.random() < 0.7 else rng.randint(0, 200))
    declared = len(authdata) if rng.random() < 0.8 else rng.randrange(1 << 16)
    header = protocol_id + version.to_bytes(2, "big") + bytes((flag,)) + rng.randbytes(NONCE_SIZE)
    header += declared.to_bytes(2, "big") + authdata
    message = rng.randbytes(max(0, size - MASKING_IV_SIZE - len(header)))
    data = frame(dest_id, rng.randbytes(MASKING_IV_SIZE), header, message)[: max(size, 0)] if size else b""
    well_formed = (
        protocol_id == PROTOCOL_ID
        and version == VERSION
        and flag == FLAG_MESSAGE
        and len(authdata) == declared == NODE_ID_SIZE
        and len(data) == MASKING_IV_SIZE + len(header) + len(message)
        and MIN_PACKET_SIZE <= len(data) <= MAX_PACKET_SIZE
    )
    return data, well_formed


async def test_random_packets_behind_a_valid_masked_header(autojump_clock: MockClock) -> None:
    """Past the unmasking: each datagram is dropped or gets exactly one WHOAREYOU, never anything else."""
    seed = 0x5EED02
    rng = random.Random(seed)
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        node = await start_v5(net, nursery)
        senders = [net.open(f"127.0.3.{i}") for i in range(1, 5)]
        sizes = [*SIZES_THAT_MATTER, *(rng.randint(0, 1500) for _ in range(800))]
        built = [random_behind_header(rng, node.node_id, size) for size in sizes]
        expected_challenges = sum(well_formed for _data, well_formed in built)
        mark = len(net.sent)
        await blast(senders, [data for data, _ in built], address_of(node))
        stats = node.statistics()
        replies = sent_from(net, address_of(node), mark)
        assert stats.packets_in == len(built), seed
        # Each well-formed session-less packet (fresh random src ids, ~50 per IP: under
        # every rate limit) gets its WHOAREYOU; everything else is dropped, unanswered.
        assert expected_challenges > 50, seed
        assert stats.packets_out == len(replies) == expected_challenges, seed
        assert stats.dropped == len(built) - expected_challenges, seed
        assert stats.rate_limited == 0
        assert all(len(data) == WHOAREYOU_SIZE for _dst, data in replies)

        client = await start_v5(net, nursery)
        assert await client.ping(node.enr) is not None
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------- 2. mutated and replayed real packets


def make_enr(rng: random.Random, port: int) -> ENR:
    """A record with a key drawn from ``rng``, so the table it lands in is the same every run."""
    return ENR.create(PrivateKey(rng.randbytes(32)), seq=1, pairs={"ip": "127.0.0.1", "udp": port})


def mutants(rng: random.Random, packets: list[bytes], dest_id: bytes) -> list[bytes]:
    """Byte-flipped, truncated, extended and header-swapped variants of real packets addressed to ``dest_id``."""
    out: list[bytes] = []
    decoded = [decode_packet(p, dest_id) for p in packets]
    for data, packet in zip(packets, decoded):
        header_end = MASKING_IV_SIZE + len(packet.header_data)
        # One flip in each region: iv, protocol id, version, flag, nonce, authdata size, authdata, message, tag.
        positions = [0, MASKING_IV_SIZE, MASKING_IV_SIZE + 6, MASKING_IV_SIZE + 8, MASKING_IV_SIZE + 12,
                     MASKING_IV_SIZE + STATIC_HEADER_SIZE - 1, header_end - 1, header_end, len(data) - 1]
        positions += [rng.randrange(len(data)) for _ in range(20)]
        for pos in positions:
            if pos < len(data):
                flipped = bytearray(data)
                flipped[pos] ^= 1 << rng.randrange(8)
                out.append(bytes(flipped))
        for cut in (0, MIN_PACKET_SIZE - 1, MIN_PACKET_SIZE, header_end, len(data) - 16, len(data) - 1):
            out.append(data[: max(cut, 0)])
        for extra in (1, 16, MAX_PACKET_SIZE + 1 - len(data)):
            out.append(data + rng.randbytes(max(extra, 1)))
        # The same header re-masked with another flag: the authdata no longer fits the kind.
        for flag in (FLAG_MESSAGE, FLAG_WHOAREYOU, FLAG_HANDSHAKE, 7):
            if flag != packet.header.flag:
                header = bytearray(packet.header_data)
                header[8] = flag
                out.append(frame(dest_id, packet.masking_iv, bytes(header), packet.message))
        # The src id swapped for someone else's (authdata starts right after the static header).
        if packet.header.flag != FLAG_WHOAREYOU:
            header = bytearray(packet.header_data)
            header[STATIC_HEADER_SIZE : STATIC_HEADER_SIZE + NODE_ID_SIZE] = rng.randbytes(NODE_ID_SIZE)
            out.append(frame(dest_id, packet.masking_iv, bytes(header), packet.message))
    # Headers and bodies of different packets swapped, and masking ivs swapped.
    for (data_x, x), (data_y, y) in zip(zip(packets, decoded), zip(packets[1:] + packets[:1], decoded[1:] + decoded[:1])):
        out.append(frame(dest_id, x.masking_iv, x.header_data, y.message))
        out.append(data_y[:MASKING_IV_SIZE] + data_x[MASKING_IV_SIZE:])
    return out


async def test_mutated_and_replayed_packets_leave_the_node_serving(autojump_clock: MockClock) -> None:
    seed = 0x5EED03
    rng = random.Random(seed)
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a, b = await start_v5(net, nursery), await start_v5(net, nursery)
        for i in range(24):
            b.add_to_table(make_enr(rng, 42000 + i))
        a_addr, b_addr = address_of(a), address_of(b)

        # The real exchange: handshake + PING/PONG, FINDNODE/NODES (several packets), TALKREQ/TALKRESP.
        mark = len(net.sent)
        assert await a.ping(b.enr) is not None
        assert len(await a.find_node(b.enr, (256, 255, 254))) >= 8
        assert await a.talk(b.enr, b"fuzz", b"x") == b""
        to_b = [data for _dst, data in sent_from(net, a_addr, mark)]
        to_a = [data for _dst, data in sent_from(net, b_addr, mark)]
        assert [decode_packet(d, b.node_id).header.flag for d in to_b] == [
            FLAG_MESSAGE, FLAG_HANDSHAKE, FLAG_MESSAGE, FLAG_MESSAGE  # random packet, PING, FINDNODE, TALKREQ
        ]
        to_a_flags = [decode_packet(d, a.node_id).header.flag for d in to_a]
        assert to_a_flags[0] == FLAG_WHOAREYOU and set(to_a_flags[1:]) == {FLAG_MESSAGE}
        nodes_packets = len(to_a) - 3  # WHOAREYOU, PONG and TALKRESP besides the NODES answer
        assert nodes_packets >= 2
        random_packet, handshake, findnode, talkreq = to_b
        sessions = b.statistics().sessions
        handshakes = b.statistics().handshakes
        assert sessions == 1

        with impersonate(net, a_addr) as spoof:
            # Replayed handshake, 50 times: the challenge it answered is spent; no session, no answer.
            mark = len(net.sent)
            await blast([spoof], [handshake] * 50, b_addr)
            assert sent_from(net, b_addr, mark) == []
            assert b.statistics().sessions == sessions and b.statistics().handshakes == handshakes

            # Replayed requests under the live session: discv5.1 has no replay window, but each
            # replay gets at most the original answer, never more (no amplification).
            mark = len(net.sent)
            await blast([spoof], [findnode] * 20 + [talkreq] * 20, b_addr)
            assert len(sent_from(net, b_addr, mark)) <= 20 * nodes_packets + 20
            assert b.statistics().sessions == sessions

            # Mutants of everything a sent (and the old random packet, replayed as is).
            variants = [random_packet, *mutants(rng, to_b, b.node_id)]
            assert len(variants) > 150
            mark = len(net.sent)
            dropped_before = b.statistics().dropped
            await blast([spoof], variants, b_addr)
            replies = sent_from(net, b_addr, mark)
            # None decrypts (AES-GCM covers header and body): each is dropped or challenged,
            # and challenges stay within the per-IP budget.
            assert all(len(data) == WHOAREYOU_SIZE for _dst, data in replies), seed
            assert len(replies) <= Config().whoareyou_per_ip
            assert b.statistics().dropped - dropped_before + len(replies) == len(variants), seed

            # The handshake replayed again, now that a mutant may have left a fresh challenge
            # for a's id and address: its signature is over the old challenge, so still no session.
            sessions_now = b.statistics().sessions
            mark = len(net.sent)
            await blast([spoof], [handshake] * 20, b_addr)
            assert sent_from(net, b_addr, mark) == []
            assert b.statistics().sessions == sessions_now <= sessions
            assert b.statistics().handshakes == handshakes

        # b still serves a newcomer at once, and a again once the WHOAREYOU interval that the
        # mutants used up has passed.
        newcomer = await start_v5(net, nursery)
        assert await newcomer.ping(b.enr) is not None
        await trio.sleep(Config().whoareyou_interval)
        assert await a.ping(b.enr) is not None
        nursery.cancel_scope.cancel()


async def test_replayed_whoareyou_triggers_at_most_one_handshake(autojump_clock: MockClock) -> None:
    seed = 0x5EED04
    rng = random.Random(seed)
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a, b = await start_v5(net, nursery), await start_v5(net, nursery)
        a_addr, b_addr = address_of(a), address_of(b)
        mark = len(net.sent)
        assert await a.ping(b.enr) is not None
        assert await a.talk(b.enr, b"fuzz", b"x") == b""
        to_b = [data for _dst, data in sent_from(net, a_addr, mark)]
        to_a = [data for _dst, data in sent_from(net, b_addr, mark)]
        challenge = to_a[0]
        assert decode_packet(challenge, a.node_id).header.flag == FLAG_WHOAREYOU
        _random, handshake, talkreq = (decode_packet(d, b.node_id) for d in to_b)
        assert handshake.header.flag == FLAG_HANDSHAKE

        with impersonate(net, b_addr) as spoof:
            # b's own WHOAREYOU, replayed 50 times: its nonce was answered already.
            mark = len(net.sent)
            await blast([spoof], [challenge] * 50, a_addr)
            assert sent_from(net, a_addr, mark) == []
            # WHOAREYOUs quoting a's handshake packet: a peer rejecting our handshake gets no second one.
            await blast([spoof], [whoareyou(rng, a.node_id, handshake.header.nonce) for _ in range(30)], a_addr)
            assert sent_from(net, a_addr, mark) == []
            # WHOAREYOUs quoting a's TALKREQ packet, after the handshake interval: the peer "lost" the
            # session, so a handshakes again, once, however often the challenge repeats.
            await trio.sleep(Config().handshake_interval)
            mark = len(net.sent)
            quoting = [whoareyou(rng, a.node_id, talkreq.header.nonce, enr_seq=rng.choice((0, 1))) for _ in range(30)]
            await blast([spoof], quoting, a_addr)
            replies = sent_from(net, a_addr, mark)
            assert len(replies) == 1, seed
            assert decode_packet(replies[0][1], b.node_id).header.flag == FLAG_HANDSHAKE
        # a still serves.
        client = await start_v5(net, nursery)
        assert await client.ping(a.enr) is not None
        nursery.cancel_scope.cancel()


async def test_spoofed_junk_does_not_tear_down_a_live_session(autojump_clock: MockClock) -> None:
    rng = random.Random(0x5EED05)
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a, b = await start_v5(net, nursery), await start_v5(net, nursery)
        assert await a.ping(b.enr) is not None
        await trio.sleep(Config().whoareyou_interval)  # the limiter is not what this test is about
        with impersonate(net, address_of(a)) as spoof:
            await spoof.sendto(sessionless(rng, b.node_id, a.node_id), address_of(b))
            await idle()
        # a's keys are still good; an off-path sender who knows a's id and address should not matter.
        assert await a.ping(b.enr) is not None
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------- 3. WHOAREYOU flood


async def test_unsolicited_whoareyou_flood_from_many_addresses_gets_no_answer(autojump_clock: MockClock) -> None:
    seed = 0x5EED06
    rng = random.Random(seed)
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        target = await start_v5(net, nursery)
        target_addr = address_of(target)
        # A peer the target really is contacting, driven by hand so its WHOAREYOU can wait.
        peer_key = generate_private_key()
        peer_end = net.open("127.0.0.7")
        peer_enr = ENR.create(peer_key, seq=1, pairs={"ip": "127.0.0.7", "udp": peer_end.local_address[1]})
        peer = Discv5Protocol(peer_key, peer_enr)
        pongs: list[Pong | None] = []

        async def ping_peer() -> None:
            pongs.append(await target.ping(peer_enr))

        nursery.start_soon(ping_peer)
        first, addr = await peer_end.recvfrom()
        nonce = decode_packet(first, peer.local_id).header.nonce
        challenge = [e for e in peer.receive(first, addr, trio.current_time()) if isinstance(e, Outgoing)]
        assert len(challenge) == 1

        # 2,000 WHOAREYOUs from 40 addresses (and the peer's IP on another port): random nonces,
        # and one in four quoting the nonce the target really sent, but from the wrong address.
        flooders = [net.open(f"127.0.4.{i}") for i in range(1, 40)] + [net.open("127.0.0.7")]
        flood = [
            whoareyou(rng, target.node_id, nonce if i % 4 == 0 else rng.randbytes(NONCE_SIZE),
                      enr_seq=rng.choice((0, 1, 2, (1 << 64) - 1)))
            for i in range(2000)
        ]
        mark = len(net.sent)
        dropped_before = target.statistics().dropped
        await blast(flooders, flood, target_addr)
        assert sent_from(net, target_addr, mark) == []
        assert target.statistics().dropped - dropped_before == len(flood)
        assert target.statistics().handshakes == 0

        # The real challenge from the address it belongs to is still answered: one handshake packet,
        # and the PING it carries completes.
        await peer_end.sendto(challenge[0].data, challenge[0].addr)
        data, addr = await peer_end.recvfrom()
        events = peer.receive(data, addr, trio.current_time())
        assert [type(e) for e in events] == [HandshakeCompleted, MessageReceived]
        request = events[1]
        assert isinstance(request, MessageReceived)
        pong = Pong(request_id=request.message.request_id, enr_seq=1, recipient_ip=ip_address(addr[0]), recipient_port=addr[1])
        for out in peer.send_message(request.node_id, addr, pong, now=trio.current_time()):
            await peer_end.sendto(out.data, out.addr)
        await idle()
        assert pongs and pongs[0] is not None
        assert len(sent_from(net, target_addr, mark)) == 1
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------- 4. a flood during a crawl

TREE_SIZE = 30
TREE_REPLY_DELAY = 0.08  # s per answer: the crawl then takes mock time, so the flood really overlaps it
FLOOD_IPS = 8
FLOOD_PERIOD = 0.001  # s between flood bursts (one burst to each target)
FLOOD_BURST = 6  # datagrams per target per burst
CRAWLER_WHOAREYOUS_PER_IP = 16  # a small budget on the crawler's node, so the limit visibly bites
POOLED_IDS_PER_IP = 3  # node ids each flooding IP reuses in its session-less packets


class Flood:
    """Junk and session-less packets from several IPs at several targets; records what comes back, and when."""

    def __init__(self, net: MemoryNetwork, rng: random.Random, targets: list[tuple[bytes, Address]]) -> None:
        self.rng = rng
        self.targets = targets
        self.endpoints = [net.open(f"127.0.5.{i}") for i in range(1, FLOOD_IPS + 1)]
        self.pools = {e.local_address: [rng.randbytes(NODE_ID_SIZE) for _ in range(POOLED_IDS_PER_IP)] for e in self.endpoints}
        self.sent = 0
        # (mock time, from, to, size) of every datagram a flooding endpoint received.
        self.received: list[tuple[float, Address, Address, int]] = []

    def _datagram(self, endpoint: MemoryEndpoint, dest_id: bytes) -> bytes:
        rng = self.rng
        kind = rng.randrange(5)
        if kind == 0:
            return rng.randbytes(rng.randint(0, 1500))
        if kind == 1:
            return sessionless(rng, dest_id, rng.randbytes(NODE_ID_SIZE))
        if kind == 2:
            return sessionless(rng, dest_id, rng.choice(self.pools[endpoint.local_address]))
        if kind == 3:
            return unsolicited_handshake(rng, dest_id)
        return whoareyou(rng, dest_id, rng.randbytes(NONCE_SIZE))

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for endpoint in self.endpoints:
                nursery.start_soon(self._drain, endpoint)
            while True:
                for dest_id, addr in self.targets:
                    for _ in range(FLOOD_BURST):
                        endpoint = self.rng.choice(self.endpoints)
                        await endpoint.sendto(self._datagram(endpoint, dest_id), addr)
                        self.sent += 1
                await trio.sleep(FLOOD_PERIOD)

    async def _drain(self, endpoint: MemoryEndpoint) -> None:
        while True:
            data, src = await endpoint.recvfrom()
            self.received.append((trio.current_time(), src, endpoint.local_address, len(data)))


def largest_window(times: list[float], interval: float) -> int:
    """Most events in one rate-limit window, windows opened as the wire's limiter opens them.

    A window starts at the first event after the previous window ran out
    (Discv5Protocol keeps (window start, count) per IP), so this reads the
    observed send times the way ``Config.whoareyou_per_ip`` is defined.
    """
    largest = 0
    start: float | None = None
    count = 0
    for t in sorted(times):
        if start is None or t - start >= interval:
            start, count = t, 0
        count += 1
        largest = max(largest, count)
    return largest


async def test_crawl_finds_every_node_under_a_flood(autojump_clock: MockClock) -> None:
    seed = 0x5EED07
    rng = random.Random(seed)
    net = MemoryNetwork()
    protocol_config = Config(whoareyou_per_ip=CRAWLER_WHOAREYOUS_PER_IP)
    async with trio.open_nursery() as nursery:
        tree = [await start_v5(net, nursery, config=DiscoveryV5Config(reply_delay=TREE_REPLY_DELAY)) for _ in range(TREE_SIZE)]
        for k, node in enumerate(tree):
            for child in tree[2 * k + 1 : 2 * k + 3]:
                node.add_to_table(child.enr)
        own = await start_v5(net, nursery, config=DiscoveryV5Config(protocol=protocol_config))
        root = tree[0]
        flood = Flood(net, rng, [(own.node_id, address_of(own)), (root.node_id, address_of(root))])
        send, receive = trio.open_memory_channel[object](100_000)
        crawler = Crawler(
            None, TargetTable.default(), send, crawl_id=1, discovery_v5=own,
            wall_clock=lambda: WALL_EPOCH + trio.current_time(),
        )
        async with trio.open_nursery() as flooding:
            flooding.start_soon(flood.run)
            await idle()  # the flood is on before the crawl starts
            started = trio.current_time()
            with trio.fail_after(120):  # mock seconds: the crawl must end by itself
                stats = await crawler.run([root.enr])
            duration = trio.current_time() - started
            flooding.cancel_scope.cancel()
        send.close()
        records = await collect_records(receive)
        nursery.cancel_scope.cancel()

    found = {r.node_id for r in records if isinstance(r, NodeSeen)}
    assert found == {n.node_id for n in tree}, seed
    assert stats.answered_v5 == TREE_SIZE and stats.in_flight == 0 and stats.queued == 0
    assert flood.sent >= 3000, (flood.sent, duration)

    interval = protocol_config.whoareyou_interval
    assert duration > interval  # the flood spans more than one rate-limit window
    largest: dict[Address, int] = {}
    for target, budget in ((address_of(own), CRAWLER_WHOAREYOUS_PER_IP), (address_of(root), Config().whoareyou_per_ip)):
        answers = [r for r in flood.received if r[1] == target]
        # The only thing a target ever sends a flooder is a WHOAREYOU ...
        assert all(size == WHOAREYOU_SIZE for _t, _src, _dst, size in answers)
        for endpoint in flood.endpoints:
            times = [t for t, _src, dst, _size in answers if dst == endpoint.local_address]
            # ... and at most the per-IP budget of them per window.
            window = largest_window(times, interval)
            assert window <= budget, (target, endpoint.local_address)
            largest[target] = max(largest.get(target, 0), window)
    # The crawler's small budget was reached, not exceeded: the limiter, not the flood's pace, capped it.
    assert largest[address_of(own)] == CRAWLER_WHOAREYOUS_PER_IP
    assert own.statistics().rate_limited > 0
    own_answers = [t for t, src, _dst, _size in flood.received if src == address_of(own)]
    assert len(own_answers) <= FLOOD_IPS * CRAWLER_WHOAREYOUS_PER_IP * (int(duration / interval) + 2)


# ---------------------------------------------------------------------- 5. the shared socket

SMALL_LANE = 64  # datagrams a lane may queue in the shared-socket test, so a flood overflows it quickly


class GatedEndpoint(MemoryEndpoint):
    """A socket whose kernel buffer the test can let fill: closed, datagrams wait (up to ``capacity``).

    Once open, ``recvfrom`` returns queued datagrams without yielding, as a
    reader does when the buffer is full after a busy spell: the lanes, not the
    socket, must then absorb the burst.
    """

    def __init__(self, network: MemoryNetwork, address: Address, capacity: int) -> None:
        super().__init__(network, address)
        self._send, self._receive = trio.open_memory_channel[tuple[bytes, Address]](capacity)
        network.endpoints[address] = self
        self.is_open = True
        self._opened = trio.Event()

    def close_gate(self) -> None:
        self.is_open = False
        self._opened = trio.Event()

    def open_gate(self) -> None:
        self.is_open = True
        self._opened.set()

    async def recvfrom(self) -> tuple[bytes, Address]:
        try:
            item = self._receive.receive_nowait()
        except trio.WouldBlock:
            item = await self._receive.receive()
        # Checked after the wait too: a reader already waiting when the gate closed must hold on as well.
        if not self.is_open:
            await self._opened.wait()
        return item


async def test_shared_socket_sends_junk_to_v5_and_keeps_v4_answering_through_a_v5_flood(
    autojump_clock: MockClock,
) -> None:
    seed = 0x5EED08
    rng = random.Random(seed)
    net = MemoryNetwork()
    shared = GatedEndpoint(net, ("127.0.0.1", 30303), capacity=20_000)
    key = generate_private_key()
    demux = ProtocolDemux(shared, discv4.looks_like_v4, buffer=SMALL_LANE)
    both_v4 = DiscoveryV4(key, transport=demux.v4)
    both_v5 = DiscoveryV5(key, transport=demux.v5)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(demux.run)
        await nursery.start(both_v4.run)
        await nursery.start(both_v5.run)
        v4_client = DiscoveryV4(generate_private_key(), transport=net.open())
        await nursery.start(v4_client.run)
        v5_client = await start_v5(net, nursery)
        mark = len(net.sent)
        assert await v4_client.ping(both_v4.local_node) is not None
        assert await v5_client.ping(both_v5.enr) is not None
        real_v4 = [data for src, dst, data in net.sent[mark:] if dst == shared.local_address and discv4.looks_like_v4(data)]
        assert real_v4  # the client's Ping

        # Junk that is neither protocol: random bytes, and real v4 packets with a byte flipped
        # after the hash or cut short (their hash no longer matches).  All of it goes to v5, which drops it.
        junk = [rng.randbytes(size) for size in (*SIZES_THAT_MATTER, *(rng.randint(0, 1500) for _ in range(150)))]
        for data in real_v4:
            for _ in range(20):
                flipped = bytearray(data)
                flipped[rng.randrange(32, len(data))] ^= 1 << rng.randrange(8)
                junk.append(bytes(flipped))
            junk += [data[:cut] for cut in (0, 32, 97, 98, len(data) - 1)]
        junk_sources = [net.open(f"127.0.6.{i}") for i in range(1, 4)]
        v4_before, v5_before = demux.v4.received, demux.v5.received
        dropped_before = both_v5.statistics().dropped
        mark = len(net.sent)
        for start in range(0, len(junk), SMALL_LANE // 2):  # within the lane, to count drops one by one
            await blast(junk_sources, junk[start : start + SMALL_LANE // 2], shared.local_address)
        assert demux.v4.received == v4_before
        assert demux.v5.received - v5_before == len(junk)
        assert both_v5.statistics().dropped - dropped_before == len(junk)
        assert both_v4.statistics().bad_packets == 0
        assert sent_from(net, shared.local_address, mark) == []
        assert demux.v5.overflowed == 0

        # A burst the socket delivers all at once: 4,000 junk datagrams with a v4 Ping in the middle.
        shared.close_gate()
        v5_received = demux.v5.received
        flood = [rng.randbytes(rng.randint(MIN_PACKET_SIZE, 1280)) for _ in range(4000)]
        for i, data in enumerate(flood[:2000]):
            await junk_sources[i % 3].sendto(data, shared.local_address)
        pongs: list[object] = []

        async def ping_v4() -> None:
            pongs.append(await v4_client.ping(both_v4.local_node))

        nursery.start_soon(ping_v4)
        await trio.testing.wait_all_tasks_blocked()  # the Ping is queued behind the first half
        for i, data in enumerate(flood[2000:]):
            await junk_sources[i % 3].sendto(data, shared.local_address)
        assert demux.v5.received == v5_received and not pongs  # everything waits at the socket
        shared.open_gate()
        await idle()
        assert pongs and pongs[0] is not None  # v4 answered through the v5 flood
        assert demux.v5.received - v5_received == len(flood)
        # The v5 lane kept what fits (and one handed straight to its waiting reader); the rest was counted.
        assert len(flood) - SMALL_LANE - 1 <= demux.v5.overflowed <= len(flood) - SMALL_LANE
        assert demux.v4.overflowed == 0

        # Both protocols still serve.
        assert await v5_client.ping(both_v5.enr) is not None
        assert await v4_client.ping(both_v4.local_node) is not None
        nursery.cancel_scope.cancel()
