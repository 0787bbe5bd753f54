"""The discovery v5.1 handshake and session cache, as a sans-I/O state machine.

:class:`Discv5Protocol` turns datagrams into events and messages into
datagrams; it never touches a socket or a clock.  Time comes in as ``now``
(seconds, any monotonic origin) and randomness from an injected ``rng``
(``os.urandom`` by default), so a test can replay the spec's vectors or a
flood at a chosen pace.

The flow (discv5-theory.md, "Handshake Steps"):

* With no session, :meth:`~Discv5Protocol.send_message` sends a packet of
  random bytes; the message waits.  Further messages to the same node queue
  behind it instead of starting handshakes of their own.
* A packet we cannot decrypt is answered with WHOAREYOU (at most one per node
  id and IP per :attr:`Config.whoareyou_interval`, and a per-IP budget, so a
  flood cannot turn us into an amplifier).  A session whose keys fail stays
  until the handshake that follows replaces it: a forged packet must not end it.
* A WHOAREYOU that quotes the nonce of a packet we sent is answered with a
  handshake packet carrying that message, our ENR when the challenge's
  ``enr-seq`` is older than ours, and then the messages queued meanwhile.  A
  WHOAREYOU answering our own handshake packet, or a second one within
  :attr:`Config.handshake_interval`, is dropped: no handshake ping-pong.
* A handshake packet is checked against the challenge we sent to that node id
  *and* address (sessions are tied to the UDP endpoint, as the spec asks).

Everything a peer can get wrong ends as a :class:`PacketDropped` event whose
``error`` is a :class:`~ethcrawl.wire.errors.WireError` naming what happened;
:meth:`~Discv5Protocol.receive` itself never raises.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, TypeAlias

from ..crypto import PrivateKey, node_id_from_pubkey, pubkey_from_private
from ..enr import ENR
from ..lru import LRU
from ..errors import (
    DecryptionFailed,
    HandshakeError,
    LocalProtocolError,
    RateLimited,
    UnsolicitedReply,
    WireError,
)
from .crypto import (
    ID_SIGNATURE_SIZE,
    MASKING_IV_SIZE,
    NONCE_SIZE,
    decrypt_message,
    derive_keys,
    ecdh,
    encrypt_message,
    id_sign,
    id_verify,
)
from .messages import FindNode, Message, Ping, TalkReq, decode_message, encode_message
from .packet import (
    ID_NONCE_SIZE,
    HandshakeAuthdata,
    Header,
    MessageAuthdata,
    Packet,
    WhoareyouAuthdata,
    decode_packet,
    encode_packet,
)

__all__ = [
    "Address",
    "Config",
    "Outgoing",
    "MessageReceived",
    "HandshakeCompleted",
    "PacketDropped",
    "Event",
    "Statistics",
    "Discv5Protocol",
]

Address: TypeAlias = tuple[str, int]  # (ip text, udp port), as a datagram socket reports it

COMPRESSED_KEY_SIZE = 33  # bytes, the "v4" scheme's ephemeral key
RANDOM_MESSAGE_SIZE = 20  # bytes of random "ciphertext" that provoke a WHOAREYOU (geth sends 20)
REQUESTS = (Ping, FindNode, TalkReq)  # messages that expect an answer
COUNTER_SIZE = 4  # bytes of a session nonce that count messages; the other 8 are random (spec advice)
SECP256K1_SECRET_SIZE = 32  # bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Tunables; the defaults follow go-ethereum's v5 node where it has one."""

    session_cache_size: int = 1024  # sessions kept, least recently used evicted (geth: 1024)
    record_cache_size: int = 4096  # peers' ENRs remembered for challenges and handshakes
    sent_packets_limit: int = 4096  # sent packets remembered so a WHOAREYOU can name one
    queue_limit: int = 32  # messages per node waiting for a handshake; the oldest go first
    handshake_timeout: float = 1.0  # s, how long a challenge or a random packet stays answerable (spec)
    whoareyou_interval: float = 1.0  # s, at most one WHOAREYOU per (node id, IP) in this window
    whoareyou_per_ip: int = 256  # WHOAREYOUs per IP per whoareyou_interval, whatever node ids it claims
    handshake_interval: float = 1.0  # s, at most one handshake per (node id, IP) in this window

    def __post_init__(self) -> None:
        for name in ("session_cache_size", "record_cache_size", "sent_packets_limit", "queue_limit"):
            if getattr(self, name) < 1:
                raise LocalProtocolError(f"Config.{name} must be at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """A datagram to send to ``addr``."""

    data: bytes
    addr: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived:
    """A message that decrypted and decoded; ``node_id`` is authenticated by the session keys."""

    node_id: bytes
    addr: Address
    message: Message


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeCompleted:
    """A session with ``node_id`` at ``addr`` is proven: the peer answered under the new keys.

    ``enr`` is the peer's record as the handshake established it (None only
    if we initiated and its record has since left the cache).
    """

    node_id: bytes
    addr: Address
    enr: ENR | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PacketDropped:
    """A datagram we ignored, and why; ``node_id`` is the claimed sender when the header named one."""

    addr: Address
    node_id: bytes | None
    error: WireError


Event: TypeAlias = Outgoing | MessageReceived | HandshakeCompleted | PacketDropped


@dataclass(frozen=True, slots=True, kw_only=True)
class Statistics:
    """Counters since start, and the current cache sizes."""

    sessions: int
    packets_received: int
    messages_received: int
    whoareyou_sent: int
    handshakes_sent: int
    handshakes_received: int
    dropped: int
    rate_limited: int
    queue_overflows: int


@dataclass(slots=True, kw_only=True)
class _Session:
    write_key: bytes
    read_key: bytes
    confirmed: bool  # the peer has sent something under these keys
    counter: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class _Sent:
    """A packet we sent, kept so that a WHOAREYOU quoting its nonce can be answered."""

    node_id: bytes
    addr: Address
    message: Message
    is_handshake: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class _Challenge:
    """A WHOAREYOU we sent, kept until the handshake answering it (or the timeout)."""

    data: bytes
    record: ENR | None
    sent_at: float


@dataclass(slots=True, kw_only=True)
class _Waiting:
    """We sent random bytes to provoke a WHOAREYOU; later messages queue here meanwhile."""

    started: float
    queued: list[Message]


_Key: TypeAlias = tuple[bytes, Address]


class Discv5Protocol:
    """One discv5.1 node's packet and session logic; see the module docstring for the flow.

    ``local_enr`` must be signed by ``local_private_key``.  Peers send their
    handshake to the address they saw us at, so the crawler should keep our
    ENR's ip/udp equal to that (@chainsafe/discv5 drops the session otherwise).
    """

    def __init__(
        self,
        local_private_key: PrivateKey,
        local_enr: ENR,
        *,
        config: Config | None = None,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._key = local_private_key
        self._local_id = node_id_from_pubkey(pubkey_from_private(local_private_key))
        self._local_enr = local_enr
        self._check_local_enr(local_enr)
        self.config = config or Config()
        self._rng = rng
        cfg = self.config
        self._sessions: LRU[_Key, _Session] = LRU(cfg.session_cache_size)
        self._records: LRU[bytes, ENR] = LRU(cfg.record_cache_size)
        self._sent: LRU[bytes, _Sent] = LRU(cfg.sent_packets_limit)
        self._challenges: LRU[_Key, _Challenge] = LRU(cfg.session_cache_size)
        self._waiting: LRU[_Key, _Waiting] = LRU(cfg.session_cache_size)
        self._last_whoareyou: LRU[tuple[bytes, str], float] = LRU(cfg.session_cache_size)
        self._ip_budget: LRU[str, tuple[float, int]] = LRU(cfg.session_cache_size)
        self._last_handshake: LRU[tuple[bytes, str], float] = LRU(cfg.session_cache_size)
        self._handlers: dict[int, Callable[[Packet, Address, float], list[Event]]] = {
            MessageAuthdata.flag: self._on_message,
            WhoareyouAuthdata.flag: self._on_whoareyou,
            HandshakeAuthdata.flag: self._on_handshake,
        }
        self._packets_received = 0
        self._messages_received = 0
        self._whoareyou_sent = 0
        self._handshakes_sent = 0
        self._handshakes_received = 0
        self._dropped = 0
        self._rate_limited = 0
        self._queue_overflows = 0

    # ------------------------------------------------------------- local state

    @property
    def local_id(self) -> bytes:
        return self._local_id

    @property
    def local_enr(self) -> ENR:
        return self._local_enr

    def _check_local_enr(self, enr: ENR) -> None:
        if enr.node_id != self._local_id:
            raise LocalProtocolError("local ENR is not signed by the local private key")

    def update_local_enr(self, enr: ENR) -> None:
        """Use ``enr`` from now on (e.g. after learning our external address); its seq must grow.

        Peers keep the record with the highest seq they have seen, so a new
        record under an old seq would never replace the one they hold.
        """
        self._check_local_enr(enr)
        if enr.seq <= self._local_enr.seq:
            raise LocalProtocolError(f"a new local ENR needs a seq above {self._local_enr.seq}, got {enr.seq}")
        self._local_enr = enr

    def add_enr(self, enr: ENR) -> None:
        """Remember a peer's record (the newer of two wins): its key answers challenges, its seq goes in ours."""
        node_id = enr.node_id
        if node_id is None:
            raise LocalProtocolError("cannot use an ENR without a v4 identity")
        known = self._records.get(node_id)
        if known is None or enr.seq >= known.seq:
            self._records.set(node_id, enr)

    def enr_of(self, node_id: bytes) -> ENR | None:
        return self._records.get(node_id)

    def has_session(self, node_id: bytes, addr: Address) -> bool:
        return self._sessions.get((node_id, addr)) is not None

    def drop_session(self, node_id: bytes, addr: Address) -> None:
        """Forget the session keys for ``node_id`` at ``addr``; the next message starts a handshake."""
        self._sessions.pop((node_id, addr))

    def statistics(self) -> Statistics:
        return Statistics(
            sessions=len(self._sessions),
            packets_received=self._packets_received,
            messages_received=self._messages_received,
            whoareyou_sent=self._whoareyou_sent,
            handshakes_sent=self._handshakes_sent,
            handshakes_received=self._handshakes_received,
            dropped=self._dropped,
            rate_limited=self._rate_limited,
            queue_overflows=self._queue_overflows,
        )

    # ------------------------------------------------------------- sending

    def send_message(
        self,
        dest_node_id: bytes,
        dest_addr: Address,
        message: Message,
        dest_enr: ENR | None = None,
        *,
        now: float,
    ) -> list[Outgoing]:
        """Datagrams that carry ``message`` to ``dest_node_id`` at ``dest_addr`` (maybe none yet).

        With a session: one encrypted packet.  Without: a random packet that
        provokes a WHOAREYOU, or nothing while such a packet is already out
        (the message then rides after the handshake).  The peer's ENR must be
        given or known (:meth:`add_enr`), since the handshake needs its key.
        """
        if dest_enr is not None:
            if dest_enr.node_id != dest_node_id:
                raise LocalProtocolError("dest_enr does not belong to dest_node_id")
            self.add_enr(dest_enr)
        key = (dest_node_id, dest_addr)
        session = self._sessions.get(key)
        if session is not None:
            return [self._seal(key, session, message)]
        if self._records.get(dest_node_id) is None:
            raise LocalProtocolError(f"no ENR known for node {dest_node_id.hex()[:16]}: pass dest_enr")
        waiting = self._waiting.get(key)
        if waiting is not None and now - waiting.started < self.config.handshake_timeout:
            waiting.queued.append(message)
            if len(waiting.queued) > self.config.queue_limit:
                del waiting.queued[0]
                self._queue_overflows += 1
            return []
        self._waiting.set(key, _Waiting(started=now, queued=[]))
        nonce = self._rng(NONCE_SIZE)
        packet = Packet(
            masking_iv=self._rng(MASKING_IV_SIZE),
            header=Header(nonce=nonce, authdata=MessageAuthdata(src_id=self._local_id)),
            message=self._rng(RANDOM_MESSAGE_SIZE),
        )
        self._sent.set(nonce, _Sent(node_id=dest_node_id, addr=dest_addr, message=message, is_handshake=False))
        return [Outgoing(data=encode_packet(packet, dest_node_id), addr=dest_addr)]

    def _session_nonce(self, session: _Session) -> bytes:
        session.counter = (session.counter + 1) % (1 << (8 * COUNTER_SIZE))
        return session.counter.to_bytes(COUNTER_SIZE, "big") + self._rng(NONCE_SIZE - COUNTER_SIZE)

    def _seal(self, key: _Key, session: _Session, message: Message) -> Outgoing:
        node_id, addr = key
        nonce = self._session_nonce(session)
        header = Header(nonce=nonce, authdata=MessageAuthdata(src_id=self._local_id))
        packet = Packet(masking_iv=self._rng(MASKING_IV_SIZE), header=header)
        ciphertext = encrypt_message(session.write_key, nonce, encode_message(message), packet.message_ad)
        data = encode_packet(_with_message(packet, ciphertext), node_id)
        if isinstance(message, REQUESTS):
            # Only a request is worth a handshake if the peer challenges it (geth matches
            # WHOAREYOU against active calls only): answers are not kept, so a peer's
            # request flood cannot push our pending requests out of this cache.
            self._sent.set(nonce, _Sent(node_id=node_id, addr=addr, message=message, is_handshake=False))
        return Outgoing(data=data, addr=addr)

    def _flush(self, key: _Key, session: _Session) -> list[Event]:
        waiting = self._waiting.pop(key)
        if waiting is None:
            return []
        return [self._seal(key, session, message) for message in waiting.queued]

    # ------------------------------------------------------------- receiving

    def receive(self, datagram: bytes, src_addr: Address, now: float) -> list[Event]:
        """Events for one datagram from ``src_addr``: datagrams to send, messages, drops.  Never raises."""
        self._packets_received += 1
        node_id: bytes | None = None
        try:
            packet = decode_packet(datagram, self._local_id)
            authdata = packet.header.authdata
            node_id = None if isinstance(authdata, WhoareyouAuthdata) else authdata.src_id
            return self._handlers[packet.header.flag](packet, src_addr, now)
        except WireError as exc:
            return [self._drop(src_addr, node_id, exc)]

    def _drop(self, addr: Address, node_id: bytes | None, error: WireError) -> PacketDropped:
        self._dropped += 1
        if isinstance(error, RateLimited):
            self._rate_limited += 1
        return PacketDropped(addr=addr, node_id=node_id, error=error)

    def _decoded(self, node_id: bytes, addr: Address, plaintext: bytes) -> Event:
        try:
            message = decode_message(plaintext)
        except WireError as exc:
            return self._drop(addr, node_id, exc)
        self._messages_received += 1
        return MessageReceived(node_id=node_id, addr=addr, message=message)

    def _on_message(self, packet: Packet, addr: Address, now: float) -> list[Event]:
        authdata = packet.header.authdata
        assert isinstance(authdata, MessageAuthdata)  # the handler table dispatches by flag
        key = (authdata.src_id, addr)
        session = self._sessions.get(key)
        if session is None:
            return self._challenge(packet, key, now)
        try:
            plaintext = decrypt_message(session.read_key, packet.header.nonce, packet.message, packet.message_ad)
        except DecryptionFailed:
            # The peer restarted or lost our session, or someone spoofed its id and
            # address: challenge, as the spec asks, but keep the keys until a new
            # handshake replaces them (as go-ethereum does), so one forged packet
            # cannot tear down a live session.
            return self._challenge(packet, key, now)
        events: list[Event] = []
        if not session.confirmed:
            session.confirmed = True
            events.append(HandshakeCompleted(node_id=key[0], addr=addr, enr=self._records.get(key[0])))
        events.append(self._decoded(key[0], addr, plaintext))
        return events

    def _challenge(self, packet: Packet, key: _Key, now: float) -> list[Event]:
        node_id, addr = key
        self._check_whoareyou_rate(node_id, addr[0], now)
        record = self._records.get(node_id)
        authdata = WhoareyouAuthdata(id_nonce=self._rng(ID_NONCE_SIZE), enr_seq=0 if record is None else record.seq)
        whoareyou = Packet(
            masking_iv=self._rng(MASKING_IV_SIZE),
            header=Header(nonce=packet.header.nonce, authdata=authdata),
        )
        self._challenges.set(key, _Challenge(data=whoareyou.challenge_data, record=record, sent_at=now))
        self._whoareyou_sent += 1
        return [Outgoing(data=encode_packet(whoareyou, node_id), addr=addr)]

    def _check_whoareyou_rate(self, node_id: bytes, ip: str, now: float) -> None:
        interval = self.config.whoareyou_interval
        last = self._last_whoareyou.get((node_id, ip))
        if last is not None and now - last < interval:
            raise RateLimited(f"WHOAREYOU to {node_id.hex()[:16]} at {ip} sent {now - last:.3f} s ago")
        window_start, count = self._ip_budget.get(ip) or (now, 0)
        if now - window_start >= interval:
            window_start, count = now, 0
        if count >= self.config.whoareyou_per_ip:
            raise RateLimited(f"{count} WHOAREYOUs to {ip} within {interval} s")
        self._ip_budget.set(ip, (window_start, count + 1))
        self._last_whoareyou.set((node_id, ip), now)

    def _on_whoareyou(self, packet: Packet, addr: Address, now: float) -> list[Event]:
        authdata = packet.header.authdata
        assert isinstance(authdata, WhoareyouAuthdata)
        sent = self._sent.get(packet.header.nonce)
        if sent is None or sent.addr != addr:
            raise UnsolicitedReply(f"WHOAREYOU from {addr} quotes nonce {packet.header.nonce.hex()} we did not send")
        if sent.is_handshake:
            raise HandshakeError("WHOAREYOU answers our handshake packet: the peer rejected it, not retrying")
        key = (sent.node_id, addr)
        last = self._last_handshake.get((sent.node_id, addr[0]))
        if last is not None and now - last < self.config.handshake_interval:
            raise RateLimited(f"handshake with {sent.node_id.hex()[:16]} at {addr[0]} sent {now - last:.3f} s ago")
        record = self._records.get(sent.node_id)
        dest_pubkey = None if record is None else record.public_key
        if dest_pubkey is None:
            raise HandshakeError(f"WHOAREYOU from {sent.node_id.hex()[:16]}, whose record we no longer hold")

        challenge_data = packet.challenge_data
        eph_key = self._ephemeral_key()
        eph_pubkey = eph_key.public_key.format(compressed=True)
        keys = derive_keys(ecdh(eph_key, dest_pubkey), self._local_id, sent.node_id, challenge_data)
        own_record = self._local_enr.raw if authdata.enr_seq < self._local_enr.seq else b""
        handshake_authdata = HandshakeAuthdata(
            src_id=self._local_id,
            id_signature=id_sign(self._key, challenge_data, eph_pubkey, sent.node_id),
            eph_pubkey=eph_pubkey,
            record=own_record,
        )
        session = _Session(write_key=keys.initiator_key, read_key=keys.recipient_key, confirmed=False)
        nonce = self._session_nonce(session)
        header_packet = Packet(
            masking_iv=self._rng(MASKING_IV_SIZE), header=Header(nonce=nonce, authdata=handshake_authdata)
        )
        ciphertext = encrypt_message(keys.initiator_key, nonce, encode_message(sent.message), header_packet.message_ad)
        data = encode_packet(_with_message(header_packet, ciphertext), sent.node_id)

        # Only now, with the packet built, does the new session replace any old one.
        self._sent.pop(packet.header.nonce)
        self._sent.set(nonce, _Sent(node_id=sent.node_id, addr=addr, message=sent.message, is_handshake=True))
        self._sessions.set(key, session)
        self._last_handshake.set((sent.node_id, addr[0]), now)
        self._handshakes_sent += 1
        return [Outgoing(data=data, addr=addr), *self._flush(key, session)]

    def _ephemeral_key(self) -> PrivateKey:
        while True:
            try:
                return PrivateKey(self._rng(SECP256K1_SECRET_SIZE))
            except ValueError:  # zero or not below the curve order: astronomically rare, draw again
                continue

    def _on_handshake(self, packet: Packet, addr: Address, now: float) -> list[Event]:
        authdata = packet.header.authdata
        assert isinstance(authdata, HandshakeAuthdata)
        node_id = authdata.src_id
        key = (node_id, addr)
        challenge = self._challenges.get(key)
        if challenge is None:
            raise UnsolicitedReply(f"handshake from {node_id.hex()[:16]} at {addr}, which we never challenged")
        if now - challenge.sent_at > self.config.handshake_timeout:
            self._challenges.pop(key)
            raise HandshakeError(f"handshake came {now - challenge.sent_at:.3f} s after our WHOAREYOU, too late")
        if len(authdata.id_signature) != ID_SIGNATURE_SIZE or len(authdata.eph_pubkey) != COMPRESSED_KEY_SIZE:
            raise HandshakeError(
                f"handshake signature/key sizes {len(authdata.id_signature)}/{len(authdata.eph_pubkey)},"
                f" the v4 scheme needs {ID_SIGNATURE_SIZE}/{COMPRESSED_KEY_SIZE}"
            )
        record = self._handshake_record(authdata, challenge)
        pubkey = record.public_key
        assert pubkey is not None  # node_id matched, so the record has a v4 key
        id_verify(pubkey, authdata.id_signature, challenge.data, authdata.eph_pubkey, self._local_id)
        keys = derive_keys(ecdh(self._key, authdata.eph_pubkey), node_id, self._local_id, challenge.data)
        plaintext = decrypt_message(keys.initiator_key, packet.header.nonce, packet.message, packet.message_ad)

        self._challenges.pop(key)
        session = _Session(write_key=keys.recipient_key, read_key=keys.initiator_key, confirmed=True)
        self._sessions.set(key, session)
        self.add_enr(record)
        self._handshakes_received += 1
        events: list[Event] = [HandshakeCompleted(node_id=node_id, addr=addr, enr=record)]
        events.append(self._decoded(node_id, addr, plaintext))
        # Messages we queued for this node while our own handshake attempt was out go now.
        events.extend(self._flush(key, session))
        return events

    def _handshake_record(self, authdata: HandshakeAuthdata, challenge: _Challenge) -> ENR:
        """The sender's record: the one it sent (checked) or, if none, the one our challenge named."""
        known = challenge.record
        if not authdata.record:
            if known is None:
                raise HandshakeError("handshake carries no ENR and we know none for that node (we sent enr-seq 0)")
            return known
        record = ENR.from_rlp(authdata.record)
        if record.node_id != authdata.src_id:
            raise HandshakeError("handshake ENR belongs to another node id than the packet's src-id")
        if known is not None and known.seq > record.seq:
            return known
        return record


def _with_message(packet: Packet, ciphertext: bytes) -> Packet:
    return Packet(masking_iv=packet.masking_iv, header=packet.header, message=ciphertext, header_data=packet.header_data)
