"""Node identity and ``enode://`` URLs (the discovery v4 address format).

An enode URL names a node by its raw 64-byte secp256k1 public key and gives its
IP address, TCP (RLPx) port and, when it differs, its UDP (discovery) port::

    enode://<128 hex digits>@10.3.58.6:30303?discport=30301
    enode://<128 hex digits>@[2001:db8::1]:30303

Only literal IP addresses are accepted: a crawler must never resolve names it
was handed by strangers (and wire/ does no I/O anyway).  go-ethereum also
accepts a bare ``enode://<hex>`` for a node of unknown address; we do not,
because every enode we handle is meant to be dialled.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .crypto import compress_pubkey, node_id_from_pubkey
from .errors import BadEnodeURL, BadSignature, LocalProtocolError

__all__ = ["IPAddress", "Node", "parse_enode", "format_enode"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEME = "enode://"
PUBKEY_SIZE = 64  # bytes, raw x || y as discv4 and RLPx carry it
MAX_PORT = 65535  # ports are uint16 in every devp2p encoding
# An enode URL is ~160 characters; refuse to scan megabytes of someone's garbage.
MAX_URL_LENGTH = 512  # characters
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """Where to reach a node: its public key and (maybe) its IP and ports.

    ``udp`` is the discovery port and ``tcp`` the RLPx port; either may be
    unknown (``None``), as in a node record without endpoint information.

    ``pubkey`` is checked for its size only, not to be a curve point: every
    door a stranger's key comes in by checks that already (:func:`parse_enode`,
    ENR verification, NEIGHBORS decoding, the RLPx handshake), and a second
    check here would cost every node the crawl handles.  The dialer still
    refuses an off-curve key without opening a connection.
    """

    pubkey: bytes
    ip: IPAddress | None = None
    udp: int | None = None
    tcp: int | None = None
    #: keccak256 of the public key: the node's 32-byte address in the DHT.  Computed
    #: once here: a crawl asks for it several times per relayed node, and the
    #: keccak call was the largest single cost in the crawl's profile.
    node_id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.pubkey) != PUBKEY_SIZE:
            raise LocalProtocolError(f"node public key must be {PUBKEY_SIZE} bytes, got {len(self.pubkey)}")
        for name, port in (("udp", self.udp), ("tcp", self.tcp)):
            if port is not None and not 0 <= port <= MAX_PORT:
                raise LocalProtocolError(f"node {name} port {port} out of range 0-{MAX_PORT}")
        object.__setattr__(self, "node_id", node_id_from_pubkey(self.pubkey))


def _parse_port(text: str, what: str) -> int:
    # int() alone would also take "+1", " 1" and "1_0"; a port is plain digits.
    if not text or not text.isascii() or not text.isdigit():
        raise BadEnodeURL(f"{what} {text!r} is not a decimal number")
    port = int(text)
    if port > MAX_PORT:
        raise BadEnodeURL(f"{what} {port} out of range 0-{MAX_PORT}")
    return port


def _parse_ip(text: str) -> IPAddress:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise BadEnodeURL(
            f"host {text!r} is not an IP address (host names are not resolved)"
        ) from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # go-ethereum stores ::ffff:a.b.c.d as the IPv4 address it maps.
        return ip.ipv4_mapped
    return ip


def _split_host_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):
        host, sep, rest = hostport[1:].partition("]")
        if not sep:
            raise BadEnodeURL(f"unclosed '[' in address {hostport!r}")
        if not rest.startswith(":"):
            raise BadEnodeURL(f"missing ':port' after IPv6 address in {hostport!r}")
        if ":" not in host:
            raise BadEnodeURL(f"brackets hold {host!r}, not an IPv6 address")
        return host, rest[1:]
    host, sep, port = hostport.rpartition(":")
    if not sep:
        raise BadEnodeURL(f"missing ':port' in address {hostport!r}")
    if ":" in host:
        raise BadEnodeURL(f"IPv6 address {host!r} must be written in brackets, as [{host}]:port")
    return host, port


def _parse_query(query: str) -> int | None:
    discport: int | None = None
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if name != "discport":
            continue  # go-ethereum ignores other parameters too
        if not sep:
            raise BadEnodeURL("discport parameter has no value")
        if discport is not None:
            raise BadEnodeURL("discport given more than once")
        discport = _parse_port(value, "discport")
    return discport


def parse_enode(url: str) -> Node:
    """Parse ``enode://<pubkey hex>@<ip>:<tcp>[?discport=<udp>]`` into a :class:`Node`.

    Without ``discport`` the UDP port equals the TCP port.  Raises
    :class:`BadEnodeURL` naming what is wrong.
    """
    if len(url) > MAX_URL_LENGTH:
        raise BadEnodeURL(f"enode URL is {len(url)} characters, more than {MAX_URL_LENGTH}")
    if not url.startswith(SCHEME):
        raise BadEnodeURL(f"enode URL must start with {SCHEME!r}: {url[:20]!r}...")
    rest = url[len(SCHEME):]
    key_hex, sep, location = rest.partition("@")
    if not sep:
        raise BadEnodeURL("missing '@<ip>:<port>' after the node key")
    if len(key_hex) != 2 * PUBKEY_SIZE:
        raise BadEnodeURL(f"node key must be {2 * PUBKEY_SIZE} hex digits, got {len(key_hex)}")
    if not _HEX_DIGITS.issuperset(key_hex):
        raise BadEnodeURL("node key is not hexadecimal")
    pubkey = bytes.fromhex(key_hex)
    try:
        compress_pubkey(pubkey)  # only to check that it is a point on the curve
    except BadSignature:
        raise BadEnodeURL("node key is not a point on the secp256k1 curve") from None

    hostport, _, query = location.partition("?")
    host, port_text = _split_host_port(hostport)
    ip = _parse_ip(host)
    tcp = _parse_port(port_text, "TCP port")
    udp = _parse_query(query) if query else None
    return Node(pubkey=pubkey, ip=ip, tcp=tcp, udp=tcp if udp is None else udp)


def format_enode(node: Node) -> str:
    """The ``enode://`` URL of ``node``; ``?discport`` only when UDP differs from TCP.

    Raises :class:`LocalProtocolError` if the node's IP or TCP port is unknown,
    since the URL could not be parsed back.
    """
    if node.ip is None or node.tcp is None:
        raise LocalProtocolError("an enode URL needs the node's IP address and TCP port")
    host = f"[{node.ip}]" if node.ip.version == 6 else str(node.ip)
    url = f"{SCHEME}{node.pubkey.hex()}@{host}:{node.tcp}"
    if node.udp is not None and node.udp != node.tcp:
        url += f"?discport={node.udp}"
    return url
