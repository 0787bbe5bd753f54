"""Whether this machine can run the IPv6 loopback tests: the skip marker they share, with its reason."""

from __future__ import annotations

import socket

import pytest

__all__ = ["NO_IPV6", "needs_ipv6"]


def _why_no_ipv6_loopback() -> str | None:
    """Why IPv6 loopback cannot be used here, or None when it can."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        return f"no IPv6 loopback on this machine: cannot bind [::1]: {exc.strerror}"
    return None


NO_IPV6 = _why_no_ipv6_loopback()
needs_ipv6 = pytest.mark.skipif(NO_IPV6 is not None, reason=NO_IPV6 or "")
