"""go-ethereum's v5wire test data (fixtures/vectors/upstream/discv5.json), each case its own test.

packets: the four testdata files verbatim; each is unmasked with node B's id, its header checked
against the file's comments, its message decrypted with the given read-key (for handshakes also
derived from node B's side of the key agreement), and it re-encodes to the same bytes.
crypto: TestVector_ECDH, TestVector_KDF, TestVector_IDSignature. decode_errors:
TestDecodeErrorsV5, built from those files as geth builds them; each must be rejected with our
typed error. geth's errMsgTooShort for a handshake with 108 bytes cut off is our PacketTooSmall:
we check the header's authdata-size against the datagram before reading further.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from ethcrawl.wire.crypto import PrivateKey, compress_pubkey, node_id_from_pubkey, pubkey_from_private
from ethcrawl.wire.discv5 import crypto
from ethcrawl.wire.discv5.messages import Ping, decode_message
from ethcrawl.wire.discv5.packet import (
    FLAG_HANDSHAKE,
    FLAG_MESSAGE,
    FLAG_WHOAREYOU,
    HandshakeAuthdata,
    MessageAuthdata,
    WhoareyouAuthdata,
    decode_packet,
    encode_packet,
)
from ethcrawl.wire.errors import MalformedMessage, PacketTooSmall, RemoteProtocolError

from ground_truth import load_fixture_json_at_collection

VECTORS = load_fixture_json_at_collection("vectors", "upstream", "discv5.json")
KEYS = {name: PrivateKey(bytes.fromhex(hex_key)) for name, hex_key in VECTORS["keys"].items()}
IDS = {name: node_id_from_pubkey(pubkey_from_private(key)) for name, key in KEYS.items()}
FLAGS = {"v5.1-whoareyou": FLAG_WHOAREYOU, "v5.1-ping-message": FLAG_MESSAGE,
         "v5.1-ping-handshake": FLAG_HANDSHAKE, "v5.1-ping-handshake-enr": FLAG_HANDSHAKE}
# geth's error -> ours; "any error" is any RemoteProtocolError.
GETH_ERRORS: dict[str, type[RemoteProtocolError]] = {
    "errTooShort": PacketTooSmall,
    "errInvalidHeader": MalformedMessage,
    "errMsgTooShort": PacketTooSmall,
    "any error": RemoteProtocolError,
}


def _hex_file(text: str) -> bytes:
    """geth's hexFile: the hex after the '#' comment lines."""
    return bytes.fromhex("".join(line for line in text.splitlines() if line.strip() and not line.startswith("#")))


def _comments(text: str) -> dict[str, bytes | int]:
    fields: dict[str, bytes | int] = {}
    for match in re.finditer(r"^#\s*([\w.-]+)\s*=\s*(\S+)\s*$", text, re.MULTILINE):
        value = match[2]
        fields[match[1]] = bytes.fromhex(value[2:]) if value.startswith("0x") else int(value)
    return fields


def _b(fields: dict[str, bytes | int], key: str) -> bytes:
    value = fields[key]
    assert isinstance(value, bytes), key
    return value


def _i(fields: dict[str, bytes | int], key: str) -> int:
    value = fields[key]
    return value if isinstance(value, int) else int.from_bytes(value, "big")


PACKETS = [pytest.param(name, text, id=name) for name, text in sorted(VECTORS["packets"].items())]


