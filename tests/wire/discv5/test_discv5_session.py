"""discovery v5.1 sessions: two (or three) Discv5Protocol instances talking in memory.

Handshakes both ways, with and without the initiator's ENR; PING/PONG,
FINDNODE/NODES over several packets, TALKREQ/TALKRESP; queued messages behind
a handshake; a restarted peer (lost session keys) leads to a new WHOAREYOU and
recovery; every peer mistake ends as a typed PacketDropped; WHOAREYOU floods
stay bounded by the rate limits (time is injected).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ethcrawl.wire.crypto import PrivateKey
from ethcrawl.wire.discv5.crypto import mask
from ethcrawl.wire.discv5.messages import FindNode, Message, Nodes, Ping, Pong, TalkReq, TalkResp, split_nodes
from ethcrawl.wire.discv5.packet import (
    HandshakeAuthdata,
    Header,
    MessageAuthdata,
    Packet,
    WhoareyouAuthdata,
    decode_packet,
    encode_packet,
)
from ethcrawl.wire.discv5.session import (
    Address,
    Config,
    Discv5Protocol,
    Event,
    HandshakeCompleted,
    MessageReceived,
    Outgoing,
    PacketDropped,
)
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import (
    BadENR,
    BadSignature,
    HandshakeError,
    LocalProtocolError,
    RateLimited,
    UnsolicitedReply,
    WireError,
)

ALICE_KEY = PrivateKey(bytes(31) + b"\x01")
BOB_KEY = PrivateKey(bytes(31) + b"\x02")
CAROL_KEY = PrivateKey(bytes(31) + b"\x03")
ALICE_ADDR: Address = ("127.0.0.1", 30301)
BOB_ADDR: Address = ("127.0.0.1", 30302)
CAROL_ADDR: Address = ("127.0.0.1", 30303)


def make_enr(key: PrivateKey, addr: Address, seq: int = 1) -> ENR:
    return ENR.create(key, seq=seq, pairs={"ip": addr[0], "udp": addr[1]})


ALICE_ENR = make_enr(ALICE_KEY, ALICE_ADDR)
BOB_ENR = make_enr(BOB_KEY, BOB_ADDR)
CAROL_ENR = make_enr(CAROL_KEY, CAROL_ADDR)
ALICE_ID, BOB_ID, CAROL_ID = (e.node_id for e in (ALICE_ENR, BOB_ENR, CAROL_ENR))
assert ALICE_ID is not None and BOB_ID is not None and CAROL_ID is not None


class Net:
    """Delivers datagrams between protocol instances in FIFO order; records what each side saw."""

    def __init__(self, **nodes: tuple[Discv5Protocol, Address]) -> None:
        self.by_addr = {addr: proto for proto, addr in nodes.values()}
        self.addr_of = {id(proto): addr for proto, addr in nodes.values()}
        self.events: dict[Address, list[Event]] = {addr: [] for addr in self.by_addr}
        self.wire: list[tuple[Address, Address, bytes]] = []  # (src, dst, datagram), everything sent
        self.now = 0.0
        self.drop_next: Callable[[Address, Address, bytes], bool] = lambda src, dst, data: False

    def send(self, sender: Discv5Protocol, dest: Discv5Protocol, message: Message, with_enr: bool = True) -> None:
        dest_enr = dest.local_enr if with_enr else None
        out = sender.send_message(dest.local_id, self.addr_of[id(dest)], message, dest_enr, now=self.now)
        self.deliver(self.addr_of[id(sender)], out)

    def deliver(self, src: Address, outgoing: list[Outgoing]) -> None:
        queue = [(src, o) for o in outgoing]
        while queue:
            src, o = queue.pop(0)
            self.wire.append((src, o.addr, o.data))
            if self.drop_next(src, o.addr, o.data):
                continue
            events = self.by_addr[o.addr].receive(o.data, src, self.now)
            for event in events:
                if isinstance(event, Outgoing):
                    queue.append((o.addr, event))
                else:
                    self.events[o.addr].append(event)

    def restart(self, addr: Address, proto: Discv5Protocol) -> None:
        """Put a fresh instance (same key, no sessions) where the old one listened."""
        self.by_addr[addr] = proto
        self.addr_of[id(proto)] = addr

    def take(self, addr: Address) -> list[Event]:
        events, self.events[addr] = self.events[addr], []
        return events


def pair(**config: float | int) -> tuple[Net, Discv5Protocol, Discv5Protocol]:
    cfg = Config(**config)
    alice = Discv5Protocol(ALICE_KEY, ALICE_ENR, config=cfg)
    bob = Discv5Protocol(BOB_KEY, BOB_ENR, config=cfg)
    return Net(alice=(alice, ALICE_ADDR), bob=(bob, BOB_ADDR)), alice, bob


def messages_of(events: list[Event]) -> list[Message]:
    return [e.message for e in events if isinstance(e, MessageReceived)]


def drops_of(events: list[Event]) -> list[WireError]:
    return [e.error for e in events if isinstance(e, PacketDropped)]


def handshake_packets(net: Net, dest_id: bytes) -> list[HandshakeAuthdata]:
    found = []
    for _src, _dst, data in net.wire:
        try:
            authdata = decode_packet(data, dest_id).header.authdata
        except WireError:
            continue
        if isinstance(authdata, HandshakeAuthdata):
            found.append(authdata)
    return found


# ----------------------------------------------------------------- handshakes and exchanges


@pytest.mark.parametrize("initiator", ["alice", "bob"])
def test_handshake_carries_enr_when_unknown_then_ping_pong(initiator: str) -> None:
    net, alice, bob = pair()
    a, b = (alice, bob) if initiator == "alice" else (bob, alice)
    a_addr, b_addr = net.addr_of[id(a)], net.addr_of[id(b)]
    net.send(a, b, Ping(request_id=b"\x01", enr_seq=a.local_enr.seq))
    # random packet, WHOAREYOU, handshake: three datagrams
    assert len(net.wire) == 3
    [handshake] = handshake_packets(net, b.local_id)
    assert ENR.from_rlp(handshake.record) == a.local_enr  # b knew nothing: challenge had enr-seq 0
    assert net.take(b_addr) == [
        HandshakeCompleted(node_id=a.local_id, addr=a_addr, enr=a.local_enr),
        MessageReceived(node_id=a.local_id, addr=a_addr, message=Ping(request_id=b"\x01", enr_seq=1)),
    ]
    assert b.enr_of(a.local_id) == a.local_enr
    pong = Pong(request_id=b"\x01", enr_seq=1, recipient_ip=ipaddress.IPv4Address(a_addr[0]), recipient_port=a_addr[1])
    net.deliver(b_addr, b.send_message(a.local_id, a_addr, pong, now=net.now))
    assert net.take(a_addr) == [
        HandshakeCompleted(node_id=b.local_id, addr=b_addr, enr=b.local_enr),
        MessageReceived(node_id=b.local_id, addr=b_addr, message=pong),
    ]
    assert len(net.wire) == 4  # the PONG went in one packet under the new session
    # Both ways now work under the session, without further handshakes.
    net.send(a, b, TalkReq(request_id=b"\x02", protocol=b"x", request=b"hi"))
    net.deliver(b_addr, b.send_message(a.local_id, a_addr, TalkResp(request_id=b"\x02", response=b""), now=net.now))
    assert messages_of(net.take(b_addr)) == [TalkReq(request_id=b"\x02", protocol=b"x", request=b"hi")]
    assert messages_of(net.take(a_addr)) == [TalkResp(request_id=b"\x02", response=b"")]
    assert len(net.wire) == 6
    assert a.statistics().handshakes_sent == 1 and b.statistics().handshakes_received == 1


def test_handshake_omits_enr_when_recipient_knows_current_seq() -> None:
    net, alice, bob = pair()
    bob.add_enr(ALICE_ENR)
    net.send(alice, bob, Ping(request_id=b"\x01", enr_seq=1))
    [handshake] = handshake_packets(net, BOB_ID)
    assert handshake.record == b""
    assert net.take(BOB_ADDR)[0] == HandshakeCompleted(node_id=ALICE_ID, addr=ALICE_ADDR, enr=ALICE_ENR)


def test_handshake_carries_enr_when_recipient_copy_is_stale() -> None:
    net, alice, bob = pair()
    bob.add_enr(ALICE_ENR)
    newer = make_enr(ALICE_KEY, ALICE_ADDR, seq=2)
    alice.update_local_enr(newer)
    net.send(alice, bob, Ping(request_id=b"\x01", enr_seq=2))
    [handshake] = handshake_packets(net, BOB_ID)
    assert handshake.record == newer.raw
    assert bob.enr_of(ALICE_ID) == newer


def test_findnode_answered_by_several_nodes_packets() -> None:
    net, alice, bob = pair()
    records = [make_enr(PrivateKey(bytes(30) + bytes((1, i))), ("10.0.0.1", 1000 + i)).raw for i in range(16)]
    net.send(alice, bob, FindNode(request_id=b"\x09", distances=(256, 255)))
    [request] = messages_of(net.take(BOB_ADDR))
    assert isinstance(request, FindNode)
    replies = split_nodes(request.request_id, records, max_size=700)  # small budget: several packets
    assert len(replies) > 1
    for reply in replies:
        net.deliver(BOB_ADDR, bob.send_message(ALICE_ID, ALICE_ADDR, reply, now=net.now))
    got = messages_of(net.take(ALICE_ADDR))
    assert all(isinstance(m, Nodes) and m.total == len(replies) and m.request_id == b"\x09" for m in got)
    assert [r for m in got if isinstance(m, Nodes) for r in m.records] == records
    assert all(len(data) <= 1280 for _s, _d, data in net.wire)


def test_messages_sent_during_the_handshake_queue_behind_it() -> None:
    net, alice, bob = pair()
    sent = [Ping(request_id=b"\x01", enr_seq=1), FindNode(request_id=b"\x02", distances=(1,)),
            TalkReq(request_id=b"\x03", protocol=b"p", request=b"")]
    first = alice.send_message(BOB_ID, BOB_ADDR, sent[0], BOB_ENR, now=0.0)
    assert len(first) == 1
    assert alice.send_message(BOB_ID, BOB_ADDR, sent[1], now=0.1) == []
    assert alice.send_message(BOB_ID, BOB_ADDR, sent[2], now=0.2) == []
    net.deliver(ALICE_ADDR, first)
    assert messages_of(net.take(BOB_ADDR)) == sent
    assert bob.statistics().whoareyou_sent == 1


def test_queue_is_bounded() -> None:
    net, alice, bob = pair(queue_limit=2)
    first = alice.send_message(BOB_ID, BOB_ADDR, Ping(request_id=b"\x00", enr_seq=1), BOB_ENR, now=0.0)
    for i in range(1, 6):
        assert alice.send_message(BOB_ID, BOB_ADDR, Ping(request_id=bytes((i,)), enr_seq=1), now=0.0) == []
    net.deliver(ALICE_ADDR, first)
    assert [m.request_id for m in messages_of(net.take(BOB_ADDR))] == [b"\x00", b"\x04", b"\x05"]
    assert alice.statistics().queue_overflows == 3


def test_unanswered_random_packet_is_retried_after_the_timeout() -> None:
    net, alice, bob = pair()
    net.drop_next = lambda src, dst, data: True
    net.send(alice, bob, Ping(request_id=b"\x01", enr_seq=1))
    net.drop_next = lambda src, dst, data: False
    net.now = 0.5
    net.send(alice, bob, Ping(request_id=b"\x02", enr_seq=1))  # still waiting: queued, nothing sent
    assert len(net.wire) == 1
    net.now = 2.0
    net.send(alice, bob, Ping(request_id=b"\x03", enr_seq=1))
    assert [m.request_id for m in messages_of(net.take(BOB_ADDR))] == [b"\x03"]


# ----------------------------------------------------------------- lost sessions


def test_restarted_recipient_challenges_again_and_session_recovers() -> None:
    net, alice, bob = pair()
    net.send(alice, bob, Ping(request_id=b"\x01", enr_seq=1))
    net.take(BOB_ADDR)
    # Bob restarts: same key, no sessions, no records.
    bob2 = Discv5Protocol(BOB_KEY, BOB_ENR)
    net.restart(BOB_ADDR, bob2)
    net.now = 5.0
    net.send(alice, bob2, Ping(request_id=b"\x02", enr_seq=1), with_enr=False)
    events = net.take(BOB_ADDR)
    assert events == [
        HandshakeCompleted(node_id=ALICE_ID, addr=ALICE_ADDR, enr=ALICE_ENR),
        MessageReceived(node_id=ALICE_ID, addr=ALICE_ADDR, message=Ping(request_id=b"\x02", enr_seq=1)),
    ]
    assert alice.statistics().handshakes_sent == 2
    net.deliver(BOB_ADDR, bob2.send_message(ALICE_ID, ALICE_ADDR, TalkResp(request_id=b"\x02", response=b""), now=5.0))
    assert messages_of(net.take(ALICE_ADDR)) == [TalkResp(request_id=b"\x02", response=b"")]


def test_restarted_initiator_makes_the_peer_drop_its_session() -> None:
    net, alice, bob = pair()
    net.send(alice, bob, Ping(request_id=b"\x01", enr_seq=1))
    assert bob.has_session(ALICE_ID, ALICE_ADDR)
    alice2 = Discv5Protocol(ALICE_KEY, ALICE_ENR)
    net.restart(ALICE_ADDR, alice2)
    net.take(BOB_ADDR)
    net.now = 5.0
    net.send(alice2, bob, Ping(request_id=b"\x05", enr_seq=1))
    # Bob could not decrypt the random packet under the old keys: it challenged, and the new handshake replaced them.
    assert messages_of(net.take(BOB_ADDR)) == [Ping(request_id=b"\x05", enr_seq=1)]
    assert bob.statistics().handshakes_received == 2


def test_undecryptable_packet_keeps_the_live_session_until_a_handshake_replaces_it() -> None:
    """A forged packet naming Alice's id and address gets a WHOAREYOU but does not end her session (as geth)."""
    net, alice, bob = pair()
    net.send(alice, bob, Ping(request_id=b"\x01", enr_seq=1))
    net.take(BOB_ADDR)
    forger = Discv5Protocol(ALICE_KEY, ALICE_ENR)  # same id, no session: its packet cannot decrypt at Bob
    net.now = 5.0
    [random_packet] = forger.send_message(BOB_ID, BOB_ADDR, Ping(request_id=b"\x09", enr_seq=1), BOB_ENR, now=5.0)
    [challenge] = bob.receive(random_packet.data, ALICE_ADDR, 5.0)
    assert isinstance(challenge, Outgoing)
    assert bob.has_session(ALICE_ID, ALICE_ADDR)
    # Alice's next message under the old keys still gets through.
    net.send(alice, bob, Ping(request_id=b"\x02", enr_seq=1))
    assert messages_of(net.take(BOB_ADDR)) == [Ping(request_id=b"\x02", enr_seq=1)]


