"""Building a frozen message from fields a decoder has already checked.

A decoded message's constructor would repeat checks the decoder just made
(re-encoding an ENR to compare with its bytes, re-decoding every NODES
record); on a crawl's hot path that is a third of the cost.  Decoders that
have checked every field build the object here instead; everyone else goes
through the constructor and its checks.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["construct_unchecked"]

T = TypeVar("T")


def construct_unchecked(cls: type[T], **fields: object) -> T:
    """An instance of the frozen dataclass ``cls`` with ``fields`` set as given, ``__post_init__`` skipped.

    Every field must be given (slotted classes have no class-level defaults to fall back on).
    """
    instance = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(instance, name, value)
    return instance
