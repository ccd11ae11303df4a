"""The README's dashboard screenshots, made again from the demo data.

Runs ``adsentinel demo`` into a throw-away data folder, creates a token, starts
``adsentinel serve`` on a free port of 127.0.0.1 and, with Debian's headless Chromium driven by
Playwright (as ``tests/api/test_browser.py``), saves:

* ``docs/dashboard-overview.png``: the incident list (worst first) and the accounts' status;
* ``docs/dashboard-entity.png``: the top incident's entity page, its anomalies and first charts.

    python benchmarks/dashboard_screenshots.py [--out docs] [--locale en|pt-BR]

Prints the files written and their sizes; the last line is ``BENCH screenshots ...``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1100, "height": 820}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "adsentinel", *args], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"adsentinel {' '.join(args)} failed ({done.returncode}):\n"
                         f"{done.stdout}{done.stderr}")
    return done.stdout


def _wait_until_up(base: str, server: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"adsentinel serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(base + "/api/v1/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"adsentinel serve did not answer within {timeout:.0f} s")


def take_screenshots(base: str, token: str, out: Path, locale: str) -> list[Path]:
    """Log in, save the overview and the top incident's entity page."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    overview, entity = out / "dashboard-overview.png", out / "dashboard-entity.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=VIEWPORT, locale=locale).new_page()
            page.goto(base + "/")
            page.fill("#token", token)
            page.click("form[action='/login'] button[type=submit]")
            page.wait_for_url(base + "/")
            page.screenshot(path=str(overview), full_page=True)
            page.locator("li.anomaly a.open-anomaly").first.click()
            page.wait_for_selector(".plot[data-rendered=true]", timeout=60_000)
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(entity), clip={"x": 0, "y": 0, "width": VIEWPORT["width"],
                                                    "height": 1400}, full_page=True)
        finally:
            browser.close()
    return [overview, entity]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"),
                        help="folder of the PNG files (default docs)")
    parser.add_argument("--locale", default="en", help="the browser's language (en, pt-BR)")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"Chromium is not at {CHROMIUM}: make browser (apt-get install chromium)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="adsentinel-screenshots-") as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
        env["ADSENTINEL_DATA_DIR"] = str(Path(folder) / "data")
        _run(["demo"], env)
        token = _run(["tokens", "create", "--name", "screenshots"], env).strip().splitlines()[-1]
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "adsentinel", "serve", "--host",
                                   "127.0.0.1", "--port", str(port)], env=env, cwd=folder,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_until_up(base, server)
            written = take_screenshots(base, token, args.out, args.locale)
        finally:
            server.terminate()
            server.wait(timeout=30)
    sizes = {path.name: path.stat().st_size for path in written}
    for name, size in sizes.items():
        print(f"{args.out / name}: {size / 1024:.0f} KiB")
    print("BENCH screenshots " + " ".join(f"{name}={size}" for name, size in sizes.items())
          + f" seconds={time.monotonic() - started:.1f}")


if __name__ == "__main__":
    main()
