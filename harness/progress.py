"""Progress of a long loop: a live tqdm bar in a terminal; in a log (CI, `reproduce`, a file) one
plain line every 30 s, each ending in a newline, and none for a loop done sooner (tqdm in a log
writes carriage-return redraws that run into the next line)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

LOG_INTERVAL = 30.0   # seconds between lines in a log


class LogProgress:
    def __init__(self, total: int, desc: str, unit: str) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done = 0
        self.started = self.last = time.monotonic()

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last < LOG_INTERVAL:
            return
        self.last = now
        rate = self.done / (now - self.started)
        left = (self.total - self.done) / rate if rate else float("inf")
        print(f"{self.desc}: {self.done}/{self.total} {self.unit} ({rate:.2f} {self.unit}/s, "
              f"about {_duration(left)} left)", file=sys.stderr, flush=True)

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        return None


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "unknown time"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds} s" if minutes \
        else f"{seconds} s"


def progress(total: int, desc: str, unit: str = "ex") -> Any:
    """A context manager with `update(n)`."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=False)
    return LogProgress(total, desc, unit)