def test_no_second_handshake_within_the_interval() -> None:
    net, alice, bob = pair(handshake_interval=2.0)
    net.send(alice, bob, Ping(request_id=b"\x01", enr_seq=1))
    bob2 = Discv5Protocol(BOB_KEY, BOB_ENR)
    net.restart(BOB_ADDR, bob2)
    net.now = 1.0
    net.send(alice, bob2, Ping(request_id=b"\x02", enr_seq=1))
    assert messages_of(net.take(BOB_ADDR)) == [Ping(request_id=b"\x01", enr_seq=1)]  # only the first
    [error] = drops_of(net.take(ALICE_ADDR))
    assert isinstance(error, RateLimited)
    net.now = 3.5  # past the interval, and past bob2's per-node WHOAREYOU interval
    net.send(alice, bob2, Ping(request_id=b"\x03", enr_seq=1))
    assert messages_of(net.take(BOB_ADDR)) == [Ping(request_id=b"\x03", enr_seq=1)]


def test_whoareyou_answering_our_handshake_is_not_answered_again() -> None:
    net, alice, bob = pair()
    first = alice.send_message(BOB_ID, BOB_ADDR, Ping(request_id=b"\x01", enr_seq=1), BOB_ENR, now=0.0)
    [whoareyou] = bob.receive(first[0].data, ALICE_ADDR, 0.0)
    assert isinstance(whoareyou, Outgoing)
    [handshake] = alice.receive(whoareyou.data, BOB_ADDR, 0.0)
    assert isinstance(handshake, Outgoing)
    # A WHOAREYOU quoting the handshake packet's nonce (as if bob rejected it).
    nonce = decode_packet(handshake.data, BOB_ID).header.nonce
    fake = Packet(masking_iv=bytes(16), header=Header(nonce=nonce, authdata=WhoareyouAuthdata(id_nonce=bytes(16), enr_seq=0)))
    [dropped] = alice.receive(encode_packet(fake, ALICE_ID), BOB_ADDR, 5.0)
    assert isinstance(dropped, PacketDropped) and isinstance(dropped.error, HandshakeError)


