"""Quantization configs: one frozen dataclass per method, and their JSON form.

A config says *how* to quantize; `quant.quantize_` decides *which* layers. Each config
also carries `modules`: None means "every nn.Linear the filter accepts"; a tuple of
qualified names means "exactly these". `quant_config_of(model)` returns the config of
a quantized model with `modules` filled in, which is what goes into
`quant_config.json`, so that `prepare_quantized_` rebuilds the same layers on load.

  Int8Config  LLM.int8: vector-wise int8 plus the fp outlier decomposition above `threshold`
              (0 turns the decomposition off: plain vector-wise int8).
  LutConfig   LUT-GEMM: `bits` (2, 3 or 4) bit-planes in binary-coding form, one
              scale per bit-plane and one offset per group of `group_size` inputs; fitted
              by greedy BCQ plus `iterations` rounds of alternating refinement
              (method="bcq"), or by uniform round-to-nearest converted exactly to BCQ
              (method="rtn"). The scales and offsets are stored as 8-bit codes with
              one bf16 scale per output channel (see quant/lut.py for the bits per weight).
  BnbConfig   bitsandbytes' Linear8bitLt (kind="int8", with `threshold`) or Linear4bit
              NF4 (kind="nf4"), for comparison.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


def _check_modules(modules: tuple[str, ...] | None) -> None:
    if modules is not None and (
        not isinstance(modules, tuple) or not all(isinstance(m, str) and m for m in modules)
    ):
        raise ValueError(f"modules must be None or a tuple of module names, got {modules!r}")


def _check_threshold(owner: str, threshold: object) -> None:
    # NaN passes `< 0`, and would silently turn the outlier split off (no value is ever above NaN).
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < math.inf:
        raise ValueError(f"{owner}.threshold must be a finite number >= 0, got {threshold!r}")


@dataclass(frozen=True)
class Int8Config:
    threshold: float = 6.0
    modules: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _check_threshold("Int8Config", self.threshold)
        _check_modules(self.modules)


@dataclass(frozen=True)
class LutConfig:
    bits: int = 4
    # 64 divides every width of the shipped DiT (192, 256, 768); 128 left 30 of its 37 linear layers in float.
    group_size: int = 64
    method: str = "bcq"
    iterations: int = 10
    modules: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or self.bits not in (2, 3, 4):
            raise ValueError(f"LutConfig.bits must be 2, 3 or 4, got {self.bits!r}")
        # Runs of 4 inputs, taken two at a time by the CPU kernel: a multiple of 8.
        if not isinstance(self.group_size, int) or self.group_size % 8 or not 8 <= self.group_size <= 1024:
            raise ValueError(f"LutConfig.group_size must be a multiple of 8 in [8, 1024], got {self.group_size!r}")
        if self.method not in ("bcq", "rtn"):
            raise ValueError(f"LutConfig.method must be 'bcq' or 'rtn', got {self.method!r}")
        if not isinstance(self.iterations, int) or self.iterations < 0:
            raise ValueError(f"LutConfig.iterations must be an int >= 0, got {self.iterations!r}")
        _check_modules(self.modules)


@dataclass(frozen=True)
class BnbConfig:
    kind: str = "int8"
    threshold: float = 6.0
    modules: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("int8", "nf4"):
            raise ValueError(f"BnbConfig.kind must be 'int8' or 'nf4', got {self.kind!r}")
        _check_threshold("BnbConfig", self.threshold)
        _check_modules(self.modules)


QuantConfig = Int8Config | LutConfig | BnbConfig
CONFIG_TYPES: dict[str, type] = {"int8": Int8Config, "lut": LutConfig, "bnb": BnbConfig}

# The CLI's method names.
METHODS: dict[str, QuantConfig] = {
    "int8": Int8Config(),
    "lut4": LutConfig(bits=4),
    "lut3": LutConfig(bits=3),
    "lut2": LutConfig(bits=2),
    "bnb-int8": BnbConfig(kind="int8"),
    "bnb-nf4": BnbConfig(kind="nf4"),
}


def config_to_dict(config: QuantConfig) -> dict[str, Any]:
    """JSON-ready dict: {"type": "int8" | "lut" | "bnb", **fields}."""
    for name, cls in CONFIG_TYPES.items():
        if type(config) is cls:
            fields = dataclasses.asdict(config)
            if fields["modules"] is not None:
                fields["modules"] = list(fields["modules"])
            return {"type": name, **fields}
    raise TypeError(f"not a quantization config: {config!r}")


def config_from_dict(data: dict[str, Any]) -> QuantConfig:
    """Inverse of config_to_dict; unknown types or fields raise ValueError."""
    if not isinstance(data, dict) or data.get("type") not in CONFIG_TYPES:
        raise ValueError(f"quant config needs a 'type' out of {sorted(CONFIG_TYPES)}, got {data!r}")
    cls = CONFIG_TYPES[data["type"]]
    fields = {k: v for k, v in data.items() if k != "type"}
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} for quant config type {data['type']!r}")
    if fields.get("modules") is not None:
        if not isinstance(fields["modules"], list):
            raise ValueError(f"quant config 'modules' must be a list of module names, got {fields['modules']!r}")
        fields["modules"] = tuple(fields["modules"])
    return cls(**fields)
