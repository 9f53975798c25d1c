"""How sharp an autoencoder is on frames it never trained on: PSNR and SSIM of its reconstructions.

    python -m eval.measure.reconstruction assets/wm-default/autoencoder runs/ae8-from-default/autoencoder

The frames are spread evenly over every clip of a held-out recording (`worldmodel record --out runs/val64
--frames 10000 --seed 100000`, worlds the training data's seed never made), the same frames for every
autoencoder given, so their figures compare. The world model's frames can be no sharper than this: it is the
ceiling the issue's 30 dB target is about."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from data.clips import find_clips, read_clip
from eval.fidelity import psnr, ssim
from worldmodel.autoencoder import FrameAutoencoder, to_model_range, to_uint8

REPO = Path(__file__).resolve().parents[2]


def held_out_frames(clips_root: Path, count: int) -> np.ndarray:
    """`count` frames (count, H, W, 3) uint8, spread evenly over the clips under `clips_root` and over each clip."""
    stems = find_clips(clips_root)
    if not stems:
        raise ValueError(f"{clips_root}: no clips")
    per_clip = -(-count // len(stems))
    frames = []
    for stem in stems:
        clip = read_clip(stem)
        picks = np.linspace(0, len(clip.frames) - 1, per_clip).round().astype(int)
        frames.extend(np.asarray(clip.frames[i]) for i in picks)
    return np.stack(frames[:count])


@torch.no_grad()
def reconstruction(ae: FrameAutoencoder, frames: np.ndarray, batch: int = 128) -> dict:
    """Mean PSNR (dB) and SSIM of ae's reconstructions of uint8 frames (N, H, W, 3)."""
    out = []
    for i in range(0, len(frames), batch):
        x = to_model_range(torch.from_numpy(frames[i : i + batch]).permute(0, 3, 1, 2))
        out.append(to_uint8(ae.decode(ae.encode(x))).permute(0, 2, 3, 1).numpy())
    recon = np.concatenate(out)
    return {
        "frames": len(frames),
        "psnr": float(np.mean([psnr(a, b) for a, b in zip(recon, frames)])),
        "ssim": float(np.mean([ssim(a, b) for a, b in zip(recon, frames)])),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.measure.reconstruction", description=__doc__.split("\n\n")[0])
    parser.add_argument("autoencoders", nargs="+", help="autoencoder folders (a pipeline's autoencoder/)")
    parser.add_argument("--clips", default=str(REPO / "runs" / "val64"), help="held-out clips (default: runs/val64)")
    parser.add_argument("--frames", type=int, default=1000, help="how many frames, spread over the clips")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.frames < 1:
        parser.error(f"--frames must be at least 1, got {args.frames}")
    torch.set_num_threads(1)
    frames = held_out_frames(Path(args.clips), args.frames)
    rows = {}
    for folder in args.autoencoders:
        ae = FrameAutoencoder.from_pretrained(folder)
        if ae.cfg.image_size != frames.shape[1]:
            parser.error(f"{folder} works on {ae.cfg.image_size}px frames, the clips in {args.clips} are {frames.shape[1]}px")
        rows[folder] = {"latent_channels": ae.cfg.latent_channels, **reconstruction(ae, frames)}
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"held-out frames: {len(frames)} from {args.clips}\n")
    print("| autoencoder | latent channels | PSNR dB | SSIM |\n|---|---|---|---|")
    for folder, r in rows.items():
        print(f"| {folder} | {r['latent_channels']} | {r['psnr']:.2f} | {r['ssim']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
