"""Fixtures of the model store's tests: fitted models, and the three backends on real servers
(a folder, a PostgreSQL database, an S3-compatible server: moto's, run on 127.0.0.1)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from adsentinel.model_store.blobs import FolderBlobs, PostgresBlobs, S3Blobs
from service_checks import service_missing


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3-compatible server on 127.0.0.1 (a dev dependency), for the session."""
    port = _free_port()
    try:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                    "-p", str(port)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    except OSError as exc:
        service_missing("moto's S3 server (pip install 'moto[server]')", exc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            service_missing("moto's S3 server (pip install 'moto[server]')",
                            f"exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3_url(s3_server, monkeypatch) -> str:
    """``s3://<new bucket>/models?endpoint_url=...`` on the local server."""
    import boto3

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/models?endpoint_url={s3_server}"


@pytest.fixture(params=["folder", "postgresql", "s3"])
def blobs(request, tmp_path):
    """Each backend, empty."""
    if request.param == "folder":
        return FolderBlobs(tmp_path / "models")
    if request.param == "postgresql":
        backend = PostgresBlobs(request.getfixturevalue("fresh_postgres_url"))
        request.addfinalizer(backend._engine.dispose)
        return backend
    return S3Blobs(request.getfixturevalue("s3_url"))
