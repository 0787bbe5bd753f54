"""The report and the dashboard in a real headless browser (Debian's chromium driven by Playwright): they load with
no console error, their charts render, the node list's filters work, a node page opens, and a hostile client id is
shown as text, never run.  Skipped, with the reason, where chromium or Playwright is missing (.ci/run installs both).

Only 127.0.0.1 and file:// are visited; chromium's own background traffic is switched off by its flags.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ethcrawl.crawler.cli import main
from web_db import HOSTILE_CLIENT_IDS, web_database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
PAGE_TIMEOUT = 20_000  # ms for any one browser action
SERVE_DEADLINE = 30.0  # s for `ethcrawl serve` to start or stop

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'")
if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
    pytest.skip(f"no chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does)", allow_module_level=True)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return web_database(tmp_path_factory.mktemp("browser") / "web.db")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watched:
    """A page, and everything it complained about: console errors, uncaught exceptions, dialogs (alert)."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page()
        self.page.set_default_timeout(PAGE_TIMEOUT)
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    w = Watched(browser)
    yield w
    w.page.close()


@pytest.fixture(scope="module")
def server(url: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "ethcrawl.crawler", "serve", "--db", url, "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stderr is not None
        found = re.search(r"(http://127\.0\.0\.1:\d+)/", process.stderr.readline())
        assert found, "ethcrawl serve did not say where it listens"
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=SERVE_DEADLINE)


def _charts_drawn(page: Any) -> int:
    """How many inline SVG charts have a visible size and drawn paths."""
    return int(page.evaluate(
        """() => [...document.querySelectorAll('.chart svg')].filter(
               s => s.getBoundingClientRect().width > 100 && s.getBoundingClientRect().height > 50
                    && s.querySelectorAll('path').length > 5).length"""
    ))


# The over-time panels drawn from web_db's three crawls (the readiness, share history, churn and uptime charts).
OVER_TIME_CHARTS = ("readiness-clients", "client-history", "churn", "uptime")


def _chart_drawn(page: Any, key: str) -> bool:
    """Whether the panel's chart is an SVG with a visible size and drawn paths."""
    return bool(page.evaluate(
        """key => { const s = document.querySelector(`.chart[data-chart="${key}"] svg`);
                    return !!s && s.getBoundingClientRect().width > 100 && s.getBoundingClientRect().height > 50
                           && s.querySelectorAll('path').length > 5; }""",
        key,
    ))


def test_report_file_opens_offline_with_its_charts(url: str, tmp_path: Path, watched: Watched) -> None:
    out = tmp_path / "report.html"
    assert CliRunner().invoke(main, ["report", "--db", url, "--out", str(out)]).exit_code == 0
    watched.page.goto(out.as_uri())
    assert _charts_drawn(watched.page) >= 10
    assert watched.page.locator("#table-clients tbody tr").count() >= 4
    assert all(_chart_drawn(watched.page, key) for key in OVER_TIME_CHARTS)
    assert watched.page.locator("#table-churn-nodes tbody tr").count() >= 3
    assert watched.errors == [] and watched.dialogs == []
    assert watched.requests == [out.as_uri()]  # the file itself and nothing else


def test_dashboard_overview_renders(server: str, watched: Watched) -> None:
    watched.page.goto(server + "/")
    assert _charts_drawn(watched.page) >= 10
    watched.page.select_option("select[name=crawl]", "1")
    watched.page.click("form.filters button")
    watched.page.wait_for_url(re.compile(r"\?crawl=1$"))
    assert "crawl 1" in watched.page.inner_text("dl.params")
    assert _charts_drawn(watched.page) >= 10
    watched.page.select_option("select[name=crawl]", "")  # back to every crawl: the form sends "crawl="
    watched.page.click("form.filters button")
    watched.page.wait_for_url(re.compile(r"\?crawl=$"))
    assert "every crawl" in watched.page.inner_text("dl.params")
    assert watched.errors == [] and watched.dialogs == []
    assert all(r.startswith(server) for r in watched.requests)


def test_filters_change_the_node_list_and_a_node_page_opens(server: str, watched: Watched) -> None:
    page = watched.page
    page.goto(server + "/nodes?limit=500")
    everyone = page.locator("#nodes tbody tr").count()
    page.fill("input[name=client]", "geth")
    page.click("#filters button")
    page.wait_for_url(re.compile(r"client=geth"))
    geth = page.locator("#nodes tbody tr").count()
    assert 0 < geth < everyone
    assert {t.strip() for t in page.locator("#nodes tbody tr td:nth-child(5)").all_inner_texts()} == {"geth"}
    page.select_option("select[name=layer]", "consensus")
    page.click("#filters button")
    page.wait_for_url(re.compile(r"layer=consensus"))
    assert "no node matches" in page.inner_text("#nodes")
    page.goto(server + "/nodes?client=geth")
    first = page.locator("#nodes tbody tr td a").first
    node_id = first.get_attribute("href").rsplit("/", 1)[1]
    first.click()
    page.wait_for_url(re.compile(node_id))
    assert node_id in page.inner_text("h1")
    assert "geth" in page.inner_text("#node")
    assert watched.errors == [] and watched.dialogs == []


def test_hostile_client_ids_are_shown_as_text(server: str, watched: Watched) -> None:
    page = watched.page
    page.goto(server + "/nodes?outcome=too-many-peers&limit=500")
    shown = set(page.locator("#nodes tbody tr td:nth-child(4)").all_inner_texts())
    assert set(HOSTILE_CLIENT_IDS) <= shown
    assert page.evaluate("() => document.querySelectorAll('script, img').length") == 0
    hostile = page.locator("#nodes tbody tr", has_text=HOSTILE_CLIENT_IDS[0]).locator("a")
    hostile.click()
    page.wait_for_url(re.compile(r"/nodes/[0-9a-f]{64}$"))
    assert HOSTILE_CLIENT_IDS[0] in page.inner_text("#node")
    assert HOSTILE_CLIENT_IDS[0] in page.inner_text("#table-dials") and HOSTILE_CLIENT_IDS[0] in page.inner_text("#table-clients")
    assert watched.dialogs == [] and watched.errors == []


def test_over_time_charts_render_and_a_node_page_shows_its_history(server: str, watched: Watched) -> None:
    page = watched.page
    page.goto(server + "/#over-time")
    assert [key for key in OVER_TIME_CHARTS if not _chart_drawn(page, key)] == []
    assert page.locator("#over-time h3").count() == 5
    page.goto(server + "/nodes?client=geth")
    page.locator("#nodes tbody tr td a").first.click()
    page.wait_for_url(re.compile(r"/nodes/[0-9a-f]{64}$"))
    history = page.locator("#history")
    assert history.is_visible()
    assert page.locator("#table-sightings tbody tr").count() >= 1 and "no rows" not in page.inner_text("#table-sightings")
    assert "geth" in page.inner_text("#table-dials")
    story = page.locator("#history a", has_text="/story")
    story.click()
    page.wait_for_url(re.compile(r"/story$"))
    assert '"sightings"' in page.inner_text("body")
    assert watched.errors == [] and watched.dialogs == []
    assert all(r.startswith(server) for r in watched.requests)
