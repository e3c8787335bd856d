"""End to end: the real page served by `streamlit run`, opened in headless Chromium.

Checks what only a browser can: the product photos actually decode and render (non-zero
natural size), not merely that the HTML holds <img> tags. Chromium comes from Debian's
`chromium` package (/usr/bin/chromium); the test skips with a clear message without it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "streamlit" / "pred_inspector.py"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_TIMEOUT_MS = 120_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_page(env: Mapping[str, str], log: Path) -> Iterator[str]:
    """`streamlit run` on 127.0.0.1 and a free port; stopped (and waited for) on exit."""
    port = _free_port()
    command = [
        *(sys.executable, "-m", "streamlit", "run", str(PAGE)),
        *("--server.address", "127.0.0.1", "--server.port", str(port)),
        *("--server.headless", "true"),  # usage statistics: off in .streamlit/config.toml
    ]
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start; see {log}")
                time.sleep(0.3)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@contextmanager
def browser_page(profile: Path):
    """A fresh headless Chromium profile and page (no network beyond 127.0.0.1 needed)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1600, "height": 1400},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def wait_until_idle(page) -> None:
    """Streamlit marks its root with the script state; wait for the run to finish."""
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=PAGE_TIMEOUT_MS
    )


def wait_for_images(page, expected: int) -> list[dict]:
    """Wait until `expected` images in the main area have loaded; return their sizes."""
    selector = '[data-testid="stMain"] [data-testid="stImage"] img'
    page.wait_for_function(
        """([selector, expected]) => {
            const imgs = [...document.querySelectorAll(selector)];
            return imgs.length >= expected && imgs.every(img => img.complete);
        }""",
        arg=[selector, expected],
        timeout=PAGE_TIMEOUT_MS,
    )
    return page.eval_on_selector_all(
        selector,
        "imgs => imgs.map(img => ({src: img.src, w: img.naturalWidth, h: img.naturalHeight}))",
    )


def open_inspector(page, url: str) -> float:
    """Load the page until the 12 recommendations are drawn; seconds it took."""
    started = time.perf_counter()
    page.goto(url, timeout=PAGE_TIMEOUT_MS)
    page.get_by_text("Top 12 recommendations").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    wait_for_images(page, 12)
    return time.perf_counter() - started


def switch_customer(page, customer_id: str) -> tuple[float, list[dict]]:
    """Type a customer id and wait until their page is drawn: seconds it took, images."""
    started = time.perf_counter()
    box = page.get_by_label("Customer id (or its start)")
    box.fill(customer_id)
    box.press("Enter")
    page.get_by_role("heading", name=f"Customer {customer_id}").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    images = wait_for_images(page, 12)
    return time.perf_counter() - started, images


def run_only_env(env: Mapping[str, str]) -> dict[str, str]:
    """A flow run's environment without its data settings: the page must find the run's
    data folder, DuckDB file and photos from the run itself (as after `make run`)."""
    unset = ("DATA_DIR", "DUCKDB_PATH", "IMAGE_DIR", "IMAGE_URL_TEMPLATE")
    return {**env, **dict.fromkeys(unset, "")}


def distinct_photos(images: list[dict]) -> set[str]:
    """The rendered photos (served from Streamlit's media store), by content address."""
    return {img["src"] for img in images if "/media/" in img["src"] and img["w"] and img["h"]}


def sidebar_table_widths(page) -> list[dict]:
    """Each sidebar table's right edge (whole table, scrolled part included) and the
    sidebar content's right edge: a table cut off at the default width ends past it."""
    return page.eval_on_selector_all(
        '[data-testid="stSidebar"] [data-testid="stTableStyledTable"]',
        """tables => tables.map(t => ({
            right: Math.round(t.getBoundingClientRect().left + t.scrollWidth),
            room: Math.round(document.querySelector('[data-testid="stSidebarUserContent"]')
                .getBoundingClientRect().right),
        }))""",
    )


def test_page_renders_the_runs_product_images(tiny_flow_run, tmp_path: Path) -> None:
    """Opened without DATA_DIR (as `make app` after `DATA_DIR=<dir> make run`), the page
    reads the run's own data: its distinct photos, no "views not built" warning."""
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "streamlit-e2e.log"
    env = run_only_env(tiny_flow_run.env)
    with serve_page(env, log) as url, browser_page(tmp_path / "profile") as page:
        open_inspector(page, url)
        page.screenshot(path=str(ARTIFACTS / "pred_inspector.png"), full_page=True)
        images = wait_for_images(page, 12)
        assert not page.locator('[data-testid="stException"]').count()
        text = page.inner_text('[data-testid="stMain"]')
        tables = sidebar_table_widths(page)
    assert "not built yet" not in text and "Could not read" not in text
    assert len(tables) == 2 and all(t["right"] <= t["room"] for t in tables), tables
    broken = [img for img in images if img["w"] == 0 or img["h"] == 0]
    assert not broken, f"images that did not render: {broken}"
    assert len(distinct_photos(images)) >= 12, images


@pytest.mark.slow
def test_demo_screenshot_and_timings(demo_flow_run, tmp_path: Path) -> None:
    """On the demo run: the first-load and customer-switch times, and the README screenshot.

    Set UPDATE_SCREENSHOT=1 to copy the screenshot to docs/screenshot.png.
    """
    from recsys.app import inspector

    ARTIFACTS.mkdir(exist_ok=True)
    customers = inspector.load_run_data(demo_flow_run.export_dir).buyers[1:6]
    log = ARTIFACTS / "streamlit-demo.log"
    env = run_only_env(demo_flow_run.env)
    with serve_page(env, log) as url, browser_page(tmp_path / "profile") as page:
        first_load = open_inspector(page, url)
        page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=False)
        shown = [switch_customer(page, customer) for customer in customers]
    switches = [seconds for seconds, _ in shown]
    for _, images in shown:  # each customer's page: their photos, drawn
        assert len(distinct_photos(images)) >= 12, images
    assert (ARTIFACTS / "demo.png").stat().st_size > 50_000  # a rendered page, not a blank
    print(f"\nfirst load {first_load:.2f} s; customer switch {sorted(switches)} s")
    (ARTIFACTS / "timings.txt").write_text(
        f"first_load_s={first_load:.2f}\nswitch_s={','.join(f'{s:.2f}' for s in switches)}\n"
    )
    assert max(switches) < 30  # a switch must not reload the run
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copy(ARTIFACTS / "demo.png", REPO / "docs" / "screenshot.png")
