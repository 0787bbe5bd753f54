"""go-ethereum's v4wire TestForwardCompatibility packets (fixtures/vectors/upstream/discv4.json), each its own case.

Each packet must decode, signed by signer_key, to the transcribed fields; extra list elements
(EIP-8) are kept in ``rest`` as raw RLP. The first is a plain v4 PING (geth's own), the other
three are EIP-8's. Re-encoding a decoded packet with the signer's key must give its body back
byte for byte, up to the trailing bytes after the RLP list that EIP-8 tells decoders to ignore.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from ethcrawl.wire import discv4
from ethcrawl.wire.crypto import PrivateKey, pubkey_from_private
from ethcrawl.wire.discv4 import Endpoint, FindNode, Neighbors, Ping
from ethcrawl.wire.rlpcodec import decode_prefix

from ground_truth import load_fixture_json_at_collection

VECTORS = load_fixture_json_at_collection("vectors", "upstream", "discv4.json")
SIGNER = PrivateKey(bytes.fromhex(VECTORS["signer_key"]))
HASH_AND_SIGNATURE = 32 + 65  # bytes before the packet type


def _id(index: int, case: dict[str, Any]) -> str:
    extra = f"-enr_seq{case['enr_seq']}" if case.get("enr_seq") is not None else ""
    return f"{index}-{case['type']}{extra}-rest{len(case['rest'])}"


PACKETS = [pytest.param(case, id=_id(i, case)) for i, case in enumerate(VECTORS["packets"])]


def _endpoint(fields: list[Any]) -> Endpoint:
    ip, udp, tcp = fields
    return Endpoint(ip=ipaddress.ip_address(ip), udp=udp, tcp=tcp)


@pytest.mark.parametrize("case", PACKETS)
def test_packet_decodes_to_the_transcribed_fields(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    decoded = discv4.decode(data)
    assert decoded.sender_pubkey == pubkey_from_private(SIGNER)
    packet = decoded.packet
    assert packet.expiration == case["expiration"]
    assert [item.hex() for item in packet.rest] == case["rest"]
    if case["type"] == "ping":
        assert isinstance(packet, Ping)
        assert packet.version == case["version"]
        assert (packet.from_, packet.to) == (_endpoint(case["from"]), _endpoint(case["to"]))
        assert packet.enr_seq == case["enr_seq"]
    elif case["type"] == "findnode":
        assert isinstance(packet, FindNode)
        assert packet.target.hex() == case["target"]
    else:
        assert case["type"] == "neighbors" and isinstance(packet, Neighbors)
        got = [(n.ip, n.udp, n.tcp, n.pubkey.hex()) for n in packet.nodes]
        assert got == [(ipaddress.ip_address(ip), udp, tcp, key) for ip, udp, tcp, key in case["nodes"]]


@pytest.mark.parametrize("case", PACKETS)
def test_packet_reencodes_to_the_same_body(case: dict[str, Any]) -> None:
    # Fields, their order and the extra list elements survive; trailing bytes are ignored on receipt.
    data = bytes.fromhex(case["hex"])
    body = data[HASH_AND_SIGNATURE:]
    _, trailing = decode_prefix(body[1:])
    again = discv4.encode(discv4.decode(data).packet, SIGNER)
    assert again[HASH_AND_SIGNATURE:] == body[: len(body) - len(trailing)]
