"""Starts a decodelabd for the tests on an ipc endpoint in a temporary directory.

The binary is $DECODELAB_BUILD_DIR/bin/decodelabd (scripts/test sets it; default build/).
"""

import os
import pathlib
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "clients" / "python"))

import decodelab  # noqa: E402

TARGET = "table(vocab=32,order=2,seed=1,sharpness=2)"
DRAFT = "draft(temper=1.5,noise=0.2,seed=3)"


def build_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("DECODELAB_BUILD_DIR", ROOT / "build"))


def start_daemon(*extra):
    binary = build_dir() / "bin" / "decodelabd"
    if not binary.exists():
        pytest.fail(f"{binary} not found: build it (scripts/build) or set DECODELAB_BUILD_DIR")
    tmp = tempfile.TemporaryDirectory(prefix="decodelabd-py-")
    endpoint = f"ipc://{tmp.name}/d.sock"
    proc = subprocess.Popen([str(binary), "--bind", endpoint, "--load", f"t={TARGET}", "--log-level", "warn", *extra])
    with decodelab.Client(endpoint, timeout=10) as c:
        c.hello()  # ZeroMQ queues the request until the daemon has bound
    return proc, endpoint, tmp


def stop_daemon(proc, tmp):
    proc.terminate()
    try:
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        tmp.cleanup()


@pytest.fixture(scope="session")
def daemon():
    proc, endpoint, tmp = start_daemon("--workers", "2")
    yield endpoint
    stop_daemon(proc, tmp)


@pytest.fixture
def client(daemon):
    with decodelab.Client(daemon, timeout=10) as c:
        yield c
