"""RLPx framing: encrypt and MAC messages after the handshake (rlpx.md, "Framing" and "MAC").

A frame is ``header-ciphertext (16) || header-mac (16) || frame-ciphertext ||
frame-mac (16)``.  The header holds the 24-bit frame-data size and the RLP
header-data ``[0, 0]`` (capability-id and context-id, both unused), zero-padded
to one AES block; the frame data is ``rlp(msg-id) || msg-data``, zero-padded to
a multiple of 16.  One AES-256-CTR stream (key aes-secret, zero IV) runs across
all frames in each direction; MACs fold the ciphertext into the running keccak
states of :class:`~.handshake.Secrets`, whitened with AES-256-ECB under
mac-secret.  MACs are checked before anything is decrypted.

Compression is not this layer's business: the payload comes out as it went in.
"""

from __future__ import annotations

import hmac

from Crypto.Cipher import AES

from .. import rlpcodec
from ..crypto import KeccakState
from ..errors import BadMAC, LocalProtocolError, MalformedMessage, MalformedRLP, PacketTooLarge
from .handshake import Secrets

__all__ = [
    "HEADER_SIZE",
    "MAC_SIZE",
    "MAX_FRAME_SIZE",
    "FrameCodec",
]

BLOCK = 16  # bytes, AES block: header size and frame padding unit
HEADER_SIZE = 16  # bytes, frame header before its MAC
MAC_SIZE = 16  # bytes, header-mac and frame-mac (a keccak256 digest prefix)
#: bytes, the largest frame-data we accept or send: geth's 16 MiB message cap.  The 24-bit
#: size field cannot say more than 2**24 - 1 anyway; a smaller cap can be passed in.
MAX_FRAME_SIZE = 16 * 1024 * 1024
MAX_UINT24 = 2**24 - 1  # largest frame-size the header can carry
#: header-data rlp([0, 0]): capability-id and context-id, always zero (geth's zeroHeader).
ZERO_HEADER_DATA = rlpcodec.encode([0, 0])
MAX_MSG_CODE = 2**64 - 1  # message ids are uint64 in geth (rlp.SplitUint64)


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


class _MAC:
    """One direction's running MAC: a keccak256 state plus AES-ECB whitening under mac-secret."""

    __slots__ = ("_state", "_aes")

    def __init__(self, mac_secret: bytes, state: KeccakState) -> None:
        self._state = state
        self._aes = AES.new(mac_secret, AES.MODE_ECB)

    def _fold(self, seed: bytes) -> bytes:
        whitened = self._aes.encrypt(self._state.digest()[:MAC_SIZE])
        self._state.update(bytes(a ^ b for a, b in zip(whitened, seed)))
        return self._state.digest()[:MAC_SIZE]

    def header(self, header_ciphertext: bytes) -> bytes:
        return self._fold(header_ciphertext)

    def frame(self, frame_ciphertext: bytes) -> bytes:
        self._state.update(frame_ciphertext)
        return self._fold(self._state.digest()[:MAC_SIZE])


