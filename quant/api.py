"""`quantize_`: swap a model's nn.Linear layers for quantized ones, in place.

How it works: a small registry maps a config type to a handler `(linear, cfg) -> module`.
`quantize_` walks the model, asks `filter_fn(module, qualified_name)` (default: every
nn.Linear) and, when the config names `modules`, keeps only those; each chosen layer is
replaced by its handler's result. Nothing is quantized as a side effect of anything
else (no hooks on `.to()`).

Checkpoints: a quantized model's state_dict holds only the quantized buffers. To load
one without ever building float weights, build the float model skeleton (on the meta
device, ideally), call `prepare_quantized_(model, config)` to put *empty* quantized
layers of the right shapes in place, then `load_quantized_state_dict(model, sd)`
(load_state_dict with assign=True, plus clear errors for float/quantized mismatches).
`quant_config_of(model)` gives the config to save as `quant_config.json` (via
`config_to_dict`), with `modules` listing the quantized layers.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from quant.config import BnbConfig, LutConfig, QuantConfig
from quant.int8 import Int8Linear
from quant.lut import LutLinear
from quant.registry import Handler, handler_for

FilterFn = Callable[[nn.Module, str], bool]



def _handler(config: QuantConfig) -> Handler:
    if isinstance(config, BnbConfig):
        # Imported only now, which registers its handler: bitsandbytes is optional and slow to import.
        import quant.bnb  # noqa: F401 (imported for its registration)
    return handler_for(config)


def _default_filter(module: nn.Module, name: str) -> bool:
    return True


def supports(linear: nn.Linear, config: QuantConfig) -> bool:
    """Whether `config` can quantize this layer's shape.

    LUT needs in_features divisible by group_size; bitsandbytes' NF4 CPU path needs
    in_features divisible by its block size (64) and out_features by 32 (its CPU repacking).
    """
    if isinstance(config, LutConfig):
        return linear.in_features % config.group_size == 0
    if isinstance(config, BnbConfig) and config.kind == "nf4":
        return linear.in_features % 64 == 0 and linear.out_features % 32 == 0
    return True


def _chosen_linears(model: nn.Module, config: QuantConfig, filter_fn: FilterFn | None) -> list[tuple[str, nn.Linear]]:
    filter_fn = filter_fn or _default_filter
    chosen = [
        (name, module)
        for name, module in model.named_modules()
        if type(module) is nn.Linear and filter_fn(module, name)
    ]
    if config.modules is None:
        skipped = [name for name, module in chosen if not supports(module, config)]
        if skipped:
            warnings.warn(
                f"quant: {len(skipped)} layer(s) left in float because their shape does not fit {config}: "
                f"{', '.join(skipped[:6])}{' ...' if len(skipped) > 6 else ''}",
                stacklevel=3,
            )
            chosen = [(name, module) for name, module in chosen if supports(module, config)]
    else:
        wanted = set(config.modules)
        found = {name for name, _ in chosen}
        missing = sorted(wanted - found)
        if missing:
            raise ValueError(f"config.modules names layers that are not float nn.Linear in this model: {missing[:5]}")
        chosen = [(name, module) for name, module in chosen if name in wanted]
    return chosen


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


@torch.no_grad()
def quantize_(model: nn.Module, config: QuantConfig, filter_fn: FilterFn | None = None) -> nn.Module:
    """Replace the chosen nn.Linear layers of `model` by quantized ones; returns `model`.

    filter_fn(module, qualified_name) -> bool picks layers (default: all nn.Linear).
    If `model` itself is an nn.Linear, quantize it and return the new module.
    """
    handler = _handler(config)
    if type(model) is nn.Linear:
        return handler(model, config, False) if (filter_fn or _default_filter)(model, "") else model
    chosen = _chosen_linears(model, config, filter_fn)
    try:
        from tqdm import tqdm

        progress = tqdm(chosen, desc=f"quantize {type(config).__name__}", leave=False, disable=len(chosen) < 8)
    except ImportError:  # tqdm is a project dependency; stay usable without it
        progress = chosen
    for name, linear in progress:
        _replace(model, name, handler(linear, config, False))
    return model


def prepare_quantized_(model: nn.Module, config: QuantConfig, filter_fn: FilterFn | None = None) -> nn.Module:
    """Swap nn.Linear layers for EMPTY quantized layers, ready for load_quantized_state_dict.

    Works on a skeleton built on the meta device: the float weights are never touched.
    Use the config from quant_config.json (its `modules` pins the exact layers).
    """
    handler = _handler(config)
    for name, linear in _chosen_linears(model, config, filter_fn):
        _replace(model, name, handler(linear, config, True))
    return model


def quantized_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Qualified name -> quantized layer, for every layer `quant` put in the model."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (Int8Linear, LutLinear)) or _is_bnb(m)}


def quantized_share(model: nn.Module) -> float:
    """Share of the model's linear weights (in_features · out_features, float and quantized layers alike) that are
    quantized: what a method's speed and memory figures actually cover. 0.0 for a model without linear layers."""
    quantized = quantized_layers(model)
    total = done = 0
    for name, module in model.named_modules():
        if type(module) is nn.Linear or name in quantized:
            size = module.in_features * module.out_features
            total += size
            done += size if name in quantized else 0
    return done / total if total else 0.0


