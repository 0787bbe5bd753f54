"""wire.classify: real records from fixtures/, computed fork digests against published values, odd values, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire.chains import CHAINS
from ethcrawl.wire.classify import (
    CONSENSUS,
    CONSENSUS_NETWORKS,
    EXECUTION,
    LAYERS,
    OTHER,
    Classification,
    classify,
    compute_fork_digest,
    consensus_fork_by_digest,
    fork_digests,
)
from ethcrawl.wire.crypto import PrivateKey
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.forkid import ForkId, fork_hashes
from ethcrawl.wire.rlpcodec import Item, encode, encode_uint

from ground_truth import load_fixture_json, load_fixture_json_at_collection

V5_BOOTNODES = load_fixture_json_at_collection("vectors", "bootnodes.json")["v5"]
DNSLISTS = ("sepolia", "holesky", "hoodi", "mainnet.part")
KEY = PrivateKey(bytes(range(1, 33)))
SECONDS_PER_EPOCH = 12 * 32  # SECONDS_PER_SLOT * SLOTS_PER_EPOCH on every network here
FAR_FUTURE_EPOCH = 2**64 - 1
# A boot node started before genesis knows no genesis_validators_root: it announces the
# digest of the genesis version over an all-zero root (sha256 of 64 zero bytes).
PRE_GENESIS_DIGEST = compute_fork_digest(b"\x00" * 4, b"\x00" * 32)

# Digests published by others, not computed by us: client test suites and gossip topic names.
PUBLISHED_DIGESTS = [
    # Nethermind BeaconChain ForkDigestTests (mainnet, incl. EIP-7892 Fulu/BPO) and Prysm p2p TestAllTopics
    ("mainnet", "Phase0", "b5303f2a"),
    ("mainnet", "Capella", "bba4da96"),
    ("mainnet", "Deneb", "6a95a1a9"),
    ("mainnet", "Electra", "ad532ceb"),
    ("mainnet", "Altair", "afcaaba0"),
    ("mainnet", "Fulu", "cc2c5cdb"),
    ("mainnet", "BPO1", "cb0d1acc"),
    ("mainnet", "BPO2", "8c9f62fe"),
    ("hoodi", "Fulu", "e2abcca4"),
    # Erigon Caplin topic comments (/eth2/d31f6191/...) and light-client domain constants
    ("sepolia", "Deneb", "d31f6191"),
    ("sepolia", "Capella", "47eb72b3"),
    ("holesky", "Bellatrix", "69b7d974"),
    ("holesky", "Capella", "17e2dad3"),
    ("holesky", "Deneb", "69ae0e99"),
]


def _record(pairs: dict[str, object], seq: int = 1) -> ENR:
    return ENR.create(KEY, seq=seq, pairs={"ip": "127.0.0.1", "udp": 30303, **pairs})


def _eth2(digest: bytes, version: bytes = b"\x05\x00\x00\x00", epoch: int = FAR_FUTURE_EPOCH) -> bytes:
    return digest + version + epoch.to_bytes(8, "little")


def _digest(network: str, fork: str) -> bytes:
    return next(f.digest for f in fork_digests(CONSENSUS_NETWORKS[network]) if f.name == fork)


# ---------------------------------------------------------------- real records


@pytest.mark.parametrize("text", V5_BOOTNODES, ids=lambda t: t[4:16])
def test_real_v5_bootnode_is_consensus_with_its_digest(text: str) -> None:
    record = ENR.from_text(text)
    result = classify(record)
    assert result.layer == CONSENSUS
    assert record.eth2 is not None and result.fork_digest == record.eth2[:4]
    assert result.next_fork_version == record.eth2[4:8]
    assert result.next_fork_epoch == int.from_bytes(record.eth2[8:], "little")
    assert result.problems == ()
    if record.attnets is not None:
        assert result.attnets_count == int.from_bytes(record.attnets, "big").bit_count()
    if result.consensus_network is None:
        # The only digests we cannot name are the pre-genesis ones.
        assert result.fork_digest == PRE_GENESIS_DIGEST
    else:
        fork = consensus_fork_by_digest(result.fork_digest)
        assert fork is not None and (fork.network, fork.name) == (result.consensus_network, result.consensus_fork)


def test_most_real_consensus_digests_map_to_a_known_network() -> None:
    results = [classify(ENR.from_text(text)) for text in V5_BOOTNODES]
    named = [r for r in results if r.consensus_network is not None]
    # 12 of the 15 go-ethereum v5 bootnodes: mainnet Phase0 (with and without the Altair
    # announcement) and Capella; the other 3 are the pre-genesis digest.
    assert len(results) == 15
    assert len(named) == 12, [r.fork_digest.hex() for r in results if r.fork_digest and r.consensus_network is None]
    assert {(r.consensus_network, r.consensus_fork) for r in named} == {("mainnet", "Phase0"), ("mainnet", "Capella")}
    # A Phase0 record that announced Altair carries Altair's version and epoch as ours says.
    altair = CONSENSUS_NETWORKS["mainnet"].forks[1]
    announcing = [r for r in named if r.next_fork_version == altair[1]]
    assert announcing and all(r.next_fork_epoch == altair[2] for r in announcing)


@pytest.mark.parametrize("name", DNSLISTS)
def test_every_real_execution_record_classifies_to_its_list_network(name: str) -> None:
    entries = load_fixture_json("data", "dnslists", f"{name}.nodes.json")
    network = name.split(".")[0]
    layers: dict[str, int] = {}
    for entry in entries.values():
        result = classify(ENR.from_text(entry["record"]))
        layers[result.layer] = layers.get(result.layer, 0) + 1
        assert result.problems == ()
        if result.layer == EXECUTION:
            assert result.fork_id is not None
            assert result.execution_network == network
            assert result.execution_fork is not None
        assert result.fork_digest is None and result.consensus_network is None
        assert set(result.other_keys) <= {"snap", "tool"}, result.other_keys
    # Every record in the published lists carries an eth entry.
    assert layers == {EXECUTION: len(entries)}


# ---------------------------------------------------------------- fork digests


@pytest.mark.parametrize("network,fork,digest", PUBLISHED_DIGESTS, ids=lambda v: str(v))
def test_computed_digest_matches_published_value(network: str, fork: str, digest: str) -> None:
    assert _digest(network, fork).hex() == digest
    found = consensus_fork_by_digest(bytes.fromhex(digest))
    assert found is not None and (found.network, found.name) == (network, fork)


def test_pre_genesis_digest_is_sha256_of_64_zero_bytes() -> None:
    assert PRE_GENESIS_DIGEST.hex() == "f5a5fd42"
    assert consensus_fork_by_digest(PRE_GENESIS_DIGEST) is None


def test_fulu_digest_is_the_base_digest_xored_with_the_blob_parameters_hash() -> None:
    mainnet = CONSENSUS_NETWORKS["mainnet"]
    version = mainnet.forks[-1][1]
    base = compute_fork_digest(version, mainnet.genesis_validators_root)
    masked = compute_fork_digest(version, mainnet.genesis_validators_root, (364032, 9))
    assert base != masked and _digest("mainnet", "Fulu") == masked
    # Before the first BPO, Fulu uses Electra's epoch and blob count.
    assert mainnet.blob_parameters(411392) == (364032, 9)
    assert mainnet.blob_parameters(412671) == (364032, 9)
    assert mainnet.blob_parameters(412672) == (412672, 15)
    assert mainnet.blob_parameters(10**9) == (419072, 21)


# EL fork (chains.json) activated at the same moment as each CL fork.
_SAME_MOMENT = {"Capella": "Shanghai", "Deneb": "Cancun", "Electra": "Prague", "Fulu": "Osaka", "BPO1": "BPO1", "BPO2": "BPO2"}


@pytest.mark.parametrize("name", sorted(CONSENSUS_NETWORKS))
def test_fork_epochs_agree_with_execution_fork_times(name: str) -> None:
    network = CONSENSUS_NETWORKS[name]
    el_times = {f.name: f.at for f in CHAINS[name].forks if f.by_time}
    checked = 0
    for fork in fork_digests(network):
        el_name = _SAME_MOMENT.get(fork.name)
        if el_name is None:
            continue
        el_time = el_times[el_name]
        if el_time <= network.genesis_time:
            assert fork.epoch == 0  # in the genesis ruleset on both layers
        else:
            assert network.genesis_time + fork.epoch * SECONDS_PER_EPOCH == el_time, fork
        checked += 1
    assert checked == len(_SAME_MOMENT)


def test_every_known_digest_is_distinct() -> None:
    digests = [f.digest for n in CONSENSUS_NETWORKS.values() for f in fork_digests(n)]
    assert len(digests) == len(set(digests)) == 4 * 9


# ---------------------------------------------------------------- hand-built records


def test_execution_record() -> None:
    prague = next(e for e in fork_hashes(CHAINS["mainnet"]) if e.name == "Prague")
    result = classify(_record({"eth": [prague.fork_id], "snap": []}))
    assert result.layer == EXECUTION
    assert result.fork_id == prague.fork_id
    assert (result.execution_network, result.execution_fork) == ("mainnet", "Prague")
    assert result.other_keys == ("snap",)
    assert result.fork_digest is None and result.attnets_count is None and result.problems == ()


@pytest.mark.parametrize("wrapped", ["entry", "bare"])
def test_chainsafe_byte_string_eth_is_read(wrapped: str) -> None:
    fork_id = ForkId(hash=bytes.fromhex("fc64ec04"), next=1150000)
    inner: Item = [fork_id.to_rlp_item()] if wrapped == "entry" else fork_id.to_rlp_item()
    result = classify(_record({"eth": encode(inner)}))
    assert result.layer == EXECUTION and result.fork_id == fork_id
    assert (result.execution_network, result.execution_fork) == ("mainnet", "Frontier")
    assert result.problems == ()


def test_consensus_record_with_subnets() -> None:
    digest = _digest("hoodi", "BPO2")
    attnets = bytes([0b1000_0001, 0, 0, 0, 0, 0, 0, 0b0100_0000])
    result = classify(_record({"eth2": _eth2(digest, b"\x80\x00\x09\x10", 99999), "attnets": attnets, "syncnets": b"\x0b", "cgc": b"\x04"}))
    assert result.layer == CONSENSUS
    assert (result.consensus_network, result.consensus_fork) == ("hoodi", "BPO2")
    assert result.fork_digest == digest and result.next_fork_version == b"\x80\x00\x09\x10" and result.next_fork_epoch == 99999
    assert (result.attnets_count, result.syncnets_count) == (3, 3)
    assert result.other_keys == ("cgc",) and result.problems == ()


def test_unknown_digest_stays_unnamed() -> None:
    result = classify(_record({"eth2": _eth2(b"\xde\xad\xbe\xef")}))
    assert result.layer == CONSENSUS and result.fork_digest == b"\xde\xad\xbe\xef"
    assert result.consensus_network is None and result.consensus_fork is None


def test_other_record_lists_its_keys() -> None:
    result = classify(_record({"opstack": b"\x01\x02", "les": [], "\x01odd": b""}))
    assert result.layer == OTHER
    assert result.other_keys == ("0x016f6464", "les", "opstack")
    assert result == Classification(layer=OTHER, other_keys=result.other_keys)


def test_both_eth_and_eth2_is_consensus_with_both_decoded() -> None:
    fork_id = fork_hashes(CHAINS["sepolia"])[-1].fork_id
    result = classify(_record({"eth": [fork_id], "eth2": _eth2(_digest("sepolia", "Electra"))}))
    assert result.layer == CONSENSUS
    assert result.execution_network == "sepolia" and result.consensus_network == "sepolia"
    assert result.consensus_fork == "Electra"


@pytest.mark.parametrize(
    "pairs,layer,problem",
    [
        ({"eth2": b"\x01" * 12}, CONSENSUS, "eth2: 12 bytes, expected 16"),
        ({"eth2": [b"\x01" * 16]}, CONSENSUS, "eth2: a list, expected 16"),
        ({"eth2": b"\x01" * 17}, CONSENSUS, "eth2: 17 bytes"),
        ({"eth": b"\xff\x00garbage"}, EXECUTION, "eth: not a"),
        ({"eth": [[b"\x01\x02", b"\x01"]]}, EXECUTION, "eth: not a"),
        ({"eth": []}, EXECUTION, "eth: not a"),
        ({"attnets": b"\x01" * 7}, OTHER, "attnets: 7 bytes, expected 8"),
        ({"attnets": [b""]}, OTHER, "attnets: a list"),
        ({"syncnets": b"\x10"}, OTHER, "syncnets: bits set beyond the 4 subnets"),
        ({"syncnets": b"\x01\x00"}, OTHER, "syncnets: 2 bytes, expected 1"),
    ],
)
def test_odd_value_is_a_problem_not_an_error(pairs: dict[str, object], layer: str, problem: str) -> None:
    result = classify(_record(pairs))
    assert result.layer == layer
    assert len(result.problems) == 1 and result.problems[0].startswith(problem), result.problems
    assert result.fork_id is None and result.fork_digest is None
    assert result.attnets_count is None and result.syncnets_count is None


def test_odd_value_leaves_the_other_fields_readable() -> None:
    record = _record({"eth2": _eth2(_digest("mainnet", "Electra")), "attnets": b"\x01\x02", "syncnets": b"\x03"})
    result = classify(record)
    assert result.consensus_fork == "Electra" and result.syncnets_count == 2 and result.attnets_count is None
    assert result.problems == ("attnets: 2 bytes, expected 8 bytes",)
    assert record.ip is not None and record.udp == 30303


def test_classification_refuses_an_unknown_layer() -> None:
    with pytest.raises(ValueError):
        Classification(layer="beacon")
    assert LAYERS == (EXECUTION, CONSENSUS, OTHER)


# ---------------------------------------------------------------- fuzzing


_items: st.SearchStrategy[Item] = st.recursive(
    st.binary(max_size=20), lambda inner: st.lists(inner, max_size=3), max_leaves=6
)
_KEYS = ("eth", "eth2", "attnets", "syncnets", "snap")


@settings(max_examples=200, deadline=None)
@given(
    eth2=st.binary(max_size=24),
    attnets=st.binary(max_size=10),
    syncnets=st.binary(max_size=2),
    eth=st.binary(max_size=24),
)
def test_random_byte_values_never_raise(eth2: bytes, attnets: bytes, syncnets: bytes, eth: bytes) -> None:
    result = classify(_record({"eth2": eth2, "attnets": attnets, "syncnets": syncnets, "eth": eth}))
    assert result.layer == CONSENSUS
    assert result.fork_digest == (eth2[:4] if len(eth2) == 16 else None)
    if len(attnets) == 8:
        assert result.attnets_count == int.from_bytes(attnets, "big").bit_count()
    else:
        assert result.attnets_count is None and any(p.startswith("attnets") for p in result.problems)
    if len(syncnets) == 1 and syncnets[0] < 16:
        assert result.syncnets_count == syncnets[0].bit_count()
    else:
        assert result.syncnets_count is None


@settings(max_examples=200, deadline=None)
@given(values=st.fixed_dictionaries({}, optional={key: _items for key in _KEYS}))
def test_random_rlp_shapes_never_raise(values: dict[str, Item]) -> None:
    # Build the record unsigned: classify must not depend on the signature, and any shape is allowed.
    pairs: dict[bytes, Item] = {b"id": b"v4", **{k.encode(): v for k, v in values.items()}}
    ordered = dict(sorted(pairs.items()))
    items: list[Item] = [b"\x00" * 64, encode_uint(1)]
    for key, value in ordered.items():
        items += [key, value]
    record = ENR(seq=1, signature=b"\x00" * 64, pairs=ordered, raw=encode(items))
    result = classify(record)
    expected = CONSENSUS if "eth2" in values else EXECUTION if "eth" in values else OTHER
    assert result.layer == expected
    assert result.other_keys == (("snap",) if "snap" in values else ())

