"""One writer per output directory: an exclusive lock held for the whole run.

Two runs into one `--output` would both redo the work and race on results.json. The second one
exits 2 at once naming the holder's pid, or waits for it with `--wait`. The lock is an flock on
OUT/.lock, so a killed holder releases it with its process. In a data-parallel run only rank 0
takes it: the ranks of one run are one writer.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from paligemma_eval.harness.errors import UsageError


@contextmanager
def output_lock(out: Path, wait: bool = False, take: bool = True,
                can_wait: bool = True) -> Iterator[None]:
    """`can_wait`: the verb has --wait, so the refusal offers it."""
    if not take:
        yield
        return
    if not out.is_dir():   # named as itself, not as the OUT/.lock that could not be opened
        raise UsageError(f"{out}: " + ("not a directory" if out.exists() else
                                       "no such directory"))
    path = out / ".lock"
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise UsageError(f"--output {out}: another paligemma-eval run (pid {holder}) is "
                             f"writing there; " + ("wait for it, or pass --wait" if can_wait
                                                   else "rerun when it ends")) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()
