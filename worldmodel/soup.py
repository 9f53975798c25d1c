"""`worldmodel soup`: a pipeline whose DiT is a weighted average of a fine-tuned DiT and the DiT it started from.

    worldmodel soup --start OLD_PIPELINE --tuned FINE_TUNED_PIPELINE --alpha 0.25 --out NEW_PIPELINE

Each weight becomes alpha * tuned + (1 - alpha) * start. Averaging a fine-tune with its start (WiSE-FT, Wortsman
et al. 2022) moves along the trade-off between what the fine-tune gained and what it gave up, without training:
the two lie in one basin, so the points between them are models too. Ours: the memory-base fine-tune
(configs/ae8-memory.json) reads the world memory's picture and paints 8-frame rollouts closer to the truth, but it
paints what was never seen smoother, and a long play loses detail; a quarter of it keeps most of the long play's
detail and a share of the rollouts' gain (the model card has the figures).

A weight that only the fine-tune has counts as zero in the start: the fine-tune's new inputs (the base input,
`DiTConfig.base_input`) start at zero, so that is what the start had. Everything else of the pipeline (the
autoencoder, the pitch estimator, the sampling settings) is the start's; the autoencoders must be the same.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from quant import quant_config_of
from worldmodel.config import to_dict
from worldmodel.dit import CausalDiT


def soup_dits(start: CausalDiT, tuned: CausalDiT, alpha: float) -> CausalDiT:
    """A new DiT (the tuned one's config) with alpha * tuned + (1 - alpha) * start for every weight."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    own_cfg, their_cfg = to_dict(start.cfg), to_dict(tuned.cfg)
    differ = {k for k in own_cfg if own_cfg[k] != their_cfg[k]} - {"base_input"}  # the input a fine-tune may add
    if differ:
        raise ValueError(f"the two DiTs differ in {sorted(differ)}: a soup needs a fine-tune of the same model")
    own, theirs = start.state_dict(), tuned.state_dict()
    extra = set(own) - set(theirs)
    if extra:
        raise ValueError(f"the start DiT has weights the fine-tune lacks: {sorted(extra)[:4]}")
    mixed = {}
    for name, weight in theirs.items():
        base = own.get(name, torch.zeros_like(weight))
        if base.shape != weight.shape:
            raise ValueError(f"{name}: shape {tuple(base.shape)} in the start, {tuple(weight.shape)} in the fine-tune")
        mixed[name] = alpha * weight + (1.0 - alpha) * base if weight.is_floating_point() else weight
    out = CausalDiT(tuned.cfg)
    out.load_state_dict(mixed)
    return out.eval()


def soup_pipelines(start: Path, tuned: Path, alpha: float, out: Path) -> None:
    """Write the soup of two pipeline folders to `out` (atomically): the start's pipeline with the mixed DiT."""
    from worldmodel.pipeline import WorldPipeline

    a, b = WorldPipeline.from_pretrained(start), WorldPipeline.from_pretrained(tuned)
    for name, pipe in (("start", a), ("fine-tune", b)):
        if quant_config_of(pipe.dit) is not None:
            raise ValueError(f"the {name} pipeline is quantized: soup the float checkpoints, then quantize")
    ae_a, ae_b = a.autoencoder.state_dict(), b.autoencoder.state_dict()
    if ae_a.keys() != ae_b.keys() or any(not torch.equal(ae_a[k], ae_b[k]) for k in ae_a):
        raise ValueError("the two pipelines have different autoencoders: their DiTs' latents do not mean the same")
    WorldPipeline(a.autoencoder, soup_dits(a.dit, b.dit, alpha), a.sampling, a.pitch).save_pretrained(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", type=Path, required=True, help="the pipeline the fine-tune started from")
    parser.add_argument("--tuned", type=Path, required=True, help="the fine-tuned pipeline")
    parser.add_argument("--alpha", type=float, required=True, help="the fine-tune's share of every weight, 0..1")
    parser.add_argument("--out", type=Path, required=True, help="the new pipeline folder")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")


def main(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.force:
        raise ValueError(f"{args.out} exists: give --force to replace it")
    soup_pipelines(args.start, args.tuned, args.alpha, args.out)
    print(f"wrote {args.out}: {args.alpha:g} x {args.tuned} + {1 - args.alpha:g} x {args.start}", file=sys.stderr)
    return 0
