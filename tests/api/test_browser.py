"""A real browser against a real `adsentinel serve` on the demo data.

Debian's headless Chromium (``/usr/bin/chromium``; no browser is downloaded) driven by
Playwright: log in with a token made by the CLI, open the top anomaly, see its chart with the
anomaly marked, mark it false positive, see the status change. A screenshot of the chart and one
after the change are saved in the test's tmp dir. Missing Chromium skips locally, fails in CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adsentinel.cli import app as cli_app
from adsentinel.config import load_settings
from adsentinel.service.demo import run_demo

from served_app import free_port, stop, wait_until_up
from service_checks import service_missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
@pytest.fixture
def served_demo(tmp_path, monkeypatch) -> Iterator[tuple[str, str]]:
    """`adsentinel serve` on a fresh demo database; yields (base URL, token)."""
    data_dir = tmp_path / "data"
    run_demo(settings=load_settings(data_dir=data_dir))
    monkeypatch.setenv("ADSENTINEL_DATA_DIR", str(data_dir))
    created = CliRunner().invoke(cli_app, ["tokens", "create", "--name", "browser"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    environment["ADSENTINEL_DATA_DIR"] = str(data_dir)
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "adsentinel", "serve", "--host", "127.0.0.1", "--port",
             str(port)], cwd=tmp_path, env=environment, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, server, log)
        yield base, token
    finally:
        stop(server)


@pytest.mark.slow
def test_log_in_open_top_anomaly_see_marker_mark_false_positive(served_demo, tmp_path):
    if not CHROMIUM.exists():
        service_missing(f"Chromium at {CHROMIUM}", "not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    base, token = served_demo
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            failed_requests: list[str] = []
            page.on("requestfailed", lambda request: failed_requests.append(request.url))
            console_errors: list[str] = []
            page.on("console", lambda message: message.type == "error"
                    and console_errors.append(message.text))

            page.goto(base + "/")
            assert page.url.startswith(base + "/login")
            page.fill("#token", token)
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")

            # the top anomaly that has a metric chart (a multivariate one is listed, not charted)
            items = page.locator("li.anomaly")
            assert items.count() > 0
            top = next(i for i in range(items.count())
                       if "multivariate" not in items.nth(i).locator("a.open-anomaly").inner_text())
            assert top <= 2
            link = items.nth(top).locator("a.open-anomaly")
            metric = link.inner_text().split(" on ")[0]
            anomaly_id = items.nth(top).get_attribute("data-anomaly-id")
            link.click()
            page.wait_for_url(f"**/entities/*#anomaly-{anomaly_id}")

            chart = page.locator(f"#chart-{metric}")
            chart.wait_for(state="visible")
            page.wait_for_selector(f"#chart-{metric}[data-rendered=true]", timeout=30_000)
            traces = page.evaluate(
                "id => document.getElementById(id).data.map(t => [t.name, t.customdata || null])",
                f"chart-{metric}")
            marked = dict(traces)["anomaly"]
            assert int(anomaly_id) in marked
            # the markers are drawn: one SVG point per anomaly of this metric
            points = chart.locator(".scatterlayer .trace").last.locator("path.point")
            assert points.count() == len(marked)
            chart.screenshot(path=str(tmp_path / "anomaly-chart.png"))

            row = page.locator(f"#anomaly-{anomaly_id}")
            assert row.locator("td.status").get_attribute("data-status") == "open"
            row.locator("button.btn-false_positive").click()
            page.wait_for_load_state("load")
            row = page.locator(f"#anomaly-{anomaly_id}")
            status = row.locator("td.status")
            assert status.get_attribute("data-status") == "false_positive"
            assert "false positive" in status.inner_text() and "by browser" in status.inner_text()
            page.screenshot(path=str(tmp_path / "after-false-positive.png"), full_page=True)

            page.goto(base + "/")
            assert page.locator(f"li.anomaly[data-anomaly-id='{anomaly_id}']").count() == 0
            assert failed_requests == []  # everything loads from this server: no internet needed
            assert console_errors == []
        finally:
            browser.close()
    assert (tmp_path / "anomaly-chart.png").stat().st_size > 5_000
