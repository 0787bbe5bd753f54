"""The process's open-files limit, raised to fit what it will hold open at once (a devnet's sockets, a crawl's dials).

A socket opened past the soft limit fails with EMFILE, which a devnet would take for a bind failure and a crawl for
a dead node; so the limit is raised before anything opens, as far as the hard limit allows, or the caller refuses
to start in one line.
"""

from __future__ import annotations

import resource

__all__ = ["FD_HEADROOM", "TooFewOpenFiles", "fit_open_files"]

# Descriptors left for the rest of the process beside what the caller counts: the discovery and RLPx sockets, the
# database, the --geoip/--asn files, the metrics server, inbound --listen peers.
FD_HEADROOM = 256


class TooFewOpenFiles(OSError):
    """The hard limit is below what is needed; nothing was changed."""

    def __init__(self, needed: int, hard: int) -> None:
        super().__init__(f"{needed} open files needed; the hard limit is {hard}")
        self.needed = needed
        self.hard = hard


def fit_open_files(count: int) -> int:
    """Raise the soft RLIMIT_NOFILE to fit ``count`` descriptors plus ``FD_HEADROOM``; the number needed.

    TooFewOpenFiles when the hard limit is lower (the limits are left as they were).
    """
    needed = count + FD_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return needed
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise TooFewOpenFiles(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed
