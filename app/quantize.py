"""Quantize a world-model checkpoint folder: `worldmodel quantize IN OUT --method int8`.

How it works: the pipeline in IN is loaded on the CPU, the linear layers of its
denoiser transformer (`pipe.dit`) are swapped in place by `quant.quantize_` for the
chosen method, and the pipeline is saved to OUT; the DiT's folder then holds the
quantized buffers (safetensors) and `quant_config.json`, which `from_pretrained` reads
to rebuild the quantized layers before loading. Layers whose shape a method cannot take
(LUT needs in_features divisible by the group size) stay in float, with a warning.

Methods: int8 (LLM.int8, threshold 6), lut4 / lut3 / lut2 (LUT-GEMM, BCQ, group 64),
bnb-int8 / bnb-nf4 (bitsandbytes, for comparison).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from quant.config import METHODS, LutConfig, QuantConfig

if TYPE_CHECKING:  # torch is imported only when the command runs, so --help stays fast
    from torch import nn


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="float checkpoint folder (WorldPipeline.save_pretrained)")
    parser.add_argument("output", type=Path, help="folder to write the quantized checkpoint to")
    parser.add_argument("--method", choices=sorted(METHODS), default="int8", help="quantization method")
    parser.add_argument("--threshold", type=float, default=None, help="LLM.int8 outlier threshold (int8, bnb-int8; default 6.0)")
    parser.add_argument("--group-size", type=int, default=None, help="LUT group size (lut*; default 64)")
    parser.add_argument("--rtn", action="store_true", help="LUT: uniform round-to-nearest converted to BCQ instead of fitted BCQ")
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")


def config_from_args(args: argparse.Namespace) -> QuantConfig:
    """The method's config with the command line's overrides; ValueError for options of another method."""
    cfg = METHODS[args.method]
    changes: dict[str, object] = {}
    if args.threshold is not None:
        if not hasattr(cfg, "threshold"):
            raise ValueError(f"--threshold does not apply to --method {args.method}")
        changes["threshold"] = args.threshold
    if args.group_size is not None or args.rtn:
        if not isinstance(cfg, LutConfig):
            raise ValueError(f"--group-size and --rtn apply to lut methods, not {args.method}")
        if args.group_size is not None:
            changes["group_size"] = args.group_size
        if args.rtn:
            changes["method"] = "rtn"
    return dataclasses.replace(cfg, **changes)


def main(args: argparse.Namespace) -> int:
    from quant.api import quant_config_of, quantize_, quantized_layers, quantized_share

    if args.output.exists() and not args.force:
        print(f"error: {args.output} exists; pass --force to overwrite it", file=sys.stderr)
        return 2
    if args.output.resolve() == args.input.resolve():
        print("error: OUTPUT must differ from INPUT", file=sys.stderr)
        return 2
    try:
        cfg = config_from_args(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from worldmodel.pipeline import WorldPipeline

    pipe = WorldPipeline.from_pretrained(args.input, device="cpu")
    if quant_config_of(pipe.dit) is not None:
        print(f"error: {args.input} is already quantized ({quant_config_of(pipe.dit)})", file=sys.stderr)
        return 2
    before = _bytes(pipe.dit)
    quantize_(pipe.dit, cfg)
    after = _bytes(pipe.dit)
    pipe.save_pretrained(args.output)
    count = len(quantized_layers(pipe.dit))
    print(f"{args.method}: {count} linear layers quantized, {100 * quantized_share(pipe.dit):.1f}% of the DiT's "
          f"linear weights; DiT weights {before / 2**20:.2f} MiB -> "
          f"{after / 2**20:.2f} MiB ({after / before:.3f}x); saved {args.output}")
    return 0


def _bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())
