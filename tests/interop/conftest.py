"""Interop harness: independent implementations from npm, run as subprocesses on 127.0.0.1.

Rules for this folder (on top of ../conftest.py's):

1. No node/npm on the machine -> every interop test is skipped with a reason naming what is missing.
   Node present but the npm registry unreachable -> the tests FAIL with a clear message: a silent skip
   would hide that interop was never checked.
2. ``npm ci`` runs at most once per session, only when node_modules is absent or was installed from
   another package-lock.json (a stamp file in node_modules records the lock file's hash).
3. A JS process is started only through ``js`` (an async context manager) and is killed when its block
   ends, whatever happened. It speaks one JSON object per stdout line, with an ``event`` field.
4. Every wait has a deadline; on a timeout the failure shows the events seen so far and the stderr tail.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
from js_process import JsLauncher, JsProcess, collect_stderr, read_events, stop_process

INTEROP_DIR = Path(__file__).resolve().parent
JS_DIR = INTEROP_DIR / "js"
LOCK_FILE = INTEROP_DIR / "package-lock.json"
STAMP_FILE = INTEROP_DIR / "node_modules" / ".ethcrawl-lock-sha256"
NPM_INSTALL_TIMEOUT = 300  # s: a cold install from the registry; a warm one takes ~1 s
EVENT_BUFFER = 256  # events a JS process may get ahead of the test (they emit a dozen per connection)
STDERR_TAIL = 2000  # characters of a JS process's stderr shown in a failure message


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeTools:
    """Where node and npm are, once the interop packages are installed."""

    node: str
    npm: str


def _lock_digest() -> str:
    digest = hashlib.sha256(LOCK_FILE.read_bytes())
    digest.update((INTEROP_DIR / "package.json").read_bytes())
    return digest.hexdigest()


def _install_packages(npm: str) -> None:
    has_lock = LOCK_FILE.exists()
    want = _lock_digest() if has_lock else None
    if want is not None and STAMP_FILE.exists() and STAMP_FILE.read_text().strip() == want:
        return
    command = [npm, "ci" if has_lock else "install", "--no-audit", "--no-fund"]
    try:
        done = subprocess.run(
            command,
            cwd=INTEROP_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_INSTALL_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"`{' '.join(command)}` in {INTEROP_DIR} took over {NPM_INSTALL_TIMEOUT} s: "
            "is the npm registry reachable?",
            pytrace=False,
        )
    if done.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` in {INTEROP_DIR} failed (exit {done.returncode}); the interop tests "
            "need the npm registry once to install @ethereumjs/devp2p and @chainsafe/discv5.\n"
            f"{done.stderr[-STDERR_TAIL:]}",
            pytrace=False,
        )
    if has_lock:
        STAMP_FILE.write_text(_lock_digest() + "\n")


@pytest.fixture(scope="session")
def node_tools() -> NodeTools:
    node = shutil.which("node")
    npm = shutil.which("npm")
    missing = [name for name, path in (("node", node), ("npm", npm)) if path is None]
    if node is None or npm is None:
        pytest.skip(f"interop tests need Node.js: {' and '.join(missing)} not found on PATH")
    _install_packages(npm)
    return NodeTools(node=node, npm=npm)


@pytest.fixture
def js(node_tools: NodeTools) -> JsLauncher:
    """``async with js("rlpx_peer.mjs", "--client-id", "x") as peer:`` runs tests/interop/js/<script>."""

    @asynccontextmanager
    async def launch(script: str, *args: str) -> AsyncIterator[JsProcess]:
        path = JS_DIR / script
        if not path.exists():
            pytest.fail(f"no such interop script: {path}", pytrace=False)
        # DEBUG from the caller's environment would make the library log to stderr at length.
        env = {key: value for key, value in os.environ.items() if key != "DEBUG"}
        process = await trio.lowlevel.open_process(
            [node_tools.node, str(path), *args],
            cwd=INTEROP_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        send, receive = trio.open_memory_channel[dict[str, Any]](EVENT_BUFFER)
        running = JsProcess(name=script, process=process, _events=receive)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_events, process.stdout, send)
                nursery.start_soon(collect_stderr, process.stderr, running.stderr)
                try:
                    yield running
                finally:
                    with trio.CancelScope(shield=True):
                        await stop_process(process)
                    nursery.cancel_scope.cancel()
        finally:
            if process.returncode is None:
                process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
                for pipe in (process.stdin, process.stdout, process.stderr):
                    if pipe is not None:
                        await pipe.aclose()

    return launch


from typing import TYPE_CHECKING  # noqa: E402 (appended: the discv5 fixture below)

if TYPE_CHECKING:
    from discv5_network import ChainsafeDiscv5


@pytest.fixture
def chainsafe_discv5(js: JsLauncher) -> "ChainsafeDiscv5":
    """@chainsafe/discv5 11.0.0 on 127.0.0.1 (see discv5_network.py): ``async with
    chainsafe_discv5.network(20) as net:`` and ``await chainsafe_discv5.client(enr, requests=[[0]])``."""
    # Imported here so that this file's other fixtures do not depend on the discv5 helper.
    from discv5_network import ChainsafeDiscv5

    return ChainsafeDiscv5(js)
