"""Fork identifiers (EIP-2124)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MalformedMessage
from .rlpcodec import Item, as_bytes, as_list, as_uint, encode_uint

__all__ = ["ForkId"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ForkId:
    """``[fork_hash, fork_next]``: CRC32 of genesis hash and past forks, next fork point."""

    hash: bytes
    next: int

    def __post_init__(self) -> None:
        if len(self.hash) != 4:
            raise ValueError(f"fork hash must be 4 bytes, got {len(self.hash)}")
        if not 0 <= self.next < 2**64:
            raise ValueError(f"fork next {self.next} out of uint64 range")

    def to_rlp_item(self) -> list[bytes]:
        return [self.hash, encode_uint(self.next)]

    @classmethod
    def from_rlp_item(cls, item: Item) -> "ForkId":
        """Decode ``[hash, next]``; extra trailing elements are tolerated (EIP-8 style)."""
        fields = as_list(item, "forkid", min_len=2)
        fork_hash = as_bytes(fields[0], "forkid.hash", length=4)
        try:
            return cls(hash=fork_hash, next=as_uint(fields[1], "forkid.next"))
        except ValueError as exc:  # pragma: no cover - as_uint already bounds it
            raise MalformedMessage(str(exc)) from exc
