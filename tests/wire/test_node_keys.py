"""Every way a node key reaches us from the network refuses one that is not a secp256k1 point.

A stranger's key becomes a node id (its keccak) and, later, the target of an
RLPx handshake; an off-curve key would give an id that means nothing and a
dial that cannot start.  NEIGHBORS entries are dropped on decoding
(tests/wire/test_discv4.py); these pin the other doors: ENRs (discv5 NODES,
ENRRESPONSE, ``enr:`` seeds) and ``enode://`` URLs.
"""

from __future__ import annotations

import pytest

from ethcrawl.wire.crypto import PrivateKey, is_valid_pubkey
from ethcrawl.wire.discv5.messages import Nodes
from ethcrawl.wire.enode import parse_enode
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import BadENR, BadEnodeURL
from ethcrawl.wire.rlpcodec import encode as rlp_encode

OFF_CURVE_COMPRESSED = b"\x02" + b"\xff" * 32  # x >= p: no point has it
OFF_CURVE_RAW = b"\x07" * 64


def _record_with_key(key: bytes) -> bytes:
    # A well-formed v4 record in every other respect (keys sorted, 64-byte signature).
    pairs = [b"id", b"v4", b"ip", bytes([127, 0, 0, 1]), b"secp256k1", key, b"tcp", 30303, b"udp", 30303]
    return rlp_encode([b"\x01" * 64, 1, *pairs])


def test_enr_with_an_off_curve_key_fails_verification() -> None:
    with pytest.raises(BadENR):
        ENR.from_rlp(_record_with_key(OFF_CURVE_COMPRESSED))


def test_unverified_enr_with_an_off_curve_key_gives_no_node() -> None:
    record = ENR.from_rlp(_record_with_key(OFF_CURVE_COMPRESSED), verify=False)
    assert record.public_key_raw is None and record.node_id is None
    with pytest.raises(BadENR, match="secp256k1"):
        record.to_node()


def test_discv5_nodes_reply_keeps_the_good_records_beside_an_off_curve_one() -> None:
    good = ENR.create(PrivateKey(b"\x01" * 32), seq=1, pairs={"ip": "127.0.0.1", "udp": 30303})
    reply = Nodes(request_id=b"\x01", total=1, records=(_record_with_key(OFF_CURVE_COMPRESSED), good.to_rlp()))
    enrs, errors = reply.enrs()
    assert enrs == [good] and len(errors) == 1
    node = enrs[0].to_node()
    assert is_valid_pubkey(node.pubkey)


def test_enode_url_with_an_off_curve_key_is_refused() -> None:
    with pytest.raises(BadEnodeURL, match="secp256k1"):
        parse_enode(f"enode://{OFF_CURVE_RAW.hex()}@127.0.0.1:30303")
