"""A first-use kernel build that can never wait forever.

torch's extension cache guards a build with a bare lock file (`BUILD_DIR/lock`, created with O_EXCL, holding
no process id). A build killed mid-compile (Ctrl-C, a timeout) leaves that file behind, and every later
process then waits on it in silence, forever. So our builds take a second lock first, an flock on
`BUILD_DIR/worldmodel.lock`, which the kernel drops the moment its holder dies:

- while another live process holds the flock, it is building: wait for it, saying so, up to the time limit;
- once we hold the flock, no live process of ours is building, so a torch `lock` file is a dead build's:
  remove it (saying so) and build;
- the build itself runs in a thread with the same time limit; a build that fails or runs out of time is
  reported once, and the caller falls back to the reference path (correct, slower).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

try:
    import fcntl
except ImportError:  # not POSIX: no flock, so no way to tell a live build from a dead one; only the time limit
    fcntl = None  # type: ignore[assignment]

DEFAULT_TIMEOUT_S = 900.0  # a cold compile takes about a minute on an idle machine, several on a loaded one
OUR_LOCK = "worldmodel.lock"
TORCH_LOCK = "lock"  # torch.utils.cpp_extension's FileBaton


def timeout_from_env() -> float:
    """WORLDMODEL_KERNEL_BUILD_TIMEOUT seconds (wait plus build), or the default."""
    text = os.environ.get("WORLDMODEL_KERNEL_BUILD_TIMEOUT", "")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        value = DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


def _take_flock(path: Path, deadline: float, what: str) -> int | None:
    """An fd holding an exclusive flock on `path`, or None when the deadline passed first."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    said = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        if time.monotonic() >= deadline:
            os.close(fd)
            return None
        if not said:
            print(f"quant: waiting for another process that is building the {what} kernel ({path})", file=sys.stderr)
            said = True
        time.sleep(0.2)


def guarded_build(build: Callable[[], ModuleType], build_dir: Path, what: str, timeout_s: float) -> ModuleType | None:
    """Run `build` (a torch.utils.cpp_extension.load into `build_dir`) as the module docstring says; None when it
    could not finish, after one warning."""
    build_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    fd = None
    if fcntl is not None:
        fd = _take_flock(build_dir / OUR_LOCK, deadline, what)
        if fd is None:
            warnings.warn(f"quant: another process has been building the {what} kernel for over {timeout_s:.0f} s; "
                          "using the slow reference path", stacklevel=3)
            return None
        stale = build_dir / TORCH_LOCK
        if stale.exists():
            stale.unlink(missing_ok=True)
            print(f"quant: removed {stale}, a lock left by a {what} kernel build that was killed", file=sys.stderr)

    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["module"] = build()
        except BaseException as err:  # reported below, on the caller's thread
            result["error"] = err
        finally:
            if fd is not None:
                os.close(fd)  # drops the flock, also when the caller stopped waiting long ago

    thread = threading.Thread(target=target, name=f"build-{what}", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        warnings.warn(f"quant: the {what} kernel did not build within {timeout_s:.0f} s "
                      "(WORLDMODEL_KERNEL_BUILD_TIMEOUT); using the slow reference path", stacklevel=3)
        return None
    if "error" in result:
        warnings.warn(f"quant: could not build the {what} CPU kernel ({result['error']}); "
                      "using the slow reference path", stacklevel=3)
        return None
    return result["module"]  # type: ignore[return-value]
