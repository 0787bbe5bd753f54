"""eth capability: Status in both layouts, header requests and responses, the
mainnet genesis header hash, raw pass-through, and fuzzing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire.errors import MalformedMessage, UnknownPacketType, WireError
from ethcrawl.wire.eth import (
    ETH_MESSAGE_NAMES,
    BlockHeader,
    BlockHeaders,
    BlockRangeUpdate,
    EthMessage,
    GetBlockHeaders,
    RawEthMessage,
    Status66,
    Status69,
    decode_eth,
    decode_status,
    encode_eth,
)
from ethcrawl.wire.forkid import ForkId
from ethcrawl.wire.rlpcodec import decode, encode

# The mainnet genesis header, field by field; its hash is the well-known
# d4e56740...8fa3, so this checks that BlockHeader hashes the exact encoding.
MAINNET_GENESIS_HASH = bytes.fromhex("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3")
EMPTY_TRIE = bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")
GENESIS_FIELDS: list[Any] = [
    bytes(32),
    bytes.fromhex("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"),
    bytes(20),
    bytes.fromhex("d7f8974fb5ac78d9ac099b9ad5018bedc2ce0a72dad1827a1709da30580f0544"),
    EMPTY_TRIE,
    EMPTY_TRIE,
    bytes(256),
    17179869184,
    0,
    5000,
    0,
    0,
    bytes.fromhex("11bbe8db4e347b4e8c937c1c8370e4b5ed33adb3db69cbdb7a38e1e50b1b82fa"),
    bytes(32),
    bytes.fromhex("0000000000000042"),
]
MAINNET_FORK_ID = ForkId(hash=bytes.fromhex("fc64ec04"), next=1150000)

hashes = st.binary(min_size=32, max_size=32)
u64 = st.integers(0, 2**64 - 1)
fork_ids = st.builds(ForkId, hash=st.binary(min_size=4, max_size=4), next=u64)
status66 = st.builds(
    Status66, version=st.integers(64, 68), network_id=u64, td=st.integers(0, 2**256 - 1),
    head=hashes, genesis=hashes, fork_id=fork_ids,
)
status69 = st.builds(
    Status69, version=st.integers(69, 72), network_id=u64, genesis=hashes, fork_id=fork_ids,
    earliest_block=u64, latest_block=u64, latest_hash=hashes,
)
get_headers = st.builds(
    GetBlockHeaders, request_id=u64, origin=st.one_of(hashes, u64), amount=u64, skip=u64, reverse=st.booleans(),
)


def header_rlp(number: int, timestamp: int, extra_fields: int = 0) -> bytes:
    fields = list(GENESIS_FIELDS)
    fields[8], fields[11] = number, timestamp
    fields += [b"\x07" * 32] * extra_fields  # post-London headers only add fields at the end
    return encode(fields)


headers = st.builds(
    lambda n, t, x: BlockHeader.from_rlp_item(decode(header_rlp(n, t, x))), u64, u64, st.integers(0, 7),
)
block_headers = st.builds(BlockHeaders, request_id=u64, headers=st.lists(headers, max_size=4).map(tuple))
range_updates = st.builds(BlockRangeUpdate, earliest_block=u64, latest_block=u64, latest_hash=hashes)


# -- Status ------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(status66)
def test_status66_round_trip(status: Status66) -> None:
    code, payload = encode_eth(status)
    assert code == 0x00
    assert decode_eth(code, payload, status.version) == status
    assert decode_status(payload) == status  # the version field picks the layout


@settings(max_examples=150, deadline=None)
@given(status69)
def test_status69_round_trip(status: Status69) -> None:
    code, payload = encode_eth(status)
    assert code == 0x00
    assert decode_eth(code, payload, status.version) == status
    assert decode_status(payload) == status


def test_status66_layout() -> None:
    head, genesis = b"\x11" * 32, MAINNET_GENESIS_HASH
    payload = encode([68, 1, 2**80 + 5, head, genesis, [MAINNET_FORK_ID.hash, MAINNET_FORK_ID.next]])
    status = decode_eth(0x00, payload, 68)
    assert status == Status66(version=68, network_id=1, td=2**80 + 5, head=head, genesis=genesis,
                              fork_id=MAINNET_FORK_ID)
    assert isinstance(status, Status66) and status.head_hash == head


def test_status69_layout() -> None:
    # caps/eth.md: [vsn, networkid, genesis, forkid, earliest, latest, latestHash]
    latest = b"\x22" * 32
    payload = encode([69, 1, MAINNET_GENESIS_HASH, [MAINNET_FORK_ID.hash, MAINNET_FORK_ID.next], 0, 22_000_000, latest])
    status = decode_eth(0x00, payload, 69)
    assert status == Status69(version=69, network_id=1, genesis=MAINNET_GENESIS_HASH, fork_id=MAINNET_FORK_ID,
                              earliest_block=0, latest_block=22_000_000, latest_hash=latest)
    assert isinstance(status, Status69) and status.head_hash == latest


def test_status_extra_fields_kept() -> None:
    base = [68, 1, 1, b"\x11" * 32, b"\x22" * 32, [b"abcd", 0]]
    status = decode_eth(0x00, encode(base + [b"future", [b"x"]]), 68)
    assert isinstance(status, Status66) and status.rest == (b"future", (b"x",))
    assert encode_eth(status)[1] == encode(base + [b"future", [b"x"]])


def test_status_layout_follows_negotiated_version() -> None:
    # An eth/68 layout read as eth/69 is malformed (genesis slot holds the td).
    payload = encode_eth(Status66(version=68, network_id=1, td=1, head=b"\x11" * 32, genesis=b"\x22" * 32,
                                  fork_id=MAINNET_FORK_ID))[1]
    with pytest.raises(MalformedMessage):
        decode_eth(0x00, payload, 69)


@pytest.mark.parametrize(
    "fields",
    [
        [68, 1, 1, b"\x11" * 31, b"\x22" * 32, [b"abcd", 0]],
        [68, 1, 1, b"\x11" * 32, b"\x22" * 32, [b"abc", 0]],
        [68, 1, 1, b"\x11" * 32, b"\x22" * 32],
        [68, 2**64, 1, b"\x11" * 32, b"\x22" * 32, [b"abcd", 0]],
        [68, 1, [1], b"\x11" * 32, b"\x22" * 32, [b"abcd", 0]],
    ],
    ids=["short-head", "short-fork-hash", "missing-forkid", "network-id-65-bits", "td-is-list"],
)
def test_bad_status66(fields: list[Any]) -> None:
    with pytest.raises(MalformedMessage):
        decode_eth(0x00, encode(fields), 68)


# -- headers -----------------------------------------------------------------------


def test_mainnet_genesis_header_hash() -> None:
    header = BlockHeader.from_rlp_item(decode(encode(GENESIS_FIELDS)))
    assert header.hash == MAINNET_GENESIS_HASH
    assert (header.number, header.timestamp) == (0, 0)


def test_block_headers_message_with_genesis() -> None:
    payload = encode([7, [GENESIS_FIELDS]])
    msg = decode_eth(0x04, payload, 68)
    assert isinstance(msg, BlockHeaders) and msg.request_id == 7
    assert [h.hash for h in msg.headers] == [MAINNET_GENESIS_HASH]
    assert encode_eth(msg) == (0x04, payload)


def test_block_headers_empty_and_too_short_header() -> None:
    assert decode_eth(0x04, encode([1, []]), 68) == BlockHeaders(request_id=1, headers=())
    with pytest.raises(MalformedMessage, match=r"headers\[0\]"):
        decode_eth(0x04, encode([1, [GENESIS_FIELDS[:14]]]), 68)


def test_get_block_headers_layout() -> None:
    by_number = GetBlockHeaders(request_id=1, origin=1_000_000, amount=1, skip=0, reverse=True)
    assert encode_eth(by_number) == (0x03, encode([1, [1_000_000, 1, 0, 1]]))
    by_hash = GetBlockHeaders(request_id=2, origin=MAINNET_GENESIS_HASH, amount=1)
    assert encode_eth(by_hash) == (0x03, encode([2, [MAINNET_GENESIS_HASH, 1, 0, 0]]))


@pytest.mark.parametrize(
    "query", [[b"\x01" * 9, 1, 0, 0], [b"\x01" * 31, 1, 0, 0], [1, 1, 0, 2], [1, 1, 0]],
    ids=["origin-9-bytes", "origin-31-bytes", "reverse-2", "short-query"],
)
def test_bad_get_block_headers(query: list[Any]) -> None:
    with pytest.raises(MalformedMessage):
        decode_eth(0x03, encode([1, query]), 68)


@settings(max_examples=150, deadline=None)
@given(st.one_of(get_headers, block_headers), st.sampled_from([66, 67, 68, 69]))
def test_request_response_round_trip(msg: GetBlockHeaders | BlockHeaders, version: int) -> None:
    code, payload = encode_eth(msg)
    assert decode_eth(code, payload, version) == msg


@settings(max_examples=100, deadline=None)
@given(range_updates)
def test_block_range_update_round_trip(msg: BlockRangeUpdate) -> None:
    assert decode_eth(*encode_eth(msg), 69) == msg


# -- code table ---------------------------------------------------------------------


def test_block_range_update_does_not_exist_before_eth69() -> None:
    with pytest.raises(UnknownPacketType):
        decode_eth(0x11, encode([0, 1, b"\x00" * 32]), 68)


@pytest.mark.parametrize(("version", "code"), [(68, 0x11), (68, 0x20), (69, 0x12), (66, 0xFF)])
def test_code_beyond_version(version: int, code: int) -> None:
    with pytest.raises(UnknownPacketType):
        decode_eth(code, b"\xc0", version)


@pytest.mark.parametrize("code", [0x01, 0x02, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0F, 0x10])
def test_unmodelled_messages_pass_through(code: int) -> None:
    msg = decode_eth(code, b"\xc2\x01\x02", 68)
    assert msg == RawEthMessage(code=code, payload=b"\xc2\x01\x02")
    assert isinstance(msg, RawEthMessage) and msg.name == ETH_MESSAGE_NAMES[code]
    assert encode_eth(msg) == (code, b"\xc2\x01\x02")


def test_codes_0b_0c_are_unknown() -> None:
    for code in (0x0B, 0x0C):
        with pytest.raises(UnknownPacketType):
            decode_eth(code, b"\xc0", 68)


# -- fuzz -----------------------------------------------------------------------------

VALID: list[tuple[int, bytes, int]] = [
    (0x00, encode_eth(Status66(version=68, network_id=1, td=17, head=b"\x11" * 32, genesis=MAINNET_GENESIS_HASH,
                               fork_id=MAINNET_FORK_ID))[1], 68),
    (0x00, encode_eth(Status69(version=69, network_id=1, genesis=MAINNET_GENESIS_HASH, fork_id=MAINNET_FORK_ID,
                               earliest_block=0, latest_block=5, latest_hash=b"\x22" * 32))[1], 69),
    (0x03, encode_eth(GetBlockHeaders(request_id=1, origin=MAINNET_GENESIS_HASH, amount=1))[1], 68),
    (0x04, encode([7, [GENESIS_FIELDS]]), 68),
    (0x11, encode_eth(BlockRangeUpdate(earliest_block=0, latest_block=5, latest_hash=b"\x22" * 32))[1], 69),
]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 0x16), st.binary(max_size=200), st.sampled_from([66, 67, 68, 69, 70, 71, 72, 99]))
def test_random_payloads_only_wire_errors(code: int, payload: bytes, version: int) -> None:
    try:
        decode_eth(code, payload, version)
    except WireError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_mutated_payloads_only_wire_errors(valid: tuple[int, bytes, int], data: st.DataObject) -> None:
    code, payload, version = valid
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(payload) - 1))
        mutated = payload[:i] + bytes([payload[i] ^ data.draw(st.integers(1, 255))]) + payload[i + 1:]
    elif kind == "truncate":
        mutated = payload[: data.draw(st.integers(0, len(payload) - 1))]
    else:
        mutated = payload + data.draw(st.binary(min_size=1, max_size=16))
    try:
        result: EthMessage = decode_eth(code, mutated, version)
    except WireError:
        return
    # Whatever decodes must survive a round trip (not byte-exact: ForkId drops
    # extra elements inside [hash, next], as EIP-8 tolerance allows).
    again_code, again = encode_eth(result)
    assert again_code == code
    assert decode_eth(code, again, version) == result
