"""In a real browser, the Locust web UI starts and stops the runs headless does."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import LOCUSTFILES, LocustRun, clean_env, free_port, start_locust
from test_headless import SMALL_WORKLOAD

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

from playwright import sync_api  # noqa: E402

expect = sync_api.expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MIX = LOCUSTFILES / "mix.py"
EMULATOR_LINE = re.compile(r"started the HyperFaaS leaf emulator at (127\.0\.0\.1:\d+)")
RUN_END_LINE = re.compile(
    r"Run (\S+) (finished|stopped|failed): (\d+) calls, (\d+) dropped"
)
STARTUP_SEC = 20.0
RUN_END_MS = 20_000

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class RunEnd:
    """A run as the plugin's last log line about it reports it."""

    run_id: str
    status: str
    calls: int
    dropped: int


@dataclass
class WebLocust:
    """A Locust process serving its web UI on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    log: Path
    results: Path
    url: str = ""
    emulator_address: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + STARTUP_SEC
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            found = EMULATOR_LINE.search(self.output())
            if found and _answers(self.url):
                self.emulator_address = found[1]
                return
            time.sleep(0.1)
        pytest.fail(f"Locust did not serve {self.url}:\n{self.output()}")

    def rows(self) -> list[dict[str, str]]:
        return LocustRun(0, "", self.results).rows()

    def run_ends(self, count: int, timeout: float = 15.0) -> list[RunEnd]:
        """The first ``count`` runs that ended, waiting for their files to close."""
        deadline = time.monotonic() + timeout
        while True:
            ends = [
                RunEnd(m[1], m[2], int(m[3]), int(m[4]))
                for m in RUN_END_LINE.finditer(self.output())
            ]
            if len(ends) >= count:
                return ends[:count]
            if time.monotonic() > deadline:
                pytest.fail(f"{count} run(s) did not end:\n{self.output()}")
            time.sleep(0.1)

    def quit(self) -> LocustRun:
        """Stop Locust as a terminal would (SIGTERM) and wait for it to exit."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        return LocustRun(self.process.returncode, self.output(), self.results)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), (
        f"the web UI tests need Debian's Chromium at {CHROMIUM}: "
        "apt-get install chromium (.ci/run does)"
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    """A browser tab; its last state is saved as page.png in the test's folder."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    try:
        yield tab
    finally:
        tab.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        context.close()


@pytest.fixture
def web_locust(tmp_path: Path) -> Iterator[Callable[..., WebLocust]]:
    """Start ``locust -f mix.py`` with its web UI and the given workload settings."""
    started: list[WebLocust] = []

    def start(**workload: str) -> WebLocust:
        port = free_port()
        results = tmp_path / "results"
        env = clean_env(HYPERFAAS_RESULTS_DIR=str(results), **workload)
        log = tmp_path / f"locust-{len(started)}.log"
        args = ["--web-host", "127.0.0.1", "--web-port", str(port)]
        locust = WebLocust(start_locust(MIX, args, env, log), log, results)
        locust.url = f"http://127.0.0.1:{port}/"
        started.append(locust)
        locust.wait_until_serving()
        return locust

    yield start
    for locust in started:
        if locust.process.poll() is None:
            locust.process.kill()
            locust.process.wait()


def status(page: Page) -> Locator:
    """The run state in the page's header: ready, running, stopped."""
    return page.locator("header p:text-is('Status') + span")


def requests_by_name(page: Page) -> dict[str, int]:
    """The '# Requests' column of the statistics table, by request name."""
    counts = {}
    for row in page.locator("table tbody tr").all():
        cells = row.locator("td").all_inner_texts()
        counts[cells[1]] = int(cells[2])
    return counts


def set_custom_parameter(page: Page, name: str, value: str) -> None:
    section = page.get_by_role("button", name="Custom parameters")
    field = page.locator(f"input[name={name}]")
    if not field.is_visible():
        section.click()
    field.fill(value)


def start_and_wait_for_running(page: Page) -> None:
    page.get_by_role("button", name="Start").click()
    expect(status(page)).to_have_text("running")


def db_rows(path: Path, query: str, *args: object) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(query, args).fetchall()


