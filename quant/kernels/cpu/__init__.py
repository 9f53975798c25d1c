"""Build the C++ CPU kernels on first use and cache the result.

The sources beside this file are compiled with `torch.utils.cpp_extension.load`
(-O3 -mavx2 -mfma -mf16c -fopenmp) into torch's extension cache, so only the first
call in a fresh environment pays the ~1 minute compile. The kernels need AVX2 and
FMA; on a CPU without them, or when the compiler is missing or fails, `load`
returns None once with a warning and the layers fall back to their plain PyTorch
reference path (correct, much slower). The build never waits forever: a lock left by
a killed build is detected and removed, and a build that takes longer than
WORLDMODEL_KERNEL_BUILD_TIMEOUT seconds (default 900) falls back the same way
(build_guard.py).

Each kernel picks its widest path at run time (AVX-512 VNNI / AVX-512BW, else AVX2). `force_avx2()` makes the
layers take the AVX2 path even where AVX-512 is present, so one machine can test and time both (so does
WORLDMODEL_FORCE_AVX2=1). The compiled extension's name carries a hash of its source, so two checkouts with
different kernels never load each other's build from the shared cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from quant.kernels.cpu.build_guard import guarded_build, timeout_from_env

HERE = Path(__file__).resolve().parent
FLAGS = ["-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp"]
_forced_avx2 = os.environ.get("WORLDMODEL_FORCE_AVX2") == "1"


def isa_request() -> int:
    """What the layers pass to a kernel's `isa` argument: -1 = the widest path this CPU has, 0 = AVX2."""
    return 0 if _forced_avx2 else -1


@contextlib.contextmanager
def force_avx2(on: bool = True) -> Iterator[None]:
    """Within the block, the layers run the kernels' AVX2 paths (for tests and benchmarks on AVX-512 CPUs)."""
    global _forced_avx2
    previous, _forced_avx2 = _forced_avx2, on
    try:
        yield
    finally:
        _forced_avx2 = previous


def extension_name(name: str) -> str:
    """torch's extension cache is shared by every checkout on the machine: the name says which source it built."""
    digest = hashlib.sha256((HERE / f"{name}.cpp").read_bytes() + " ".join(FLAGS).encode()).hexdigest()[:10]
    return f"worldmodel_quant_{name}_{digest}"


def _cpu_has_avx2_fma() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: let the compiler and the import decide
        return True
    return " avx2" in flags and " fma" in flags


@functools.cache
def load(name: str) -> ModuleType | None:
    """Compile (once) and import `NAME.cpp`; None, after one warning, if that fails.

    Set WORLDMODEL_NO_CPU_KERNELS=1 to force the reference paths.
    """
    if os.environ.get("WORLDMODEL_NO_CPU_KERNELS") == "1":
        return None
    if not _cpu_has_avx2_fma():
        warnings.warn(f"quant: this CPU lacks AVX2/FMA; {name} falls back to the slow reference path", stacklevel=2)
        return None
    from torch.utils.cpp_extension import _get_build_directory
    from torch.utils.cpp_extension import load as build

    extension = extension_name(name)
    try:
        build_dir = Path(_get_build_directory(extension, verbose=False))
    except Exception as err:  # no writable cache folder: stay correct, get slow
        warnings.warn(f"quant: no folder to build the {name} CPU kernel in ({err}); using the slow reference path",
                      stacklevel=2)
        return None
    return guarded_build(
        lambda: build(name=extension, sources=[str(HERE / f"{name}.cpp")], extra_cflags=FLAGS,
                      extra_ldflags=["-fopenmp"], build_directory=str(build_dir), verbose=False),
        build_dir, name, timeout_from_env(),
    )
