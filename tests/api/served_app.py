"""Helpers of the tests that run `adsentinel serve` as a real server process."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"adsentinel serve exited with {server.returncode}:\n"
                                 f"{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/api/v1/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"adsentinel serve did not answer within {START_TIMEOUT} s:\n"
                         f"{log.read_text()}")


def stop(server: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a server process: SIGTERM, then SIGKILL if it has not gone within ``timeout``."""
    server.terminate()
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
