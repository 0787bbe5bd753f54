"""go-ethereum's golden RLPx frame (fixtures/vectors/upstream/rlpx.json, TestFrameReadWrite) against wire.rlpx.frame.

AES and MAC secrets are keccak256(''); both MAC states are geth's fakeHash, whose digest is
always the same 32 bytes and which ignores writes, so the vector pins the AES-CTR stream, the
header layout and padding, and where the MACs go, independently of the keccak chaining.
"""

from __future__ import annotations

from typing import Any, cast

from Crypto.Hash import keccak

from ethcrawl.wire.crypto import keccak256
from ethcrawl.wire.rlpx.frame import FrameCodec
from ethcrawl.wire.rlpx.handshake import Secrets

from ground_truth import load_fixture_json_at_collection

FRAME = load_fixture_json_at_collection("vectors", "upstream", "rlpx.json")["frame"]


class FakeHash:
    """geth's rlpx_test.go fakeHash: writes are ignored, the digest never changes."""

    def __init__(self, digest: bytes) -> None:
        self._digest = digest

    def update(self, data: bytes) -> None:
        pass

    def digest(self) -> bytes:
        return self._digest


def _codec(case: dict[str, Any]) -> FrameCodec:
    assert case["aes_secret"] == case["mac_secret"] == "keccak256('')"
    fake = bytes.fromhex(case["fake_mac_digest"])
    secrets = Secrets(
        remote_pubkey=bytes(64),
        aes_secret=keccak256(b""),
        mac_secret=keccak256(b""),
        egress_mac=cast(keccak.Keccak_Hash, FakeHash(fake)),
        ingress_mac=cast(keccak.Keccak_Hash, FakeHash(fake)),
    )
    return FrameCodec(secrets)


def test_golden_frame_is_written() -> None:
    frame = _codec(FRAME).encode_frame(FRAME["code"], bytes.fromhex(FRAME["payload"]))
    assert frame.hex() == FRAME["golden"]


def test_golden_frame_is_read() -> None:
    assert _codec(FRAME).feed(bytes.fromhex(FRAME["golden"])) == [(FRAME["code"], bytes.fromhex(FRAME["payload"]))]
    assert FRAME["frame_content"] == f"{FRAME['code']:02x}{FRAME['payload']}"  # rlp(code) || payload