def test_a_run_started_in_the_web_ui_runs_the_plan_to_its_end(web_locust, page):
    locust = web_locust(**SMALL_WORKLOAD)
    page.goto(locust.url)

    # The shape sets the users, so Locust greys out its own fields.
    expect(page.locator("input[name=host]")).to_have_value(locust.emulator_address)
    expect(page.locator("input[name=userCount]")).to_be_disabled()
    expect(page.locator("input[name=spawnRate]")).to_be_disabled()
    set_custom_parameter(page, "workloadSeed", "4242")
    start_and_wait_for_running(page)
    expect(status(page)).to_have_text("stopped", timeout=RUN_END_MS)

    (end,) = locust.run_ends(1)
    aggregated = page.locator("table tbody tr", has_text="Aggregated")
    expect(aggregated.locator("td").nth(2)).to_have_text(str(end.calls))
    shown = requests_by_name(page)
    run = locust.quit()

    assert run.returncode == 0, run.output
    assert "Traceback" not in run.output
    assert end.status == "finished" and "-seed4242-" in end.run_id
    stats = json.loads((run.results / "emulator_stats.json").read_text())
    rows = run.rows()
    calls = [row for row in rows if row["status"] != "DROPPED"]
    assert {row["run_id"] for row in rows} == {end.run_id}
    assert len(calls) == end.calls == stats["served"] > 0
    assert len(rows) - len(calls) == end.dropped
    by_function = Counter(row["function"] for row in calls)
    assert set(by_function) == {"echo", "bfs", "thumbnailer"}
    assert {name: shown[name] for name in by_function} == dict(by_function)
    assert shown["Aggregated"] == len(calls)

    plan = json.loads((run.results / "generated_scenarios.json").read_text())
    assert plan["metadata"]["seed"] == 4242
    assert plan["metadata"]["totalDuration"] == "4s"
    db = run.results / "metrics.db"
    assert db_rows(db, "SELECT run_id, status, seed, target FROM runs") == [
        (end.run_id, "finished", 4242, locust.emulator_address)
    ]
    assert db_rows(db, "SELECT count(*) FROM metrics") == [(len(calls),)]


def test_stop_in_the_web_ui_records_a_stopped_run_and_the_ui_can_start_another(
    web_locust, page
):
    locust = web_locust(**{**SMALL_WORKLOAD, "TOTAL_TEST_DURATION": "60s"})
    page.goto(locust.url)
    start_and_wait_for_running(page)
    page.wait_for_timeout(3000)
    page.get_by_role("button", name="Stop").click()
    expect(status(page)).to_have_text("stopped", timeout=RUN_END_MS)

    (first,) = locust.run_ends(1)
    db = locust.results / "metrics.db"
    csv_rows = locust.rows()
    first_rows = [row for row in csv_rows if row["run_id"] == first.run_id]
    recorded = db_rows(
        db,
        "SELECT (SELECT count(*) FROM metrics WHERE run_id = ?)"
        " + (SELECT count(*) FROM dropped WHERE run_id = ?)",
        first.run_id,
        first.run_id,
    )
    assert first.status == "stopped"
    assert first.calls > 0
    assert len(first_rows) == len(csv_rows) == first.calls + first.dropped
    assert recorded == [(len(first_rows),)]
    assert db_rows(db, "SELECT status FROM runs WHERE ended_ns IS NOT NULL") == [
        ("stopped",)
    ]
    assert locust.process.poll() is None

    # The same process serves a second run, with a setting changed in the form.
    page.get_by_role("button", name="New").click()
    set_custom_parameter(page, "totalTestDuration", "3s")
    start_and_wait_for_running(page)
    expect(status(page)).to_have_text("stopped", timeout=RUN_END_MS)
    _, second = locust.run_ends(2)
    run = locust.quit()

    assert run.returncode == 0, run.output
    assert "Traceback" not in run.output
    assert second.run_id != first.run_id
    assert second.status == "finished" and second.calls > 0
    assert db_rows(db, "SELECT run_id, status FROM runs ORDER BY started_ns") == [
        (first.run_id, "stopped"),
        (second.run_id, "finished"),
    ]
    plan = json.loads((run.results / "generated_scenarios.json").read_text())
    assert plan["metadata"]["totalDuration"] == "3s"
    rows = run.rows()
    assert Counter(row["run_id"] for row in rows) == {
        first.run_id: first.calls + first.dropped,
        second.run_id: second.calls + second.dropped,
    }
    stats = json.loads((run.results / "emulator_stats.json").read_text())
    assert stats["served"] == first.calls + second.calls