def test_whoareyou_quoting_one_of_our_answers_starts_no_handshake() -> None:
    """Only requests are worth a handshake (geth matches WHOAREYOU against active calls): answers are not kept."""
    net, alice, bob = pair()
    net.send(alice, bob, Ping(request_id=b"\x01", enr_seq=1))
    net.take(BOB_ADDR)
    [pong] = bob.send_message(ALICE_ID, ALICE_ADDR, Pong(request_id=b"\x01", enr_seq=1, recipient_ip=ipaddress.ip_address(ALICE_ADDR[0]), recipient_port=ALICE_ADDR[1]), now=5.0)
    nonce = decode_packet(pong.data, ALICE_ID).header.nonce
    fake = Packet(masking_iv=bytes(16), header=Header(nonce=nonce, authdata=WhoareyouAuthdata(id_nonce=bytes(16), enr_seq=0)))
    [dropped] = bob.receive(encode_packet(fake, BOB_ID), ALICE_ADDR, 5.0)
    assert isinstance(dropped, PacketDropped) and isinstance(dropped.error, UnsolicitedReply)
    assert bob.statistics().handshakes_sent == 0


def test_answering_a_request_flood_keeps_our_pending_request_answerable() -> None:
    net, alice, bob = pair(sent_packets_limit=16)
    net.send(alice, bob, Ping(request_id=b"\x01", enr_seq=1))
    net.take(BOB_ADDR)
    # Bob asks a third node something (a random packet goes out, its WHOAREYOU will quote it) ...
    carol_key = PrivateKey(bytes(31) + b"\x07")
    carol_enr = ENR.create(carol_key, seq=1, pairs={"ip": "127.0.0.3", "udp": 30303})
    assert carol_enr.node_id is not None
    [random_packet] = bob.send_message(carol_enr.node_id, ("127.0.0.3", 30303), Ping(request_id=b"\x09", enr_seq=1), carol_enr, now=5.0)
    # ... while answering far more of Alice's requests than the sent-packet cache holds.
    for i in range(64):
        bob.send_message(ALICE_ID, ALICE_ADDR, TalkResp(request_id=bytes([i + 1]), response=b""), now=5.0)
    carol = Discv5Protocol(carol_key, carol_enr)
    [whoareyou] = carol.receive(random_packet.data, BOB_ADDR, 5.0)
    assert isinstance(whoareyou, Outgoing)
    [handshake] = bob.receive(whoareyou.data, ("127.0.0.3", 30303), 5.0)
    assert isinstance(handshake, Outgoing)  # the pending PING still went out