@pytest.mark.parametrize(("name", "text"), PACKETS)
def test_packet(name: str, text: str) -> None:
    data, fields = _hex_file(text), _comments(text)
    assert (_b(fields, "src-node-id"), _b(fields, "dest-node-id")) == (IDS["node_a"], IDS["node_b"])
    packet = decode_packet(data, IDS["node_b"])
    assert packet.header.flag == FLAGS[name]
    assert encode_packet(packet, IDS["node_b"]) == data
    auth = packet.header.authdata
    if isinstance(auth, WhoareyouAuthdata):
        assert packet.challenge_data == _b(fields, "whoareyou.challenge-data")
        assert packet.header.nonce == _b(fields, "whoareyou.request-nonce")
        assert (auth.id_nonce, auth.enr_seq) == (_b(fields, "whoareyou.id-nonce"), _i(fields, "whoareyou.enr-seq"))
        return
    assert isinstance(auth, (MessageAuthdata, HandshakeAuthdata)) and auth.src_id == IDS["node_a"]
    assert packet.header.nonce == _b(fields, "nonce")
    read_key = _b(fields, "read-key")
    if isinstance(auth, HandshakeAuthdata):
        assert auth.eph_pubkey == _b(fields, "ephemeral-pubkey")
        assert compress_pubkey(pubkey_from_private(PrivateKey(_b(fields, "ephemeral-key")))) == auth.eph_pubkey
        challenge = _b(fields, "whoareyou.challenge-data")
        secret = crypto.ecdh(KEYS["node_b"], auth.eph_pubkey)
        assert crypto.derive_keys(secret, IDS["node_a"], IDS["node_b"], challenge).initiator_key == read_key
        # A's record travels only when B's challenge named an older seq than A has (1).
        assert (auth.record != b"") == (_i(fields, "whoareyou.enr-seq") == 0)
    plaintext = crypto.decrypt_message(read_key, packet.header.nonce, packet.message, packet.message_ad)
    assert decode_message(plaintext) == Ping(request_id=_b(fields, "ping.req-id"), enr_seq=_i(fields, "ping.enr-seq"))


def _hex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def test_crypto_ecdh() -> None:
    case = VECTORS["crypto"]["ecdh"]
    assert crypto.ecdh(PrivateKey(_hex(case["static_key"])), _hex(case["public_key"])) == _hex(case["shared_secret"])


def test_crypto_kdf() -> None:
    case = VECTORS["crypto"]["kdf"]
    secret = crypto.ecdh(PrivateKey(_hex(case["ephemeral_key"])), pubkey_from_private(KEYS[case["dest"]]))
    keys = crypto.derive_keys(secret, IDS[case["initiator"]], IDS[case["dest"]], _hex(case["challenge_data"]))
    assert (keys.initiator_key, keys.recipient_key) == (_hex(case["initiator_key"]), _hex(case["recipient_key"]))


def test_crypto_id_signature() -> None:
    case = VECTORS["crypto"]["id_signature"]
    key = PrivateKey(_hex(case["static_key"]))
    inputs = (_hex(case["challenge_data"]), _hex(case["ephemeral_pubkey"]), _hex(case["dest_id"]))
    assert crypto.id_sign(key, *inputs) == _hex(case["signature"])  # RFC 6979: deterministic, as geth
    crypto.id_verify(pubkey_from_private(key), _hex(case["signature"]), *inputs)


def _build(case: dict[str, Any]) -> bytes:
    files = {name: _hex_file(text) for name, text in VECTORS["packets"].items()}
    if case["build"] == "zeros":
        return bytes(case["size"])
    if case["build"] == "truncate":
        return files[case["file"]][: -case["cut"]]  # geth: enc[:len(enc)-requiredNumber]
    assert case["build"] == "splice"
    # geth: the WHOAREYOU's static header with its last byte (authdata-size low byte) set to
    # `byte`, then the handshake packet's authdata and message.
    size = case["static_packet_size"]
    return files[case["head_file"]][: size - 1] + bytes([case["byte"]]) + files[case["tail_file"]][size:]


DECODE_ERRORS = [pytest.param(case, id=case["name"]) for case in VECTORS["decode_errors"]]


@pytest.mark.parametrize("case", DECODE_ERRORS)
def test_decode_error(case: dict[str, Any]) -> None:
    # geth decodes the zero-byte cases as node A, the built ones as node B.
    local = IDS["node_a"] if case["build"] == "zeros" else IDS["node_b"]
    with pytest.raises(GETH_ERRORS[case["geth_error"]]):
        decode_packet(_build(case), local)
