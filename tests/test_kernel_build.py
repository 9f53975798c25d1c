"""The first-use kernel build never waits forever (quant/kernels/cpu/build_guard.py).

The builds here are stand-ins that behave as torch.utils.cpp_extension.load does around its lock file (the
real FileBaton): a real compile takes a minute, and what is tested is the waiting, not the compiler.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from torch.utils.file_baton import FileBaton

from quant.kernels.cpu.build_guard import OUR_LOCK, TORCH_LOCK, guarded_build

REPO = Path(__file__).resolve().parent.parent


def torch_like_build(build_dir: Path, seconds: float = 0.0):
    """What cpp_extension.load does: take the lock file or wait for it to go, then 'compile' for `seconds`."""

    def build() -> types.ModuleType:
        baton = FileBaton(str(build_dir / TORCH_LOCK))
        if baton.try_acquire():
            try:
                time.sleep(seconds)
            finally:
                baton.release()
        else:
            baton.wait()  # forever, while the file is there
        return types.ModuleType("kernel")

    return build


def test_a_lock_left_by_a_killed_build_is_removed(tmp_path, capsys):
    (tmp_path / TORCH_LOCK).touch()  # what a build killed mid-compile leaves
    t0 = time.monotonic()
    module = guarded_build(torch_like_build(tmp_path), tmp_path, "int8_gemm", timeout_s=5.0)
    assert module is not None and time.monotonic() - t0 < 2.0
    assert not (tmp_path / TORCH_LOCK).exists()
    assert "a lock left by a int8_gemm kernel build that was killed" in capsys.readouterr().err


def test_a_build_that_runs_out_of_time_falls_back_with_one_warning(tmp_path):
    with pytest.warns(UserWarning, match="did not build within 1 s") as caught:
        t0 = time.monotonic()
        assert guarded_build(torch_like_build(tmp_path, seconds=3.0), tmp_path, "lut_gemm", timeout_s=1.0) is None
    assert time.monotonic() - t0 < 2.0 and len(caught) == 1


def test_a_failed_build_falls_back_with_a_warning(tmp_path):
    def broken() -> types.ModuleType:
        raise RuntimeError("Error building extension: g++ not found")

    with pytest.warns(UserWarning, match="could not build the int8_gemm CPU kernel .*g\\+\\+ not found"):
        assert guarded_build(broken, tmp_path, "int8_gemm", timeout_s=5.0) is None


def test_a_live_build_in_another_process_is_waited_for_then_not_forever(tmp_path, capsys):
    """Another process holding the build lock is building: wait (saying so), but only up to the limit. Its
    torch lock file is not taken for a stale one meanwhile."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(tmp_path / OUR_LOCK)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        f"open({str(tmp_path / TORCH_LOCK)!r}, 'w').close()\n"
        "print('held', flush=True)\n"
        "time.sleep(30)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.warns(UserWarning, match="another process has been building the int8_gemm kernel"):
            assert guarded_build(torch_like_build(tmp_path), tmp_path, "int8_gemm", timeout_s=1.0) is None
        assert (tmp_path / TORCH_LOCK).exists()  # a live build's lock is left alone
        assert "waiting for another process that is building the int8_gemm kernel" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    # Its holder died (killed mid-build): the flock went with it, the lock file is stale and removed.
    assert guarded_build(torch_like_build(tmp_path), tmp_path, "int8_gemm", timeout_s=5.0) is not None


def test_the_kernel_loader_goes_through_the_guard(tmp_path):
    """quant.kernels.cpu.load builds into torch's extension folder under the guard (a stale lock there is
    cleared, not waited on). The build is replaced by a stand-in: a real compile takes a minute."""
    script = (
        "import types, torch.utils.cpp_extension as ext\n"
        "from pathlib import Path\n"
        "import quant.kernels.cpu as cpu\n"
        "ext.load = lambda **kw: types.ModuleType(kw['name'])\n"
        "name = cpu.extension_name('int8_gemm')\n"
        "d = Path(ext._get_build_directory(name, False))\n"
        "(d / 'lock').touch()\n"
        "print(cpu.load('int8_gemm').__name__ == name, (d / 'lock').exists())\n"
    )
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path), "WORLDMODEL_KERNEL_BUILD_TIMEOUT": "20"}
    env.pop("WORLDMODEL_NO_CPU_KERNELS", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    if "lacks AVX2" in done.stderr:
        pytest.skip("this CPU has no AVX2: the kernels are never built")
    assert done.stdout.split() == ["True", "False"]  # built under its own name; the stale lock cleared