# ----------------------------------------------------------------- typed drops


def _whoareyou_for(nonce: bytes, dest: bytes = ALICE_ID) -> bytes:
    packet = Packet(masking_iv=bytes(16), header=Header(nonce=nonce, authdata=WhoareyouAuthdata(id_nonce=bytes(16), enr_seq=0)))
    return encode_packet(packet, dest)


def test_unsolicited_whoareyou_is_dropped() -> None:
    _net, alice, _bob = pair()
    [event] = alice.receive(_whoareyou_for(bytes(12)), BOB_ADDR, 0.0)
    assert isinstance(event, PacketDropped) and isinstance(event.error, UnsolicitedReply)
    # A WHOAREYOU for a packet we did send, but from another address, is a spoof.
    [random_packet] = alice.send_message(BOB_ID, BOB_ADDR, Ping(request_id=b"", enr_seq=1), BOB_ENR, now=0.0)
    nonce = decode_packet(random_packet.data, BOB_ID).header.nonce
    [event] = alice.receive(_whoareyou_for(nonce), CAROL_ADDR, 0.0)
    assert isinstance(event, PacketDropped) and isinstance(event.error, UnsolicitedReply)
    [event] = alice.receive(_whoareyou_for(nonce), BOB_ADDR, 0.0)
    assert isinstance(event, Outgoing)


