"""What a devnet node says over RLPx: its chain's head, the eth Status, the head header.

Shared by the devnet's listening nodes (``devnet.DevnetNode``) and its NAT'd
nodes that dial out (``devnet_dirt``): after Hello, either side of the
connection talks the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from ethcrawl.wire import rlpcodec
from ethcrawl.wire.chains import CHAINS, Chain
from ethcrawl.wire.crypto import keccak256
from ethcrawl.wire.eth import BlockHeader, BlockHeaders, GetBlockHeaders, Status, Status66, Status69
from ethcrawl.wire.forkid import ForkId, fork_id
from ethcrawl.wire.p2p import DisconnectReason
from ethcrawl.wire.rlpx import session as rlpx_session

from .session_stream import SessionStream

__all__ = ["BLOCK_TIME", "HEAD_BLOCKS", "TOTAL_DIFFICULTY", "ChainHead", "chain_head", "converse"]

# Head block per network for the Status and the header we serve (mid-2025 heights).
HEAD_BLOCKS = {"mainnet": 22_800_000, "sepolia": 8_700_000, "holesky": 4_100_000, "hoodi": 800_000}
# Status66 carries the total difficulty: the chains' terminal total difficulty since the merge.
TOTAL_DIFFICULTY = {
    "mainnet": 58_750_003_716_598_352_816_469,
    "sepolia": 17_000_018_015_853_232,
    "holesky": 1,
    "hoodi": 0,
}
BLOCK_TIME = 12  # s, the head header is this old

_ENDS = (rlpx_session.DisconnectReceived, rlpx_session.ConnectionClosed)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """What a synced node of one chain announces: Status fields and its head header."""

    chain: Chain
    header: BlockHeader
    td: int

    @property
    def fork_id(self) -> ForkId:
        return fork_id(self.chain, self.header.number, self.header.timestamp)

    def status(self, eth_version: int) -> Status:
        fid = self.fork_id
        if eth_version >= 69:
            return Status69(
                version=eth_version, network_id=self.chain.network_id, genesis=self.chain.genesis_hash,
                fork_id=fid, earliest_block=0, latest_block=self.header.number, latest_hash=self.header.hash,
            )
        return Status66(
            version=eth_version, network_id=self.chain.network_id, td=self.td, head=self.header.hash,
            genesis=self.chain.genesis_hash, fork_id=fid,
        )

    def headers(self, request: GetBlockHeaders) -> tuple[BlockHeader, ...]:
        head = self.header
        if request.amount >= 1 and request.origin in (head.hash, head.number):
            return (head,)
        return ()  # we hold only the head; a real node answers an unknown block the same way


def chain_head(name: str, now: float) -> ChainHead:
    chain = CHAINS[name]
    number = HEAD_BLOCKS.get(name, 1_000_000)
    # A header with the fields crawlers read (number, time) and the post-London layout.
    parent = keccak256(chain.genesis_hash + number.to_bytes(8, "big"))
    fields: list[object] = [parent, *([b"\x00" * 32] * 7)]
    fields += [number, 30_000_000, 15_000_000, int(now) - BLOCK_TIME, b"", b"\x00" * 32, b"\x00" * 8, 7]
    header = BlockHeader.from_rlp_item(rlpcodec.decode(rlpcodec.encode(fields)))
    return ChainHead(chain=chain, header=header, td=TOTAL_DIFFICULTY.get(name, 0))


async def converse(
    pump: SessionStream, head: ChainHead, *, too_many_peers: bool = False, status_delay: float = 0.0
) -> None:
    """Our side of one RLPx session after the handshake: Hello, Status, header answers, until the peer leaves."""
    session = pump.session
    while True:  # until the peer's Hello
        event = await pump.next_event()
        if isinstance(event, _ENDS):
            return
        if isinstance(event, rlpx_session.HelloReceived):
            break
    if too_many_peers:
        session.send_disconnect(DisconnectReason.TOO_MANY_PEERS)
        await pump.flush()
        return
    version = session.eth_version
    if version is not None:
        if status_delay:
            await trio.sleep(status_delay)
        session.send_status(head.status(version))
    # Serve until the peer leaves: header requests answered, the rest ignored.
    while True:
        event = await pump.next_event()
        if isinstance(event, _ENDS):
            return
        if isinstance(event, rlpx_session.EthMessageReceived) and isinstance(event.msg, GetBlockHeaders):
            session.send_eth(BlockHeaders(request_id=event.msg.request_id, headers=head.headers(event.msg)))
