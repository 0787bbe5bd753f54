"""RLPx + p2p + eth/68 Status against @ethereumjs/devp2p 10.0.0, an independent implementation, on 127.0.0.1.

Our side is the sans-I/O stack (RLPxConnection under PeerSession) over a minimal trio transport; theirs is
tests/interop/js/rlpx_peer.mjs (listener) or rlpx_dial.mjs (initiator), which report what the library saw as
JSON events. What each test relies on about ethereumjs is in fixtures/INTEROP.md and was re-checked here:
EIP-8 handshake, a capability shared only on an exact version match (eth/62..68), a Status mismatch answered
with Disconnect 0x10, no shared capability answered with 0x03.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from ethcrawl.wire.crypto import generate_private_key, keccak256, pubkey_from_private
from ethcrawl.wire.eth import Status, Status66
from ethcrawl.wire.forkid import ForkId
from ethcrawl.wire.p2p import Capability, DisconnectReason, Hello
from ethcrawl.wire.rlpx.connection import RLPxConnection
from ethcrawl.wire.rlpx.session import (
    DisconnectReceived,
    HandshakeCompleted,
    HelloReceived,
    PeerSession,
    PongReceived,
    StatusReceived,
)

from js_process import JsLauncher, JsProcess
from rlpx_transport import SessionStream

pytestmark = pytest.mark.interop

TEST_DEADLINE = 20.0  # s per test: each takes 1-3 s; ethereumjs's own idle timers fire at 5-10 s
LOOPBACK = "127.0.0.1"
JS_CLIENT_ID = "ethereumjs-interop/v10.0.0/test"
OUR_CLIENT_ID = "ethcrawl/v0.1.0-interop/linux-amd64/py3.11"
MAINNET_GENESIS = bytes.fromhex("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8f0db1cb8fa3")
MAINNET_PRAGUE = ForkId(hash=bytes.fromhex("c376cf8b"), next=0)  # what @ethereumjs/common 10.0.0 announces
# Mainnet's terminal total difficulty: above 2**53, so a JS Number could not carry it unnoticed.
MAINNET_TTD = 58750003716598352816469
ETH68 = Capability(name="eth", version=68)


def our_hello(key: Any, *capabilities: Capability) -> Hello:
    return Hello(
        protocol_version=5,
        client_id=OUR_CLIENT_ID,
        capabilities=capabilities or (ETH68,),
        listen_port=0,
        node_pubkey=pubkey_from_private(key),
    )


def status_as_js(status: Status) -> dict[str, Any]:
    """Our Status in the JSON shape the JS scripts print (integers above 2**53 as decimal strings)."""
    assert isinstance(status, Status66), f"ethereumjs speaks eth/68 at most, got {status!r}"
    return {
        "version": status.version,
        "network_id": status.network_id,
        "td": str(status.td),
        "best_hash": "0x" + status.head.hex(),
        "genesis_hash": "0x" + status.genesis.hex(),
        "fork_id": {"hash": "0x" + status.fork_id.hash.hex(), "next": status.fork_id.next},
    }


def mirrored_status(theirs: Status, *, genesis: bytes | None = None) -> Status66:
    """Their network, genesis and fork id (or another genesis), with a head and td of our own."""
    return Status66(
        version=68,
        network_id=theirs.network_id,
        td=MAINNET_TTD,
        head=keccak256(b"ethcrawl interop head"),
        genesis=theirs.genesis if genesis is None else genesis,
        fork_id=theirs.fork_id,
    )


async def start_listener(js_peer: JsProcess) -> tuple[bytes, int]:
    listening = await js_peer.wait_for("listening")
    pubkey = bytes.fromhex(listening["pubkey"])
    assert listening["enode"] == f"enode://{pubkey.hex()}@{LOOPBACK}:{listening['port']}"
    return pubkey, int(listening["port"])


async def dial(port: int, remote_pubkey: bytes, hello_caps: tuple[Capability, ...] = ()) -> SessionStream:
    """Our initiator: TCP to the JS listener, EIP-8 auth sent at once."""
    key = generate_private_key()
    stream = await trio.open_tcp_stream(LOOPBACK, port)
    connection = RLPxConnection.initiator(key, remote_pubkey, eip8=True)
    io = SessionStream(PeerSession(connection, hello=our_hello(key, *hello_caps)), stream)
    await io.flush()
    return io


async def test_our_initiator_against_ethereumjs_listener(js: JsLauncher) -> None:
    with trio.fail_after(TEST_DEADLINE):
        async with js("rlpx_peer.mjs", "--client-id", JS_CLIENT_ID, "--max-seconds", "20") as peer:
            remote_pubkey, port = await start_listener(peer)
            io = await dial(port, remote_pubkey)

            completed = await io.wait_for(HandshakeCompleted)
            assert completed.remote_pubkey == remote_pubkey

            hello = await io.wait_for(HelloReceived)
            assert hello.hello.client_id == JS_CLIENT_ID
            assert hello.hello.node_pubkey == remote_pubkey
            assert hello.hello.protocol_version == 5
            assert [(c.name, c.version) for c in hello.hello.capabilities] == [("eth", 68)]
            assert [(c.name, c.version) for c in hello.shared] == [("eth", 68)]
            assert io.session.eth_version == 68

            # ethereumjs sends its Status as soon as the Hellos are exchanged.
            theirs = (await io.wait_for(StatusReceived)).status
            sent_by_them = (await peer.wait_for("status_sent"))["status"]
            assert status_as_js(theirs) == sent_by_them
            assert (theirs.version, theirs.network_id) == (68, 1)
            assert (theirs.genesis, theirs.fork_id) == (MAINNET_GENESIS, MAINNET_PRAGUE)

            ours = mirrored_status(theirs)
            io.session.send_status(ours)
            await io.flush()
            # ethereumjs reports a peer's Status only after checking network, genesis and fork id against its own.
            assert (await peer.wait_for("status"))["status"] == status_as_js(ours)

            io.session.send_ping()
            await io.flush()
            await io.wait_for(PongReceived)
            await peer.wait_for("ping")

            io.session.send_disconnect(DisconnectReason.CLIENT_QUITTING)
            await io.flush()
            reported = await peer.wait_for("disconnect", by="remote")
            assert reported["reason"] == 0x08
            assert not peer.events_named("error")
            await io.aclose()


async def test_ethereumjs_initiator_against_our_recipient(js: JsLauncher) -> None:
    key = generate_private_key()
    pubkey = pubkey_from_private(key)
    with trio.fail_after(TEST_DEADLINE):
        listeners = await trio.open_tcp_listeners(0, host=LOOPBACK)
        port = listeners[0].socket.getsockname()[1]
        enode = f"enode://{pubkey.hex()}@{LOOPBACK}:{port}"
        async with js(
            "rlpx_dial.mjs", "--enode", enode, "--client-id", JS_CLIENT_ID,
            "--hold-seconds", "0.5", "--disconnect-reason", "4", "--max-seconds", "15",
        ) as dialer:
            their_pubkey = bytes.fromhex((await dialer.wait_for("dialing"))["pubkey"])
            stream = await listeners[0].accept()
            io = SessionStream(PeerSession(RLPxConnection.recipient(key), hello=our_hello(key)), stream)

            completed = await io.wait_for(HandshakeCompleted)
            assert completed.remote_pubkey == their_pubkey
            hello = await io.wait_for(HelloReceived)
            assert hello.hello.client_id == JS_CLIENT_ID
            assert hello.hello.node_pubkey == their_pubkey
            assert [(c.name, c.version) for c in hello.shared] == [("eth", 68)]

            theirs = (await io.wait_for(StatusReceived)).status
            assert status_as_js(theirs) == (await dialer.wait_for("status_sent"))["status"]
            ours = mirrored_status(theirs)
            io.session.send_status(ours)
            await io.flush()

            # What the library recorded about us: our Hello as sent, then our Status after validating it.
            seen_hello = await dialer.wait_for("hello")
            assert seen_hello["client_id"] == OUR_CLIENT_ID
            assert seen_hello["caps"] == ["eth/68"]
            assert seen_hello["protocol_version"] == 5
            assert seen_hello["node_id"] == pubkey.hex()
            assert (await dialer.wait_for("status"))["status"] == status_as_js(ours)

            # It holds the connection for --hold-seconds, then leaves with the reason it was given.
            goodbye = await io.wait_for(DisconnectReceived)
            assert int(goodbye.reason) == 0x04
            assert not dialer.events_named("error")
            await io.aclose()
        for listener in listeners:
            await listener.aclose()


async def test_status_with_another_genesis_gets_subprotocol_error(js: JsLauncher) -> None:
    with trio.fail_after(TEST_DEADLINE):
        async with js("rlpx_peer.mjs", "--client-id", JS_CLIENT_ID, "--max-seconds", "20") as peer:
            remote_pubkey, port = await start_listener(peer)
            io = await dial(port, remote_pubkey)
            theirs = (await io.wait_for(StatusReceived)).status
            io.session.send_status(mirrored_status(theirs, genesis=keccak256(b"not mainnet's genesis")))
            await io.flush()

            disconnect = await io.wait_for(DisconnectReceived)
            assert int(disconnect.reason) == 0x10
            assert DisconnectReason(0x10) is DisconnectReason.SUBPROTOCOL_ERROR
            assert (await peer.wait_for("disconnect", by="local"))["reason"] == 0x10
            assert "Genesis block mismatch" in (await peer.wait_for("error"))["message"]
            assert not peer.events_named("status")
            await io.aclose()


async def test_hello_with_only_eth66_is_useless_to_ethereumjs(js: JsLauncher) -> None:
    with trio.fail_after(TEST_DEADLINE):
        async with js("rlpx_peer.mjs", "--client-id", JS_CLIENT_ID, "--max-seconds", "20") as peer:
            remote_pubkey, port = await start_listener(peer)
            io = await dial(port, remote_pubkey, (Capability(name="eth", version=66),))

            hello = await io.wait_for(HelloReceived)
            assert hello.hello.client_id == JS_CLIENT_ID
            assert hello.shared == ()
            assert io.session.eth_version is None
            disconnect = await io.wait_for(DisconnectReceived)
            assert int(disconnect.reason) == 0x03

            reported = await peer.wait_for("hello")
            assert reported["caps"] == ["eth/66"]
            assert (await peer.wait_for("disconnect", by="local"))["reason"] == 0x03
            assert not peer.events_named("status")
            await io.aclose()


async def test_harness_two_ethereumjs_nodes(js: JsLauncher) -> None:
    """The JS side alone (listener + dialer): when a test above fails, this tells harness from stack."""
    with trio.fail_after(TEST_DEADLINE):
        async with js("rlpx_peer.mjs", "--client-id", JS_CLIENT_ID, "--max-seconds", "20") as peer:
            remote_pubkey, port = await start_listener(peer)
            async with js(
                "rlpx_dial.mjs", "--enode", f"enode://{remote_pubkey.hex()}@{LOOPBACK}:{port}",
                "--client-id", "dialer", "--hold-seconds", "0", "--max-seconds", "15",
            ) as dialer:
                assert (await dialer.wait_for("hello"))["client_id"] == JS_CLIENT_ID
                assert (await dialer.wait_for("status"))["status"]["network_id"] == 1
                assert (await dialer.wait_for("disconnect", by="local"))["reason"] == 0x08
                assert await dialer.wait_exit(timeout=5) == 0
            assert (await peer.wait_for("hello"))["client_id"] == "dialer"
            assert (await peer.wait_for("disconnect", by="remote"))["reason"] == 0x08
