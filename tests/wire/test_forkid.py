"""Fork ids (EIP-2124): go-ethereum's vectors, epoch naming, classification, validation rules."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire.chains import (
    CHAINS,
    Chain,
    Fork,
    chain_by_genesis,
    chain_by_name,
    chain_by_network_id,
    load_chains,
)
from ethcrawl.wire.errors import LocalProtocolError, WireError
from ethcrawl.wire.forkid import (
    ForkCheck,
    ForkId,
    Readiness,
    classify,
    fork_hashes,
    fork_id,
    validate,
)
from ethcrawl.wire.rlpcodec import decode, encode

from ground_truth import load_fixture_json_at_collection

VECTORS = load_fixture_json_at_collection("vectors", "forkid_eip2124.json")

CREATION_CASES = [
    pytest.param(chain, case, id=f"{chain}-{i}-{case['comment'][:40]}")
    for chain, cases in VECTORS["cases"].items()
    for i, case in enumerate(cases)
]

# geth's test comments use the upgrades' nicknames; the chain data uses geth's
# config field names.
NICKNAMES = {"DAO": "DAOFork", "Tangerine": "EIP150", "Spurious": "EIP158"}


def _named_first_blocks() -> list[Any]:
    """Vector cases whose comment reads "First <fork> block" for a fork of that chain."""
    params = []
    for chain, cases in VECTORS["cases"].items():
        names = {f["name"] for f in VECTORS["chains"][chain]["forks"]}
        for i, case in enumerate(cases):
            match = re.fullmatch(r"First ([A-Za-z0-9 ]+) block", case["comment"])
            if match is None:
                continue
            fork = NICKNAMES.get(match[1], match[1].replace(" ", ""))
            # holesky's "First MergeNetsplit block" names a fork holesky's
            # config does not have (the case is the genesis epoch).
            if fork in names:
                params.append(pytest.param(chain, case, fork, id=f"{chain}-{i}-{fork}"))
    return params


NAMED_CASES = _named_first_blocks()


def test_vector_file_has_all_cases() -> None:
    assert len(CREATION_CASES) == 78
    assert len(NAMED_CASES) >= 30


@pytest.mark.parametrize(("chain", "case"), CREATION_CASES)
def test_fork_id_matches_geth_vector(chain: str, case: dict[str, Any]) -> None:
    got = fork_id(CHAINS[chain], case["head"], case["time"])
    assert got == ForkId(hash=bytes.fromhex(case["fork_hash"]), next=case["fork_next"])


@pytest.mark.parametrize(("chain", "case", "fork"), NAMED_CASES)
def test_first_block_of_a_fork_is_classified_with_its_name(
    chain: str, case: dict[str, Any], fork: str
) -> None:
    announced = fork_id(CHAINS[chain], case["head"], case["time"])
    got = classify(announced)
    assert (got.network, got.fork, got.readiness) == (chain, fork, Readiness.READY)


# -- chain data ---------------------------------------------------------------


def test_committed_chains_json_equals_vector_chain_data() -> None:
    text = resources.files("ethcrawl.wire").joinpath("data/chains.json").read_text()
    committed = {c.pop("name"): c for c in json.loads(text)["chains"]}
    assert committed == VECTORS["chains"]


def test_loaded_chains_mirror_the_vector_chain_data() -> None:
    assert set(CHAINS) == set(VECTORS["chains"])
    for name, raw in VECTORS["chains"].items():
        chain = CHAINS[name]
        assert chain.genesis_hash.hex() == raw["genesis_hash"]
        assert (chain.chain_id, chain.network_id) == (raw["chain_id"], raw["network_id"])
        assert [(f.name, f.block, f.time) for f in chain.forks] == [
            (f["name"], f.get("block"), f.get("time")) for f in raw["forks"]
        ]


def test_chain_lookups() -> None:
    mainnet = CHAINS["mainnet"]
    assert chain_by_name("Mainnet") is mainnet
    assert chain_by_network_id(11155111) is CHAINS["sepolia"]
    assert chain_by_genesis(bytes.fromhex(VECTORS["chains"]["hoodi"]["genesis_hash"])) is CHAINS["hoodi"]
    assert chain_by_name("ropsten") is None
    assert chain_by_network_id(3) is None
    assert chain_by_genesis(bytes(32)) is None


def test_chains_mapping_is_read_only() -> None:
    with pytest.raises(TypeError):
        CHAINS["mine"] = CHAINS["mainnet"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("forks", "fragment"),
    [
        ([{"name": "A"}], "exactly one of block or time"),
        ([{"name": "A", "block": 1, "time": 2}], "exactly one of block or time"),
        ([{"name": "A", "time": 5}, {"name": "B", "block": 9}], "after a time fork"),
        ([{"name": "A", "block": 9}, {"name": "B", "block": 5}], "out of order"),
        ([{"name": "A", "block": 2**64}], "uint64"),
    ],
)
def test_bad_chain_config_is_rejected(forks: list[dict[str, object]], fragment: str) -> None:
    doc = {"chains": [{"name": "x", "chain_id": 1, "network_id": 1, "genesis_hash": "00" * 32, "forks": forks}]}
    with pytest.raises(ValueError, match=fragment):
        load_chains(json.dumps(doc))


def test_duplicate_chain_name_is_rejected() -> None:
    entry = {"name": "x", "chain_id": 1, "network_id": 1, "genesis_hash": "00" * 32, "forks": []}
    with pytest.raises(ValueError, match="twice"):
        load_chains(json.dumps({"chains": [entry, entry]}))


# -- epochs ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_every_epoch_is_what_a_node_at_its_start_announces(name: str) -> None:
    chain = CHAINS[name]
    epochs = fork_hashes(chain)
    past_all_blocks = max((f.at for f in chain.forks if not f.by_time), default=0)
    for epoch, following in zip(epochs, epochs[1:] + (None,)):
        head = (past_all_blocks, epoch.start) if epoch.by_time else (epoch.start, 0)
        assert fork_id(chain, *head) == epoch.fork_id
        assert epoch.next == (following.start if following else 0)
    assert len({e.hash for e in epochs}) == len(epochs)


def test_mainnet_epoch_names_and_shared_points() -> None:
    epochs = fork_hashes(CHAINS["mainnet"])
    assert epochs[0].name == "Frontier" and epochs[0].forks == ()
    by_name = {e.name: e for e in epochs}
    # Forks sharing a point form one epoch named after the last of them.
    assert by_name["EIP158"].forks == ("EIP155", "EIP158")
    assert by_name["Petersburg"].forks == ("Constantinople", "Petersburg")
    assert "EIP155" not in by_name and "Constantinople" not in by_name
    assert by_name["Prague"].fork_id == ForkId(hash=bytes.fromhex("c376cf8b"), next=1764798551)
    assert by_name["Shanghai"].by_time and not by_name["GrayGlacier"].by_time


def test_genesis_ruleset_forks_name_the_first_epoch() -> None:
    hoodi = fork_hashes(CHAINS["hoodi"])
    # Every fork up to Cancun is active at genesis on hoodi: not forks (EIP-2124).
    assert hoodi[0].name == "Cancun"
    assert hoodi[0].forks[0] == "Homestead" and hoodi[0].forks[-1] == "Cancun"
    assert hoodi[0].hash == bytes.fromhex("bef71d30")
    assert fork_hashes(CHAINS["sepolia"])[0].name == "London"


def test_head_out_of_range_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError):
        fork_id(CHAINS["mainnet"], -1, 0)
    with pytest.raises(LocalProtocolError):
        validate(CHAINS["mainnet"], 0, 2**64, ForkId(hash=bytes(4), next=0))


# -- classification ---------------------------------------------------------------

EPOCHS = [
    pytest.param(name, i, id=f"{name}-{epoch.name}")
    for name, chain in CHAINS.items()
    for i, epoch in enumerate(fork_hashes(chain))
]


@pytest.mark.parametrize(("name", "index"), EPOCHS)
def test_classify_every_epoch(name: str, index: int) -> None:
    epoch = fork_hashes(CHAINS[name])[index]
    ready = classify(epoch.fork_id)
    assert (ready.network, ready.fork, ready.readiness) == (name, epoch.name, Readiness.READY)
    assert ready.epoch == epoch and ready.known
    assert ready.latest == (epoch.next == 0)

    silent = classify(ForkId(hash=epoch.hash, next=0))
    assert silent.readiness == (Readiness.READY if epoch.next == 0 else Readiness.STALE)
    assert (silent.network, silent.fork) == (name, epoch.name)

    odd = classify(ForkId(hash=epoch.hash, next=epoch.next + 12345))
    assert odd.readiness == Readiness.UNKNOWN_NEXT
    assert (odd.network, odd.fork, odd.announced_next) == (name, epoch.name, epoch.next + 12345)


def test_classify_unknown_hash() -> None:
    # Rinkeby's last Petersburg-era hash from the EIP text: no longer a chain we know.
    got = classify(ForkId(hash=bytes.fromhex("afec6b27"), next=0))
    assert got.readiness == Readiness.UNKNOWN_NETWORK
    assert (got.network, got.fork, got.epoch, got.known) == (None, None, None, False)


def test_classify_with_own_chain_table() -> None:
    private = Chain(
        name="devnet", chain_id=7, network_id=7, genesis_hash=bytes(range(32)),
        forks=(Fork(name="Shanghai", time=0), Fork(name="Cancun", time=100)),
    )
    first = fork_hashes(private)[0]
    got = classify(first.fork_id, chains={"devnet": private})
    assert (got.network, got.fork, got.readiness) == ("devnet", "Shanghai", Readiness.READY)
    assert classify(first.fork_id).readiness == Readiness.UNKNOWN_NETWORK


# -- validation rules (EIP-2124 text; local is mainnet capped at Petersburg) -------

MAX64 = 2**64 - 1
PETERSBURG_MAINNET = dataclasses.replace(
    CHAINS["mainnet"],
    forks=tuple(f for f in CHAINS["mainnet"].forks if not f.by_time and f.at <= 7280000),
)


def _id(hash_hex: str, next_: int) -> ForkId:
    return ForkId(hash=bytes.fromhex(hash_hex), next=next_)


EIP_VALIDATION = [
    (7987396, _id("668db0af", 0), ForkCheck.SAME_FORK),
    (7987396, _id("668db0af", MAX64), ForkCheck.SAME_FORK),
    (7279999, _id("a00bc324", 0), ForkCheck.SAME_FORK),
    (7279999, _id("a00bc324", 7280000), ForkCheck.SAME_FORK),
    (7279999, _id("a00bc324", MAX64), ForkCheck.SAME_FORK),
    (7987396, _id("a00bc324", 7280000), ForkCheck.REMOTE_SYNCING),
    (7987396, _id("3edd5b10", 4370000), ForkCheck.REMOTE_SYNCING),
    (7279999, _id("668db0af", 0), ForkCheck.LOCAL_SYNCING),
    (4369999, _id("a00bc324", 0), ForkCheck.LOCAL_SYNCING),
    (7987396, _id("a00bc324", 0), ForkCheck.REMOTE_STALE),
    (7987396, _id("5cddc0e1", 0), ForkCheck.INCOMPATIBLE),
    (7279999, _id("5cddc0e1", 0), ForkCheck.INCOMPATIBLE),
    (7987396, _id("afec6b27", 0), ForkCheck.INCOMPATIBLE),
    (88888888, _id("668db0af", 88888888), ForkCheck.REMOTE_FORK_PASSED),
    (7279999, _id("a00bc324", 7279999), ForkCheck.REMOTE_FORK_PASSED),
]


@pytest.mark.parametrize(("head", "remote", "want"), EIP_VALIDATION)
def test_eip2124_validation_examples(head: int, remote: ForkId, want: ForkCheck) -> None:
    assert validate(PETERSBURG_MAINNET, head, 0, remote) == want


def test_validation_outcomes_say_whether_to_connect() -> None:
    assert {c for c in ForkCheck if c.ok} == {
        ForkCheck.SAME_FORK, ForkCheck.REMOTE_SYNCING, ForkCheck.LOCAL_SYNCING
    }


def _mainnet(name: str) -> ForkId:
    return next(e for e in fork_hashes(CHAINS["mainnet"]) if e.name == name).fork_id


# Time-based epochs (geth's TestValidation timestamp cases, rebuilt on our data):
# local is mainnet in Cancun unless said otherwise.
CANCUN = (30000000, 1710338135)
TIME_VALIDATION = [
    (CANCUN, _mainnet("Cancun"), ForkCheck.SAME_FORK),
    (CANCUN, ForkId(hash=_mainnet("Cancun").hash, next=0), ForkCheck.SAME_FORK),
    # Remote knows a time fork that already passed for us: incompatible (1a).
    (CANCUN, ForkId(hash=_mainnet("Cancun").hash, next=1710338135), ForkCheck.REMOTE_FORK_PASSED),
    (CANCUN, _mainnet("Shanghai"), ForkCheck.REMOTE_SYNCING),
    (CANCUN, _mainnet("GrayGlacier"), ForkCheck.REMOTE_SYNCING),
    (CANCUN, ForkId(hash=_mainnet("Shanghai").hash, next=0), ForkCheck.REMOTE_STALE),
    (CANCUN, _mainnet("Prague"), ForkCheck.LOCAL_SYNCING),
    (CANCUN, _mainnet("BPO2"), ForkCheck.LOCAL_SYNCING),
    (CANCUN, fork_hashes(CHAINS["sepolia"])[4].fork_id, ForkCheck.INCOMPATIBLE),
    # Local still on block forks: a remote in Shanghai is ahead of us (3).
    ((15050000, 0), _mainnet("Shanghai"), ForkCheck.LOCAL_SYNCING),
]


@pytest.mark.parametrize(("head", "remote", "want"), TIME_VALIDATION)
def test_validation_with_time_forks(head: tuple[int, int], remote: ForkId, want: ForkCheck) -> None:
    assert validate(CHAINS["mainnet"], *head, remote) == want


@pytest.mark.parametrize(("name", "index"), EPOCHS)
def test_each_epoch_accepts_itself(name: str, index: int) -> None:
    chain = CHAINS[name]
    epoch = fork_hashes(chain)[index]
    past_all_blocks = max((f.at for f in chain.forks if not f.by_time), default=0)
    head = (past_all_blocks, epoch.start) if epoch.by_time else (epoch.start, 0)
    assert validate(chain, *head, epoch.fork_id) == ForkCheck.SAME_FORK


# -- the ForkId record and its RLP form (EIP-2124 "Test Cases") ---------------------


@pytest.mark.parametrize(
    ("fid", "rlp_hex"),
    [
        (ForkId(hash=bytes(4), next=0), "c6840000000080"),
        (_id("deadbeef", 0xBADDCAFE), "ca84deadbeef84baddcafe"),
        (_id("ffffffff", MAX64), "ce84ffffffff88ffffffffffffffff"),
    ],
)
def test_rlp_encoding_examples(fid: ForkId, rlp_hex: str) -> None:
    assert encode(fid.to_rlp_item()).hex() == rlp_hex
    assert ForkId.from_rlp_item(decode(bytes.fromhex(rlp_hex))) == fid


def test_bad_fork_id_fields() -> None:
    with pytest.raises(ValueError):
        ForkId(hash=b"abc", next=0)
    with pytest.raises(ValueError):
        ForkId(hash=b"abcd", next=2**64)


@settings(max_examples=200, deadline=None)
@given(hash_=st.binary(min_size=4, max_size=4), next_=st.integers(0, MAX64), extra=st.lists(st.binary(max_size=8), max_size=3))
def test_rlp_round_trip_tolerates_extra_fields(hash_: bytes, next_: int, extra: list[bytes]) -> None:
    fid = ForkId(hash=hash_, next=next_)
    assert ForkId.from_rlp_item(decode(encode(fid.to_rlp_item() + extra))) == fid


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_fork_id_raises_only_wire_errors(data: st.DataObject) -> None:
    good = bytearray(encode(_id("deadbeef", 0xBADDCAFE).to_rlp_item()))
    choice = data.draw(st.sampled_from(["flip", "truncate", "extend", "random"]))
    if choice == "flip":
        i = data.draw(st.integers(0, len(good) - 1))
        good[i] ^= data.draw(st.integers(1, 255))
    elif choice == "truncate":
        del good[data.draw(st.integers(0, len(good) - 1)):]
    elif choice == "extend":
        good += data.draw(st.binary(min_size=1, max_size=8))
    else:
        good = bytearray(data.draw(st.binary(max_size=40)))
    try:
        fid = ForkId.from_rlp_item(decode(bytes(good)))
    except WireError:
        return
    assert len(fid.hash) == 4 and 0 <= fid.next <= MAX64


@settings(max_examples=200, deadline=None)
@given(hash_=st.binary(min_size=4, max_size=4), next_=st.integers(0, MAX64), head=st.integers(0, MAX64), time=st.integers(0, MAX64))
def test_any_remote_id_gets_a_verdict(hash_: bytes, next_: int, head: int, time: int) -> None:
    remote = ForkId(hash=hash_, next=next_)
    assert isinstance(validate(CHAINS["mainnet"], head, time, remote), ForkCheck)
    assert isinstance(classify(remote).readiness, Readiness)