class FrameCodec:
    """Encode frames to send and decode received ones, incrementally.

    Owns ``secrets``' MAC states from now on.  :meth:`feed` buffers partial
    input and returns every frame completed so far as ``(msg_code, payload)``;
    :meth:`receive` and :meth:`next_frame` do the same one frame at a time, so
    a caller may change :attr:`max_frame_size` between two frames of one read.
    A frame's size is checked on its header, before any of its body is
    buffered.  After a raise (BadMAC, PacketTooLarge, MalformedMessage) the
    stream is out of sync: drop the connection.
    """

    def __init__(self, secrets: Secrets, *, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self.max_frame_size = min(max_frame_size, MAX_UINT24)
        # Both directions use the same key and a zero IV (rlpx.md's "known issue"), each its own stream.
        self._encrypt = AES.new(secrets.aes_secret, AES.MODE_CTR, nonce=b"", initial_value=bytes(BLOCK))
        self._decrypt = AES.new(secrets.aes_secret, AES.MODE_CTR, nonce=b"", initial_value=bytes(BLOCK))
        self._egress = _MAC(secrets.mac_secret, secrets.egress_mac)
        self._ingress = _MAC(secrets.mac_secret, secrets.ingress_mac)
        self._buffer = bytearray()
        # Frame-data size of a frame whose header was verified but whose body is incomplete.
        self._pending_size: int | None = None

    def encode_frame(self, code: int, payload: bytes) -> bytes:
        """One encrypted, MACed frame carrying message ``code`` and ``payload``."""
        if not 0 <= code <= MAX_MSG_CODE:
            raise LocalProtocolError(f"message code {code} is not a uint64")
        return self.encode_raw(rlpcodec.encode(code) + payload)

    def encode_raw(self, frame_data: bytes) -> bytes:
        """One frame around ``frame_data`` as given (normally ``rlp(msg-id) || msg-data``).

        :meth:`encode_frame` is the usual entry; this one lets tests send frame
        data no well-behaved peer would, to check what the receiver makes of it.
        """
        if len(frame_data) > self.max_frame_size:
            raise LocalProtocolError(f"frame data of {len(frame_data)} bytes exceeds {self.max_frame_size}")
        header = len(frame_data).to_bytes(3, "big") + ZERO_HEADER_DATA
        header_ciphertext = self._encrypt.encrypt(header.ljust(HEADER_SIZE, b"\x00"))
        header_mac = self._egress.header(header_ciphertext)
        frame_ciphertext = self._encrypt.encrypt(frame_data.ljust(_padded(len(frame_data)), b"\x00"))
        frame_mac = self._egress.frame(frame_ciphertext)
        return header_ciphertext + header_mac + frame_ciphertext + frame_mac

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add received bytes; return the ``(msg_code, payload)`` of each frame now complete."""
        self.receive(data)
        frames: list[tuple[int, bytes]] = []
        while (frame := self.next_frame()) is not None:
            frames.append(frame)
        return frames

    def receive(self, data: bytes) -> None:
        """Add received bytes; :meth:`next_frame` takes the frames out."""
        self._buffer += data

    def next_frame(self) -> tuple[int, bytes] | None:
        """The ``(msg_code, payload)`` of the next complete frame, or None until more bytes arrive."""
        if self._pending_size is None:
            if len(self._buffer) < HEADER_SIZE + MAC_SIZE:
                return None
            self._pending_size = self._read_header(bytes(self._buffer[: HEADER_SIZE + MAC_SIZE]))
            del self._buffer[: HEADER_SIZE + MAC_SIZE]
        body_size = _padded(self._pending_size) + MAC_SIZE
        if len(self._buffer) < body_size:
            return None
        body = bytes(self._buffer[:body_size])
        del self._buffer[:body_size]
        frame = self._read_body(body, self._pending_size)
        self._pending_size = None
        return frame

    def _read_header(self, chunk: bytes) -> int:
        header_ciphertext, header_mac = chunk[:HEADER_SIZE], chunk[HEADER_SIZE:]
        if not hmac.compare_digest(self._ingress.header(header_ciphertext), header_mac):
            raise BadMAC("frame header MAC mismatch")
        header = self._decrypt.decrypt(header_ciphertext)
        # header-data is ignored on receipt, as geth does: nobody uses capability/context ids.
        size = int.from_bytes(header[:3], "big")
        if size > self.max_frame_size:
            raise PacketTooLarge(f"frame of {size} bytes exceeds the {self.max_frame_size}-byte cap")
        return size

    def _read_body(self, body: bytes, size: int) -> tuple[int, bytes]:
        frame_ciphertext, frame_mac = body[:-MAC_SIZE], body[-MAC_SIZE:]
        if not hmac.compare_digest(self._ingress.frame(frame_ciphertext), frame_mac):
            raise BadMAC("frame body MAC mismatch")
        frame_data = self._decrypt.decrypt(frame_ciphertext)[:size]
        if frame_data[:1] >= b"\xc0":
            # Refuse a list before decoding it: the id must be a short string, and decoding an
            # attacker's 16 MiB list only to reject it would waste time.
            raise MalformedMessage("frame data starts with an RLP list, not a message id")
        try:
            item, payload = rlpcodec.decode_prefix(frame_data)
            code = rlpcodec.as_uint(item, "frame msg-id")
        except (MalformedRLP, MalformedMessage) as exc:
            raise MalformedMessage(f"frame data does not start with an RLP message id: {exc}") from exc
        return code, payload
