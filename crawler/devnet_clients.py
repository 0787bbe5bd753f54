"""Realistic Hello client ids for devnet nodes: a weighted mix of clients, versions and platforms.

The strings follow the formats the real clients send (see ``wire/clientid.py``
for the variations).  Weights are rough shares of the mainnet execution layer
as public crawlers reported them in 2024-2025: geth about 45 %, nethermind 25 %,
erigon 10 %, besu 8 %, reth 8 %, the rest small.  Built in code, not read from
../shared: the product never depends on the test data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ethcrawl.wire.p2p import Capability

__all__ = ["CLIENT_PROFILES", "ETH68", "ETH68_69", "NIMBUS", "ClientProfile", "choose_client"]

ETH68 = (Capability(name="eth", version=68), Capability(name="snap", version=1))
ETH68_69 = (Capability(name="eth", version=68), Capability(name="eth", version=69), Capability(name="snap", version=1))


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientProfile:
    """One client implementation: the name ``parse_client_id`` must find, and ids it sends."""

    name: str
    weight: int  # percent of nodes
    ids: tuple[str, ...]
    capabilities: tuple[Capability, ...] = ETH68
    # Ids from releases that also speak eth/69 (geth 1.16, reth 1.4 and later).
    eth69_ids: tuple[str, ...] = ()


CLIENT_PROFILES: tuple[ClientProfile, ...] = (
    ClientProfile(
        name="geth",
        weight=45,
        ids=(
            "Geth/v1.14.11-stable-f3c696fa/linux-amd64/go1.23.2",
            "Geth/v1.14.12-stable-293a300d/linux-amd64/go1.23.4",
            "Geth/v1.14.13-stable-eb00f169/linux-arm64/go1.23.4",
            "Geth/v1.15.5-stable-4263936a/linux-amd64/go1.24.1",
            "Geth/v1.15.11-stable-36b2371c/linux-amd64/go1.24.2",
            "Geth/v1.15.11-stable-36b2371c/darwin-arm64/go1.24.2",
            "Geth/mainnet-node-3/v1.14.12-stable-293a300d/linux-amd64/go1.23.4",
            "Geth/v1.14.11-stable-f3c696fa/windows-amd64/go1.23.2",
        ),
        eth69_ids=(
            "Geth/v1.16.1-stable-12b4131f/linux-amd64/go1.24.4",
            "Geth/v1.16.3-stable-d818a9af/linux-arm64/go1.24.6",
        ),
    ),
    ClientProfile(
        name="nethermind",
        weight=25,
        ids=(
            "Nethermind/v1.29.1+dfea5240/linux-x64/dotnet8.0.11",
            "Nethermind/v1.30.3+87c86379/linux-x64/dotnet9.0.0",
            "Nethermind/v1.31.10+ebbe7f6e/linux-x64/dotnet9.0.2",
            "Nethermind/v1.31.10+ebbe7f6e/linux-arm64/dotnet9.0.2",
            "Nethermind/v1.30.3+87c86379/windows-x64/dotnet9.0.0",
        ),
    ),
    ClientProfile(
        name="erigon",
        weight=10,
        ids=(
            "erigon/v2.60.10-125509e4/linux-amd64/go1.22.9",
            "erigon/v3.0.0-a3b3f4ac/linux-amd64/go1.23.6",
            "erigon/v3.0.4-7d3a2b1c/linux-arm64/go1.23.8",
            "erigon/v3.0.0-a3b3f4ac/darwin-arm64/go1.23.6",
        ),
    ),
    ClientProfile(
        name="besu",
        weight=8,
        ids=(
            "besu/v24.10.0/linux-x86_64/openjdk-java-21",
            "besu/v24.12.2/linux-x86_64/openjdk-java-21",
            "besu/v25.1.0/linux-aarch64/openjdk-java-21",
            "besu/v25.4.1/linux-x86_64/openjdk-java-21",
        ),
    ),
    ClientProfile(
        name="reth",
        weight=8,
        ids=(
            "reth/v1.1.4-15c230ba/x86_64-unknown-linux-gnu",
            "reth/v1.2.0-1e6da7c/x86_64-unknown-linux-gnu",
            "reth/v1.2.0-1e6da7c/aarch64-apple-darwin",
            "reth/v1.3.12-6f8e7258/aarch64-unknown-linux-gnu",
        ),
        eth69_ids=("reth/v1.5.0-61e38f9a/x86_64-unknown-linux-gnu",),
    ),
    ClientProfile(
        name="nimbus-eth1",
        weight=2,
        ids=(
            "nimbus-eth1 v0.1.0 [linux: amd64, rocksdb, nimvm, 6a5b6ae6]",
            "nimbus-eth1 v0.1.0 [linux: arm64, rocksdb, nimvm, 9c4e2d11]",
        ),
    ),
    ClientProfile(
        name="ethereumjs",
        weight=2,
        ids=("EthereumJS/0.6.0/linux/node22.11.0", "EthereumJS/0.6.1/darwin/node20.18.1"),
    ),
)

#: nimbus-eth1 speaks no EIP-868: the devnet's "no ENR request" nodes use its ids.
NIMBUS = next(p for p in CLIENT_PROFILES if p.name == "nimbus-eth1")


def choose_client(rng: random.Random, profile: ClientProfile | None = None) -> tuple[ClientProfile, str, tuple[Capability, ...]]:
    """A profile (by weight unless given), one of its ids, and the capabilities that release offers."""
    if profile is None:
        profile = rng.choices(CLIENT_PROFILES, weights=[p.weight for p in CLIENT_PROFILES])[0]
    ids = profile.ids + profile.eth69_ids
    client_id = ids[rng.randrange(len(ids))]
    caps = ETH68_69 if client_id in profile.eth69_ids else profile.capabilities
    return profile, client_id, caps
