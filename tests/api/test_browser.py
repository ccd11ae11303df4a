"""A real browser against a real `adsentinel serve` on the demo data.

Debian's headless Chromium (``/usr/bin/chromium``; no browser is downloaded) driven by
Playwright: log in with a token made by the CLI, read the incidents worst first (no lows until
asked), each card's money and next step, filter, download the export, press every status button,
open the top anomaly with its title in view and its chart marked, mark it false positive, and
read the whole dashboard in Brazilian Portuguese. Screenshots are saved in the test's tmp dir.
Missing Chromium skips locally, fails in CI.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from served_app import free_port, stop, wait_until_up
from typer.testing import CliRunner

from adsentinel.cli import app as cli_app
from adsentinel.config import load_settings
from adsentinel.service.demo import run_demo
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


def _browser(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def _log_in(page, base: str, token: str) -> None:
    page.goto(base + "/")
    assert page.url.startswith(base + "/login")
    page.fill("#token", token)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(base + "/")


def _watch(page) -> tuple[list[str], list[str]]:
    """Requests that failed and console errors, collected while the test runs."""
    failed_requests: list[str] = []
    page.on("requestfailed", lambda request: failed_requests.append(request.url))
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error"
            and console_errors.append(message.text))
    return failed_requests, console_errors


def _need_chromium() -> None:
    if not CHROMIUM.exists():
        service_missing(f"Chromium at {CHROMIUM}", "not installed (apt-get install chromium)")


@pytest.mark.slow
def test_log_in_open_top_anomaly_see_marker_mark_false_positive(served_demo, tmp_path):
    _need_chromium()
    from playwright.sync_api import sync_playwright

    base, token = served_demo
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            failed_requests, console_errors = _watch(page)
            _log_in(page, base, token)

            # the top anomaly that has a metric chart (a multivariate one is listed, not charted)
            items = page.locator("li.anomaly")
            assert items.count() > 0
            top = next(i for i in range(items.count())
                       if items.nth(i).locator("a.open-anomaly").get_attribute("data-metric")
                       != "multivariate")
            assert top <= 2
            link = items.nth(top).locator("a.open-anomaly")
            metric = link.get_attribute("data-metric")
            anomaly_id = items.nth(top).get_attribute("data-anomaly-id")
            link.click()
            page.wait_for_url(f"**/entities/*#anomaly-{anomaly_id}")

            chart = page.locator(f"#chart-{metric}")
            chart.wait_for(state="visible")
            page.wait_for_selector(f"#chart-{metric}[data-rendered=true]", timeout=30_000)
            # opened by its link, the anomaly's row is on screen and so is the page's title
            assert page.locator(f"#anomaly-{anomaly_id}").is_visible()
            title_box = page.locator("#entity-title").bounding_box()
            assert title_box is not None and 0 <= title_box["y"] < 900
            traces = page.evaluate(
                "id => document.getElementById(id).data.map(t => [t.meta, t.customdata || null])",
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


def _money(card) -> float:
    value = card.get_attribute("data-money")
    return float(value) if value else 0.0


@pytest.mark.slow
def test_incidents_worst_first_filter_export_and_every_status_button(served_demo, tmp_path):
    _need_chromium()
    from playwright.sync_api import sync_playwright

    base, token = served_demo
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900},
                                    accept_downloads=True)
            failed_requests, console_errors = _watch(page)
            _log_in(page, base, token)

            # worst first: no lows by default, money at stake never rising down the list
            cards = page.locator("li.anomaly")
            assert cards.count() >= 2
            severities = [cards.nth(i).get_attribute("data-severity")
                          for i in range(cards.count())]
            assert "low" not in severities
            money = [_money(cards.nth(i)) for i in range(cards.count())]
            assert money == sorted(money, reverse=True) and money[0] > 0
            top = cards.first
            assert "at stake" in top.locator(".money").inner_text()
            assert top.locator(".money").inner_text()[0] in "£$€R"  # the account's currency
            assert top.locator(".next-step").inner_text().startswith("Next step: ")
            assert top.locator(".since").inner_text().startswith("since ")
            page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

            # a filter: the lows, through the form
            page.select_option("select[name=min_severity]", "low")
            page.click("#apply-filters")
            page.wait_for_url("**min_severity=low**")
            assert page.locator("li.anomaly[data-severity=low]").count() > 0
            assert page.locator("select[name=min_severity]").input_value() == "low"

            # the export of the filtered list, downloaded
            with page.expect_download() as download_info:
                page.click("#export-csv")
            exported = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
            exported_ids = [row["id"] for row in csv.DictReader(io.StringIO(exported))]
            cards = page.locator("li.anomaly")
            listed = [cards.nth(i).get_attribute("data-anomaly-id") for i in range(cards.count())]
            # every card, in the list's order (and the anomalies grouped under them too)
            assert [i for i in exported_ids if i in listed] == listed
            assert download_info.value.suggested_filename.endswith(".csv")

            # every status button, on one incident, from the list of any status
            anomaly_id = top_id = page.locator("li.anomaly").first.get_attribute(
                "data-anomaly-id")
            page.goto(base + "/?status=any&min_severity=low")
            for status in ("acknowledged", "resolved", "expected", "false_positive", "open"):
                card = page.locator(f"li.anomaly[data-anomaly-id='{anomaly_id}']")
                with page.expect_navigation():
                    card.locator(f"button.btn-{status}").click()
                assert "status=any" in page.url
                card = page.locator(f"li.anomaly[data-anomaly-id='{anomaly_id}']")
                assert card.locator(f"button.btn-{status}").count() == 0, status
                shown = card.locator(".status")
                if status == "open":
                    assert shown.count() == 0  # open is the normal state: no label
                else:
                    assert shown.get_attribute("data-status") == status
            page.goto(base + "/?min_severity=low")  # reopened: on the open list again
            assert page.locator(f"li.anomaly[data-anomaly-id='{top_id}']").count() == 1
            assert failed_requests == [] and console_errors == []
        finally:
            browser.close()


@pytest.mark.slow
def test_the_dashboard_in_brazilian_portuguese(served_demo, tmp_path):
    _need_chromium()
    from playwright.sync_api import sync_playwright

    base, token = served_demo
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            context = browser.new_context(locale="pt-BR", viewport={"width": 1280,
                                                                    "height": 900})
            page = context.new_page()
            failed_requests, console_errors = _watch(page)
            _log_in(page, base, token)
            assert page.locator("html").get_attribute("lang") == "pt-BR"
            assert page.locator("h1").inner_text() == "Incidentes"
            top = page.locator("li.anomaly").first
            money = top.locator(".money").inner_text()
            assert money.endswith("em risco") and "," in money  # decimal comma
            assert top.locator(".next-step").inner_text().startswith("Próximo passo: ")
            assert top.locator("button.btn-acknowledged").inner_text() == "Reconhecer"
            top.locator("a.open-anomaly").click()
            page.wait_for_selector(".plot[data-rendered=true]", timeout=30_000)
            assert page.locator("section h2").first.inner_text() == "Anomalias"
            legend = page.evaluate(
                "[...document.querySelectorAll('.legend .traces text')].map(t => t.textContent)")
            assert "valor esperado" in legend  # the chart speaks Portuguese too
            page.screenshot(path=str(tmp_path / "entity-pt-BR.png"))
            # the switch, back to English, remembered
            page.select_option("#lang", "en")
            with page.expect_navigation():
                page.click("form.language button")
            assert page.locator("html").get_attribute("lang") == "en"
            page.goto(base + "/")
            assert page.locator("h1").inner_text() == "Incidents"
            assert failed_requests == [] and console_errors == []
        finally:
            browser.close()