def _challenged_handshake(tamper: Callable[[HandshakeAuthdata], HandshakeAuthdata]) -> tuple[Discv5Protocol, Packet]:
    """Run alice->bob up to alice's handshake packet, then let ``tamper`` rewrite its authdata."""
    _net, alice, bob = pair()
    [first] = alice.send_message(BOB_ID, BOB_ADDR, Ping(request_id=b"\x01", enr_seq=1), BOB_ENR, now=0.0)
    [whoareyou] = bob.receive(first.data, ALICE_ADDR, 0.0)
    assert isinstance(whoareyou, Outgoing)
    [handshake] = alice.receive(whoareyou.data, BOB_ADDR, 0.0)
    assert isinstance(handshake, Outgoing)
    packet = decode_packet(handshake.data, BOB_ID)
    assert isinstance(packet.header.authdata, HandshakeAuthdata)
    header = Header(nonce=packet.header.nonce, authdata=tamper(packet.header.authdata))
    return bob, Packet(masking_iv=packet.masking_iv, header=header, message=packet.message)


def _replace(authdata: HandshakeAuthdata, **changes: bytes) -> HandshakeAuthdata:
    fields = dict(src_id=authdata.src_id, id_signature=authdata.id_signature, eph_pubkey=authdata.eph_pubkey,
                  record=authdata.record)
    fields.update(changes)
    return HandshakeAuthdata(**fields)


