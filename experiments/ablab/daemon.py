"""Starts a private decodelabd on an ephemeral ipc endpoint and stops it with SIGTERM.

    with Daemon(models={"t": "table(vocab=32)"}) as d:
        ...  # d.endpoint, d.client()

The endpoint is a socket in a fresh temporary directory, so concurrent runs never collide. Leaving
the ``with`` block, normally or by an exception, sends SIGTERM, waits for the daemon's clean exit
(it cancels running work and exits 0) and kills it only if it overstays ``stop_timeout``.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from ._client import ROOT, decodelab


class DaemonError(RuntimeError):
    pass


def default_binary() -> pathlib.Path:
    """$DECODELAB_BUILD_DIR/bin/decodelabd (default build/)."""
    return pathlib.Path(os.environ.get("DECODELAB_BUILD_DIR", ROOT / "build")) / "bin" / "decodelabd"


class Daemon:
    def __init__(self, models: Optional[Dict[str, str]] = None, *, binary: Optional[pathlib.Path] = None,
                 workers: int = 1, log_level: str = "warn", extra_args: Sequence[str] = (),
                 start_timeout: float = 120.0, stop_timeout: float = 10.0):
        self.models = dict(models or {})
        self.binary = pathlib.Path(binary) if binary else default_binary()
        self.workers = workers
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.endpoint = ""
        self.returncode: Optional[int] = None
        self._proc: Optional[subprocess.Popen] = None
        self._tmp: Optional[tempfile.TemporaryDirectory] = None

    def command(self) -> List[str]:
        cmd = [str(self.binary), "--bind", self.endpoint, "--workers", str(self.workers), "--log-level", self.log_level]
        for name, spec in self.models.items():
            cmd += ["--load", f"{name}={spec}"]
        return cmd + self.extra_args

    def start(self) -> "Daemon":
        if not self.binary.exists():
            raise DaemonError(f"{self.binary} not found: build it (cmake --build build --target decodelabd) "
                              "or set DECODELAB_BUILD_DIR")
        self._tmp = tempfile.TemporaryDirectory(prefix="ablab-")
        self.endpoint = f"ipc://{self._tmp.name}/d.sock"
        self._proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        # Models named by --load are loaded before the daemon binds, so the first hello that is
        # answered means every model is ready. Short polls notice a daemon that died instead.
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                raise DaemonError(f"decodelabd exited with status {self._proc.returncode} while starting: "
                                  f"{' '.join(self.command())}")
            with decodelab.Client(self.endpoint, timeout=0.5) as c:
                try:
                    c.hello()
                    return
                except decodelab.Timeout:
                    pass
            if time.monotonic() > deadline:
                raise DaemonError(f"decodelabd did not answer within {self.start_timeout} s")

    @property
    def process(self) -> Optional[subprocess.Popen]:
        """The running daemon's process (None before start and after stop)."""
        return self._proc

    def client(self, timeout: float = 120.0) -> "decodelab.Client":
        return decodelab.Client(self.endpoint, timeout=timeout)

    def load(self, name: str, spec: str, target: Optional[str] = None) -> dict:
        """Loads one more model; drafts, which name their loaded ``target``, are loaded this way
        (``--load`` at start has no target to give them)."""
        with self.client() as c:
            return c.load_model(name, spec, target=target)

    def stop(self) -> Optional[int]:
        """SIGTERM, then wait; returns the exit status (0 for a clean stop)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None:
            self.returncode = self._proc.returncode
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return self.returncode

    def __enter__(self) -> "Daemon":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