def quant_config_of(model: nn.Module) -> QuantConfig | None:
    """The config a quantized model was made with (modules filled in), or None if it holds no quantized layers."""
    layers = quantized_layers(model)
    if not layers:
        return None
    configs = {getattr(m, "cfg", None) for m in layers.values()}
    base = {None if c is None else _without_modules(c) for c in configs}
    if len(base) != 1 or None in base:
        raise ValueError(f"model mixes quantization configs ({sorted(map(str, base))}); save each part separately")
    (cfg,) = base
    return type(cfg)(**{**_fields(cfg), "modules": tuple(layers)})


def _fields(cfg: QuantConfig) -> dict:
    import dataclasses

    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def _without_modules(cfg: QuantConfig) -> QuantConfig:
    return type(cfg)(**{**_fields(cfg), "modules": None})


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise a clear ValueError when float and quantized layers/checkpoints are mixed up."""
    quantized = quantized_layers(model)
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if type(module) is nn.Linear:
            if any(prefix + key in state_dict for key in ("weight_int8", "planes", "SCB", "weight.absmax")):
                raise ValueError(
                    f"layer {name!r}: the checkpoint holds quantized weights but the model has a float nn.Linear there; "
                    "call quant.prepare_quantized_(model, config_from_dict(quant_config.json)) before loading"
                )
        elif name in quantized and prefix + "weight" in state_dict and not _is_bnb(module):
            raise ValueError(
                f"layer {name!r}: the checkpoint holds float weights but the model has {type(module).__name__} there; "
                "load it into a float model, then quantize with quant.quantize_"
            )


def _is_bnb(module: nn.Module) -> bool:
    # By class module, so that checking never imports bitsandbytes.
    return type(module).__module__ == "quant.bnb"


def load_quantized_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True) -> None:
    """load_state_dict(assign=True) after check_state_dict; handles bitsandbytes layers too."""
    check_state_dict(model, state_dict)
    result = model.load_state_dict(state_dict, strict=False, assign=True)
    if strict and (result.missing_keys or result.unexpected_keys):
        raise ValueError(
            f"state dict does not match the model: missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
        )


def config_for(method: str) -> QuantConfig:
    """The config of a CLI method name: int8, lut4, lut3, lut2, bnb-int8, bnb-nf4."""
    from quant.config import METHODS

    if method not in METHODS:
        raise ValueError(f"unknown quantization method {method!r}; choose from {', '.join(METHODS)}")
    return METHODS[method]


# ------------------------------------------------------------------------ files


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_quantized(model: nn.Module, folder: str | Path, weights_name: str = "model.safetensors") -> None:
    """Write `model`'s state dict (safetensors) and quant_config.json into `folder`."""
    from safetensors.torch import save_file

    from quant.config import config_to_dict

    config = quant_config_of(model)
    if config is None:
        raise ValueError("save_quantized: the model holds no quantized layers")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    _atomic_write(folder / weights_name, lambda p: save_file(state, str(p)))
    text = json.dumps(config_to_dict(config), indent=2) + "\n"
    _atomic_write(folder / "quant_config.json", lambda p: p.write_text(text))


def load_quantized(model: nn.Module, folder: str | Path, weights_name: str = "model.safetensors") -> nn.Module:
    """Prepare `model` (a float skeleton, meta device welcome) from folder/quant_config.json and load the weights."""
    from safetensors.torch import load_file

    from quant.config import config_from_dict

    folder = Path(folder)
    config_path = folder / "quant_config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: missing; this folder does not hold a quantized model")
    try:
        config = config_from_dict(json.loads(config_path.read_text()))
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path}:{err.lineno}: invalid JSON: {err.msg}") from err
    except (TypeError, ValueError) as err:
        raise ValueError(f"{config_path}: {err}") from err
    prepare_quantized_(model, config)
    load_quantized_state_dict(model, load_file(str(folder / weights_name)))
    return model