@pytest.mark.parametrize(
    ("tamper", "error"),
    [
        (lambda a: _replace(a, id_signature=bytes(a.id_signature[:-1]) + bytes((a.id_signature[-1] ^ 1,))), BadSignature),
        (lambda a: _replace(a, id_signature=a.id_signature[:63]), HandshakeError),
        (lambda a: _replace(a, eph_pubkey=b"\x02" + bytes(32)), BadSignature),
        (lambda a: _replace(a, record=b""), HandshakeError),  # bob knows no record of alice
        (lambda a: _replace(a, record=CAROL_ENR.raw), HandshakeError),  # another node's record
        (lambda a: _replace(a, record=a.record[:-1] + bytes((a.record[-1] ^ 1,))), BadENR),
    ],
    ids=["bad-signature", "short-signature", "bad-key", "no-record", "foreign-record", "forged-record"],
)
def test_bad_handshakes_are_typed_drops(tamper: Callable[[HandshakeAuthdata], HandshakeAuthdata], error: type[WireError]) -> None:
    bob, packet = _challenged_handshake(tamper)
    [event] = bob.receive(encode_packet(packet, BOB_ID), ALICE_ADDR, 0.1)
    assert isinstance(event, PacketDropped) and isinstance(event.error, error)
    assert not bob.has_session(ALICE_ID, ALICE_ADDR)


def test_untampered_handshake_passes_the_same_path() -> None:
    bob, packet = _challenged_handshake(lambda a: a)
    events = bob.receive(encode_packet(packet, BOB_ID), ALICE_ADDR, 0.1)
    assert [type(e) for e in events] == [HandshakeCompleted, MessageReceived]


def test_handshake_too_late_or_from_elsewhere_is_dropped() -> None:
    bob, packet = _challenged_handshake(lambda a: a)
    [event] = bob.receive(encode_packet(packet, BOB_ID), CAROL_ADDR, 0.1)
    assert isinstance(event, PacketDropped) and isinstance(event.error, UnsolicitedReply)
    [event] = bob.receive(encode_packet(packet, BOB_ID), ALICE_ADDR, 1.5)
    assert isinstance(event, PacketDropped) and isinstance(event.error, HandshakeError)


