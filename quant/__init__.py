"""Quantized linear layers for any torch model: LLM.int8 and LUT-GEMM (plus bitsandbytes for comparison).

    from quant import quantize_, Int8Config, LutConfig
    quantize_(model, Int8Config(threshold=6.0))       # nn.Linear -> Int8Linear, in place
    quantize_(model, LutConfig(bits=3))                # nn.Linear -> LutLinear

See api.py for saving and loading quantized checkpoints, int8.py and lut.py for the
methods, kernels/ for the CPU (C++) and CUDA (Triton) kernels, docs/QUANT.md for an
overview. Names are imported on first use, so `import quant` (and `worldmodel quantize
--help`) does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "check_state_dict": "quant.api",
    "config_for": "quant.api",
    "load_quantized": "quant.api",
    "load_quantized_state_dict": "quant.api",
    "prepare_quantized_": "quant.api",
    "quant_config_of": "quant.api",
    "quantize_": "quant.api",
    "quantized_layers": "quant.api",
    "quantized_share": "quant.api",
    "save_quantized": "quant.api",
    "METHODS": "quant.config",
    "BnbConfig": "quant.config",
    "Int8Config": "quant.config",
    "LutConfig": "quant.config",
    "config_from_dict": "quant.config",
    "config_to_dict": "quant.config",
    "Int8Linear": "quant.int8",
    "LutLinear": "quant.lut",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'quant' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # cache: the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
