"""A DNS server on 127.0.0.1 for tests: TXT records served from a dict, with dnslib (a test extra).

It runs in its own thread (dnslib's socketserver), so a test's trio loop and a CLI run in the test process can both
query it.  Texts longer than one character-string (255 bytes) are served as several strings, as zone tooling and
geth's Route53 deploy do; a client must join them.  Every query is counted, to tell how much a sync looked up.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import DNSServer

__all__ = ["TXTServer", "serve_txt", "split_strings"]

MAX_STRING = 255  # bytes in one DNS character-string (RFC 1035 3.3.14)
TTL = 60  # s; irrelevant here: nothing caches


def split_strings(text: str, size: int = MAX_STRING) -> list[bytes]:
    data = text.encode()
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


class _Quiet:
    """dnslib's logger prints every query to stdout; tests want none of it."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class TXTServer:
    """Answers TXT queries for the names of ``records`` (name -> text, or a list of texts for several records at
    one name); any other name is NXDOMAIN.  ``records`` may be changed while serving (to tamper with a tree)."""

    def __init__(self, records: Mapping[str, str | list[str]], *, string_size: int = MAX_STRING) -> None:
        self._lock = threading.Lock()
        self.records: dict[str, str | list[str]] = {}
        self.replace(records)
        self.string_size = string_size
        self.queries: Counter[str] = Counter()
        self._server = DNSServer(self, address="127.0.0.1", port=0, logger=_Quiet())

    def replace(self, records: Mapping[str, str | list[str]]) -> None:
        """Serve ``records`` from now on instead (names are case-insensitive, as in DNS)."""
        with self._lock:
            self.records.clear()
            self.records.update((k.rstrip(".").lower(), v) for k, v in records.items())

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server.server_address[:2]
        return str(host), int(port)

    @property
    def spec(self) -> str:
        """The server as a --dns-server value."""
        return "%s:%d" % self.address

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        with self._lock:
            self.queries[name] += 1
            found = self.records.get(name)
        if found is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for text in [found] if isinstance(found, str) else found:
                strings = TXT(split_strings(text, self.string_size))
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=strings, ttl=TTL))
        return reply

    def start(self) -> None:
        self._server.start_thread()

    def stop(self) -> None:
        self._server.stop()
        self._server.server.server_close()


@contextmanager
def serve_txt(records: Mapping[str, str | list[str]], *, string_size: int = MAX_STRING) -> Iterator[TXTServer]:
    server = TXTServer(records, string_size=string_size)
    server.start()
    try:
        yield server
    finally:
        server.stop()