def test_api_misuse_is_a_local_error() -> None:
    _net, alice, _bob = pair()
    with pytest.raises(LocalProtocolError):
        alice.send_message(BOB_ID, BOB_ADDR, Ping(request_id=b"", enr_seq=1), now=0.0)  # no ENR known
    with pytest.raises(LocalProtocolError):
        alice.send_message(BOB_ID, BOB_ADDR, Ping(request_id=b"", enr_seq=1), CAROL_ENR, now=0.0)
    with pytest.raises(LocalProtocolError):
        Discv5Protocol(ALICE_KEY, BOB_ENR)
    with pytest.raises(LocalProtocolError):
        alice.update_local_enr(BOB_ENR)
    with pytest.raises(LocalProtocolError):  # peers would keep the record they hold under that seq
        alice.update_local_enr(make_enr(ALICE_KEY, ALICE_ADDR, seq=ALICE_ENR.seq))


# ----------------------------------------------------------------- floods and fuzzing


def _junk_from(src_id: bytes, nonce: bytes = bytes(12)) -> bytes:
    packet = Packet(masking_iv=bytes(16), header=Header(nonce=nonce, authdata=MessageAuthdata(src_id=src_id)), message=bytes(20))
    return encode_packet(packet, BOB_ID)


def test_whoareyou_rate_limit_per_node_and_ip() -> None:
    _net, _alice, bob = pair(whoareyou_interval=1.0)
    outs = [e for i in range(100) for e in bob.receive(_junk_from(ALICE_ID, bytes(11) + bytes((i,))), ALICE_ADDR, 0.001 * i)]
    assert sum(isinstance(e, Outgoing) for e in outs) == 1
    assert sum(isinstance(e, PacketDropped) and isinstance(e.error, RateLimited) for e in outs) == 99
    # Another port of the same IP is the same (node id, IP): still limited.
    [event] = bob.receive(_junk_from(ALICE_ID), ("127.0.0.1", 9), 0.5)
    assert isinstance(event, PacketDropped)
    [event] = bob.receive(_junk_from(ALICE_ID), ALICE_ADDR, 1.0)
    assert isinstance(event, Outgoing)
    assert bob.statistics().rate_limited == 100


def test_whoareyou_flood_with_many_node_ids_is_bounded_per_ip() -> None:
    _net, _alice, bob = pair(whoareyou_per_ip=10, whoareyou_interval=1.0)
    sent = 0
    for second in range(3):
        for i in range(200):
            src = (second * 1000 + i).to_bytes(32, "big")
            sent += sum(isinstance(e, Outgoing) for e in bob.receive(_junk_from(src), ("10.1.1.1", 4000 + i), second + i / 1000))
    assert sent == 30  # 10 per IP per second, however many node ids and ports it claims
    # Another IP has its own budget.
    assert isinstance(bob.receive(_junk_from(bytes(32)), ("10.1.1.2", 1), 2.5)[0], Outgoing)


def test_caches_stay_bounded_under_a_flood() -> None:
    _net, _alice, bob = pair(session_cache_size=50)
    for i in range(500):
        bob.receive(_junk_from(i.to_bytes(32, "big")), (f"10.0.{i // 250}.{i % 250}", 1), float(i))
    assert len(bob._challenges) <= 50 and len(bob._last_whoareyou) <= 50 and len(bob._ip_budget) <= 50


_counter = itertools.count()


def _valid_datagrams() -> list[bytes]:
    net, alice, bob = pair()
    net.send(alice, bob, Ping(request_id=b"\x01", enr_seq=1))
    net.deliver(BOB_ADDR, bob.send_message(ALICE_ID, ALICE_ADDR, TalkResp(request_id=b"\x01", response=b"x"), now=0.0))
    return [data for _s, dst, data in net.wire if dst == BOB_ADDR]


VALID_TO_BOB = _valid_datagrams()


