"""Which quantized layer each config makes: every method registers its handler with a decorator, as torchao's
handlers do (`register_quantize_module_handler`).

    @register_quantize_handler(Int8Config)
    def _int8_handler(linear: nn.Linear, cfg: Int8Config, empty: bool) -> nn.Module: ...

A handler turns one float nn.Linear into the method's layer: quantized from its weights (empty=False, for
quantize_), or empty and of the same shape, waiting for load_state_dict (empty=True, for prepare_quantized_;
the linear may then sit on the meta device). A method's handler is registered when its module is imported:
quant.api imports int8 and lut, and imports bnb only when a BnbConfig comes (bitsandbytes is optional).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

Handler = Callable[[nn.Linear, Any, bool], nn.Module]

HANDLERS: dict[type, Handler] = {}


def register_quantize_handler(config_type: type) -> Callable[[Handler], Handler]:
    """Decorator: `handler` makes the layers of configs of `config_type`."""

    def register(handler: Handler) -> Handler:
        if config_type in HANDLERS:
            raise ValueError(f"a quantize handler for {config_type.__name__} is already registered")
        HANDLERS[config_type] = handler
        return handler

    return register


def handler_for(config: Any) -> Handler:
    if type(config) not in HANDLERS:
        raise TypeError(f"no quantization handler for {type(config).__name__}")
    return HANDLERS[type(config)]
