"""The CPU a figure was measured on: its model name and widest SIMD level.

Every benchmark table names the CPU, because the kernels take different paths (AVX-512 VNNI, AVX-512BW, AVX2)
and fp32 itself runs at about half the speed without AVX-512: a ratio from one CPU says little about another.
"""

from __future__ import annotations

import functools
import platform

# Widest first: the first flag the CPU has names its level.
SIMD_LEVELS = (("avx512_vnni", "AVX-512 VNNI"), ("avx512bw", "AVX-512BW"), ("avx512f", "AVX-512"), ("avx2", "AVX2"))


@functools.cache
def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:  # not Linux
        pass
    return fields


def simd_level() -> str:
    flags = set(_cpuinfo().get("flags", "").split())
    return next((name for flag, name in SIMD_LEVELS if flag in flags), "below AVX2")


def cpu_name() -> str:
    """E.g. "AMD EPYC 7B13 (AVX2)": the model name and the widest SIMD level."""
    return f"{_cpuinfo().get('model name') or platform.processor() or 'unknown CPU'} ({simd_level()})"