def _check_events(events: list[Event]) -> None:
    for event in events:
        assert isinstance(event, (Outgoing, MessageReceived, HandshakeCompleted, PacketDropped))
        if isinstance(event, PacketDropped):
            assert isinstance(event.error, WireError)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1400))
def test_random_datagrams_never_raise(data: bytes) -> None:
    _net, _alice, bob = pair()
    _check_events(bob.receive(data, ALICE_ADDR, 0.0))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_datagrams_never_raise(draw: st.DataObject) -> None:
    # A bob that has a session and a pending challenge, so every handler is reachable.
    net, alice, bob = pair()
    net.send(alice, bob, Ping(request_id=b"\x01", enr_seq=1))
    for data in VALID_TO_BOB:
        mutated = bytearray(data)
        kind = draw.draw(st.sampled_from(["flip", "flip-header", "truncate", "extend"]))
        if kind == "flip":
            mutated[draw.draw(st.integers(0, len(mutated) - 1))] ^= draw.draw(st.integers(1, 255))
        elif kind == "flip-header":
            # Flip inside the unmasked header, then re-mask, so the change survives unmasking.
            plain = bytearray(mask(BOB_ID, bytes(mutated[:16]), bytes(mutated[16:])))
            plain[draw.draw(st.integers(0, min(len(plain), 120) - 1))] ^= draw.draw(st.integers(1, 255))
            mutated[16:] = mask(BOB_ID, bytes(mutated[:16]), bytes(plain))
        elif kind == "truncate":
            del mutated[draw.draw(st.integers(0, len(mutated) - 1)) :]
        else:
            mutated += draw.draw(st.binary(min_size=1, max_size=60))
        _check_events(bob.receive(bytes(mutated), ALICE_ADDR, float(next(_counter))))


def test_whoareyou_flood_yields_one_handshake() -> None:
    _net, alice, _bob = pair()
    [random_packet] = alice.send_message(BOB_ID, BOB_ADDR, Ping(request_id=b"", enr_seq=1), BOB_ENR, now=0.0)
    nonce = decode_packet(random_packet.data, BOB_ID).header.nonce
    events = [e for i in range(50) for e in alice.receive(_whoareyou_for(nonce), BOB_ADDR, i * 0.01)]
    assert sum(isinstance(e, Outgoing) for e in events) == 1
    assert all(isinstance(e.error, UnsolicitedReply) for e in events if isinstance(e, PacketDropped))
    assert alice.statistics().handshakes_sent == 1


def test_crossing_handshakes_settle_on_one_session() -> None:
    net, alice, bob = pair()
    a_out = alice.send_message(BOB_ID, BOB_ADDR, Ping(request_id=b"\x01", enr_seq=1), BOB_ENR, now=0.0)
    b_out = bob.send_message(ALICE_ID, ALICE_ADDR, Ping(request_id=b"\x02", enr_seq=1), ALICE_ENR, now=0.0)
    net.deliver(ALICE_ADDR, a_out)
    net.deliver(BOB_ADDR, b_out)
    assert messages_of(net.take(BOB_ADDR)) == [Ping(request_id=b"\x01", enr_seq=1)]
    assert messages_of(net.take(ALICE_ADDR)) == [Ping(request_id=b"\x02", enr_seq=1)]
    # Bob's random packet failed under alice's fresh (initiator) keys, so alice dropped them and
    # challenged; bob's handshake replaced his recipient session.  Both now hold bob's keys.
    assert alice.statistics().handshakes_sent == bob.statistics().handshakes_sent == 1
    assert alice.statistics().handshakes_received == bob.statistics().handshakes_received == 1
    net.now = 3.0
    net.send(alice, bob, Ping(request_id=b"\x03", enr_seq=1))
    assert messages_of(net.take(BOB_ADDR)) == [Ping(request_id=b"\x03", enr_seq=1)]
    net.deliver(BOB_ADDR, bob.send_message(ALICE_ID, ALICE_ADDR, TalkResp(request_id=b"\x03", response=b""), now=3.0))
    assert messages_of(net.take(ALICE_ADDR)) == [TalkResp(request_id=b"\x03", response=b"")]
    assert alice.statistics().handshakes_sent + bob.statistics().handshakes_sent == 2  # no third handshake
