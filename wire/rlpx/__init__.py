"""RLPx, the encrypted TCP transport of devp2p, sans-I/O.

``ecies`` (handshake encryption), ``handshake`` (auth/ack, secrets), ``frame``
(the encrypted, MACed frame stream) and ``connection`` (both combined behind an
h11-shaped ``RLPxConnection``).  The p2p/eth session on top lives beside them.
"""

from __future__ import annotations

from .connection import ConnectionClosed, ConnectionState, FrameReceived, HandshakeCompleted, RLPxConnection
from .frame import FrameCodec
from .handshake import Initiator, Recipient, Secrets

__all__ = [
    "RLPxConnection",
    "ConnectionState",
    "HandshakeCompleted",
    "FrameReceived",
    "ConnectionClosed",
    "FrameCodec",
    "Initiator",
    "Recipient",
    "Secrets",
]
