"""The one error hierarchy of the wire layer.

Everything a decoder raises on bad input is a :class:`RemoteProtocolError`
(the peer, or the bytes, misbehaved).  Misuse of the API by our own code is a
:class:`LocalProtocolError`.  Both derive from :class:`WireError`, so a receive
loop can catch exactly one class, count the packet and drop it.

The split follows h11's Remote/LocalProtocolError: a crawl must never die on
hostile input, but a bug of ours should not be silently swallowed as "bad
packet".
"""

from __future__ import annotations

__all__ = [
    "WireError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "MalformedRLP",
    "MalformedMessage",
    "PacketTooSmall",
    "PacketTooLarge",
    "BadHash",
    "BadSignature",
    "Expired",
    "UnknownPacketType",
    "BadENR",
    "HandshakeError",
    "BadMAC",
    "DecompressionError",
    "BadEnodeURL",
    "UnexpectedMessage",
    "DecryptionFailed",
    "UnsolicitedReply",
    "RateLimited",
    "DNSDiscError",
    "MalformedEntry",
    "HashMismatch",
    "BadRootSignature",
]


class WireError(Exception):
    """Root of every error raised by ``ethcrawl.wire``."""


class LocalProtocolError(WireError):
    """Raised when our own code asks for something the protocol forbids.

    For example: encoding a NEIGHBORS packet with more nodes than fit, or an ENR
    larger than 300 bytes.  This is a bug on our side, not a hostile peer.
    """


class RemoteProtocolError(WireError):
    """Raised when received bytes violate the protocol.  Drop them and go on."""


class MalformedRLP(RemoteProtocolError):
    """Raised when bytes are not valid RLP, or not the RLP shape expected."""


class MalformedMessage(RemoteProtocolError):
    """Raised when well-formed RLP holds a field of the wrong type or range."""


class PacketTooSmall(RemoteProtocolError):
    """Raised when a packet is shorter than its fixed header."""


class PacketTooLarge(RemoteProtocolError):
    """Raised when a packet or message exceeds the protocol's size limit."""


class BadHash(RemoteProtocolError):
    """Raised when a discovery v4 packet's hash does not match its contents."""


class BadSignature(RemoteProtocolError):
    """Raised when a signature cannot be recovered or does not verify."""


class Expired(RemoteProtocolError):
    """Raised when a packet's expiration time lies in the past."""


class UnknownPacketType(RemoteProtocolError):
    """Raised when a packet or message type byte is not one we know."""


class BadENR(RemoteProtocolError):
    """Raised when a node record is malformed, oversized, unsorted or badly signed."""


class HandshakeError(RemoteProtocolError):
    """Raised when an RLPx auth/ack message cannot be decrypted or parsed."""


class BadMAC(RemoteProtocolError):
    """Raised when an RLPx frame header or body MAC does not match."""


class DecompressionError(RemoteProtocolError):
    """Raised when a snappy-compressed message is corrupt or claims too large a size."""


class BadEnodeURL(MalformedMessage):
    """Raised when an ``enode://`` URL is malformed: bad key, address, port or shape."""


class UnexpectedMessage(RemoteProtocolError):
    """Raised when a peer sends a message its session state forbids, e.g. anything but Hello or Disconnect first."""


class DecryptionFailed(RemoteProtocolError):
    """Raised when a discv5 message fails AES-GCM authentication: wrong session keys or altered bytes."""


class UnsolicitedReply(RemoteProtocolError):
    """Raised when a reply or challenge (e.g. a discv5 WHOAREYOU) answers nothing we sent to that address."""


class RateLimited(RemoteProtocolError):
    """Raised when a peer asks for more work (challenges, handshakes) than the rate limit allows."""


class DNSDiscError(RemoteProtocolError):
    """Raised when an EIP-1459 node list (an ``enrtree`` entry, URL or tree) is unusable."""


class MalformedEntry(DNSDiscError):
    """Raised when an ``enrtree`` TXT entry or URL does not parse: prefix, base32/base64, record, size or fan-out."""


class HashMismatch(DNSDiscError):
    """Raised when an entry's text does not hash to the name it was fetched under."""


class BadRootSignature(DNSDiscError, BadSignature):
    """Raised when a tree root's signature does not verify against the key of its ``enrtree://`` URL."""
