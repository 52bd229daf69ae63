"""A progress bar with an ETA for long runs: tqdm when it is installed, a plain line otherwise.

    bar = Progress(total=120, desc="generations")
    for ...:
        bar.update(1, status="greedy p3 seed 2")
    bar.close()

tqdm (PyPI; scripts/setup installs it) draws the bar and estimates the remaining time from its
smoothed rate. Without it, the fallback prints ``done/total``, the elapsed time and an ETA from
the mean rate so far, on one line rewritten in place on a terminal, or as a line every
``every`` seconds otherwise (a log file gets a few lines, not one per generation).
"""

from __future__ import annotations

import sys
import time
from typing import IO, Callable, Optional


def _tqdm() -> Optional[Callable]:
    try:
        from tqdm import tqdm  # noqa: WPS433 (optional dependency)
    except ImportError:
        return None
    return tqdm


def format_seconds(seconds: float) -> str:
    """``1:02:03``, ``2:03``: hours only when needed."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def eta_seconds(done: int, remaining: int, elapsed: float) -> Optional[float]:
    """Time for ``remaining`` units at the mean rate of the ``done`` units of ``elapsed`` seconds
    (None before the first unit is done)."""
    if done <= 0 or elapsed <= 0:
        return None
    return remaining * elapsed / done


class Progress:
    """``use_tqdm``: None = when installed; False = always the plain line. ``file``: where it
    writes (default stderr). ``clock``: the time source (tests pass a fake one)."""

    def __init__(self, total: int, desc: str = "", *, file: Optional[IO[str]] = None, use_tqdm: Optional[bool] = None,
                 every: float = 10.0, clock: Callable[[], float] = time.monotonic, initial: int = 0):
        self.total = int(total)
        self.desc = desc
        self.file = file if file is not None else sys.stderr
        self.done = int(initial)
        self.initial = int(initial)  # done before this run (a resumed file): not part of the rate
        self.clock = clock
        self.start = clock()
        self.every = every
        self._last_print = -float("inf")
        self._bar = None
        tqdm = _tqdm() if use_tqdm in (None, True) else None
        if use_tqdm and tqdm is None:
            raise RuntimeError("Progress: tqdm was asked for but is not installed (pip install tqdm)")
        if tqdm is not None:
            self._bar = tqdm(total=self.total, desc=desc, file=self.file, initial=self.done, unit="gen",
                             dynamic_ncols=True, leave=True)

    @property
    def uses_tqdm(self) -> bool:
        return self._bar is not None

    def line(self, status: str = "") -> str:
        """The fallback's text: ``desc done/total [elapsed<eta] status``."""
        elapsed = self.clock() - self.start
        eta = eta_seconds(self.done - self.initial, self.total - self.done, elapsed)
        left = format_seconds(eta) if eta is not None else "?"
        head = f"{self.desc}: " if self.desc else ""
        return f"{head}{self.done}/{self.total} [{format_seconds(elapsed)}<{left}] {status}".rstrip()

    def update(self, n: int = 1, status: str = "") -> None:
        self.done += n
        if self._bar is not None:
            if status:
                self._bar.set_postfix_str(status, refresh=False)
            self._bar.update(n)
            return
        interactive = getattr(self.file, "isatty", lambda: False)()
        now = self.clock()
        if interactive:
            self.file.write("\r" + self.line(status)[:100].ljust(100))
        elif now - self._last_print >= self.every or self.done >= self.total:
            self.file.write(self.line(status) + "\n")
            self._last_print = now
        else:
            return
        self.file.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif getattr(self.file, "isatty", lambda: False)():
            self.file.write("\n")
            self.file.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
