"""A JS interop script as a trio subprocess: its JSON-line events, with deadlines and diagnostics."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pytest
import trio

EVENT_TIMEOUT = 10.0  # s: default wait for one JS event; the library's own timers are 5-10 s
STOP_GRACE = 2.0  # s: after stdin closes the scripts exit within ~0.2 s; then we kill
STDERR_TAIL = 2000  # characters of a JS process's stderr shown in a failure message


@dataclass(eq=False, kw_only=True)
class JsProcess:
    """A running JS script: its events as they arrive, and everything it reported so far."""

    name: str
    process: trio.Process
    _events: trio.MemoryReceiveChannel[dict[str, Any]]
    seen: list[dict[str, Any]] = field(default_factory=list)
    stderr: bytearray = field(default_factory=bytearray)
    _claimed: set[int] = field(default_factory=set)

    async def next_event(self, timeout: float = EVENT_TIMEOUT) -> dict[str, Any] | None:
        """The next event from the process, or None once it has exited and every event was read."""
        with trio.move_on_after(timeout):
            try:
                event = await self._events.receive()
            except trio.EndOfChannel:
                return None
            self.seen.append(event)
            return event
        self.fail(f"no event within {timeout} s")

    async def wait_for(
        self, name: str, timeout: float = EVENT_TIMEOUT, **match: Any
    ) -> dict[str, Any]:
        """The earliest event called ``name`` whose fields equal ``match`` and that no earlier
        ``wait_for`` returned; events read meanwhile stay in ``seen``, so the order of waits is free."""
        for index, event in enumerate(self.seen):
            if index not in self._claimed and _matches(event, name, match):
                self._claimed.add(index)
                return event
        with trio.move_on_after(timeout):
            while True:
                arrived = await self.next_event(timeout=timeout + 1)
                if arrived is None:
                    self.fail(f"exited (rc={self.process.returncode}) before event {name!r} {match}")
                if _matches(arrived, name, match):
                    self._claimed.add(len(self.seen) - 1)
                    return arrived
        self.fail(f"no event {name!r} {match} within {timeout} s")

    def events_named(self, name: str) -> list[dict[str, Any]]:
        return [event for event in self.seen if event["event"] == name]

    async def drain(self, timeout: float) -> None:
        """Reads events until the process exits or ``timeout`` passes, whichever is first."""
        with trio.move_on_after(timeout):
            while await self.next_event(timeout=timeout + 1) is not None:
                pass

    async def wait_exit(self, timeout: float = EVENT_TIMEOUT) -> int:
        """Reads the remaining events and returns the exit status once the process has gone."""
        with trio.move_on_after(timeout):
            await self.drain(timeout)
            # stdout can reach EOF a moment before the process is reaped.
            return await self.process.wait()
        self.fail(f"still running after {timeout} s")

    def fail(self, what: str) -> NoReturn:
        seen = "\n  ".join(json.dumps(event)[:300] for event in self.seen) or "(none)"
        tail = self.stderr.decode(errors="replace")[-STDERR_TAIL:] or "(empty)"
        pytest.fail(f"{self.name}: {what}\nevents seen:\n  {seen}\nstderr:\n{tail}", pytrace=False)


def _matches(event: dict[str, Any], name: str, match: dict[str, Any]) -> bool:
    return event["event"] == name and all(event.get(key) == value for key, value in match.items())


async def read_events(
    stream: trio.abc.ReceiveStream, sink: trio.MemorySendChannel[dict[str, Any]]
) -> None:
    buffer = bytearray()
    async with sink:
        async for chunk in stream:
            buffer += chunk
            while (end := buffer.find(b"\n")) >= 0:
                line = bytes(buffer[:end]).strip()
                del buffer[: end + 1]
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    event = {"event": "garbage", "line": line.decode(errors="replace")}
                if not isinstance(event, dict) or "event" not in event:
                    event = {"event": "garbage", "line": line.decode(errors="replace")}
                await sink.send(event)


async def collect_stderr(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    async for chunk in stream:
        into += chunk


JsLauncher = Callable[..., AbstractAsyncContextManager["JsProcess"]]
"""``js(script, *args)``: an async context manager running tests/interop/js/<script>."""


async def stop_process(process: trio.Process) -> None:
    """Asks politely (stdin closed: the scripts exit on EOF), then kills after STOP_GRACE."""
    if process.stdin is not None:
        try:
            await process.stdin.aclose()
        except trio.BrokenResourceError:
            pass
    with trio.move_on_after(STOP_GRACE):
        await process.wait()
    if process.returncode is None:
        process.kill()
        with trio.move_on_after(STOP_GRACE):
            await process.wait()
