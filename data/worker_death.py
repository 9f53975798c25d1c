"""Worker processes die with their parent.

A multiprocessing pool's workers outlive a parent killed with SIGKILL or SIGTERM (no cleanup runs): they go on
writing into the output folder that a rerun is now using, then fail with BrokenPipeError tracebacks when they
try to report. Pass `die_with_parent` as the pool's initializer (with the parent's pid) to prevent that.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """In a freshly started worker: be killed the moment the parent dies (Linux: the kernel sends SIGKILL;
    elsewhere a thread notices the parent changed within half a second)."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the watch was set up
        os._exit(1)
