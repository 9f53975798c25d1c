"""The pitch stage: the pitch estimator (worldmodel.pitch), trained on single frames and the pitch each was seen
at (the clips' poses: every clip `worldmodel record` makes has them). One clip in ten is held out, and the final
error on its frames is logged and printed. Runs in the main process only (it takes minutes); under torchrun the
other ranks wait."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from worldmodel.autoencoder import to_model_range
from worldmodel.config import TrainConfig
from worldmodel.distributed import Dist
from worldmodel.finite import stop_on_non_finite_loss
from worldmodel.lr_schedule import warmup_cosine
from worldmodel.pitch import PitchEstimator
from worldmodel.train_log import append_log
from worldmodel.training import Budget, resume_progress, save_progress

HELD_OUT_EVERY = 10  # clips 9, 19, 29, ... are not trained on: the final error is measured on them


class PitchFrames:
    """Every frame of the clips under `root` with the pitch it was seen at: frames memory-mapped, pitches in RAM."""

    def __init__(self, root: str, size: int, held_out: bool):
        from data.clips import find_clips, read_clip

        self.frames: list[np.ndarray] = []
        self.pitch: list[np.ndarray] = []
        for i, stem in enumerate(find_clips(root)):
            if (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) != held_out:
                continue
            clip = read_clip(stem)
            if clip.poses is None:
                raise ValueError(f"{stem}: no camera poses in its action log; the pitch stage learns from clips "
                                 "recorded by `worldmodel record` (they log each frame's pose)")
            if clip.frames.shape[1:] != (size, size, 3):
                raise ValueError(f"{stem}: frames are {clip.frames.shape[2]}x{clip.frames.shape[1]}; the pitch stage "
                                 f"reads clips recorded at the model's size ({size}x{size})")
            self.frames.append(clip.frames)
            self.pitch.append(np.array([p["pitch"] for p in clip.poses], np.float32))
        self.offsets = np.cumsum([0] + [len(f) for f in self.frames])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (B, 3, H, W) in [-1, 1] and their pitch in degrees (B,)."""
        obs, pitch = [], []
        for i in index.tolist():
            clip = int(np.searchsorted(self.offsets, i, side="right")) - 1
            t = i - int(self.offsets[clip])
            obs.append(np.asarray(self.frames[clip][t]))
            pitch.append(self.pitch[clip][t])
        x = to_model_range(torch.from_numpy(np.stack(obs)).permute(0, 3, 1, 2))
        return x, torch.tensor(pitch)


def train_pitch(cfg: TrainConfig, out: Path, resume: bool, dd: Dist) -> None:
    """Train OUT/pitch/ (a PitchEstimator folder), resumable from OUT/ckpt_pitch/."""
    if dd.main:
        _train(cfg, out, resume, Dist(device=dd.device))
    dd.barrier()


def _train(cfg: TrainConfig, out: Path, resume: bool, alone: Dist) -> None:
    size = cfg.pitch.image_size
    train = PitchFrames(cfg.data, size, held_out=False)
    held = PitchFrames(cfg.data, size, held_out=True)
    if len(train) == 0:
        raise ValueError(f"{cfg.data}: no frames to train the pitch estimator on")
    torch.manual_seed(cfg.seed)
    model = PitchEstimator(cfg.pitch).to(alone.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.pitch_lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + 7)
    ckpt_dir = out / "ckpt_pitch"
    step, spent = resume_progress(ckpt_dir, {"model": model}, opt, gen) if resume else (0, 0.0)
    budget = Budget(cfg.pitch_steps, cfg.pitch_minutes, spent)

    def save(step: int) -> None:
        save_progress(ckpt_dir, {"model": model}, opt, gen, step, budget.elapsed_minutes())

    bar = tqdm(total=cfg.pitch_steps, initial=step, desc="pitch", dynamic_ncols=True)
    smooth = None
    model.train()
    while step < cfg.pitch_steps and budget.elapsed_minutes() < cfg.pitch_minutes:
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(cfg.pitch_lr, budget.progress(step), cfg.min_lr_ratio, step, 50)
        x, pitch = train.batch(torch.randint(len(train), (cfg.pitch_batch_size,), generator=gen))
        flip = torch.rand(len(x), generator=gen) < 0.5  # a mirrored view looks up or down as much
        x = torch.where(flip[:, None, None, None], x.flip(-1), x).to(alone.device)
        loss = F.smooth_l1_loss(model(x), pitch.to(alone.device), beta=2.0)  # degrees: squared near the truth, linear far off
        stop_on_non_finite_loss(loss, "pitch", step, ckpt_dir, alone)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        smooth = float(loss.detach()) if smooth is None else 0.95 * smooth + 0.05 * float(loss.detach())
        bar.update(1)
        bar.set_postfix(loss=f"{smooth:.3f}")
        if step % cfg.log_every == 0:
            append_log(out, {"stage": "pitch", "step": step, "loss": float(loss.detach()), "minutes": budget.elapsed_minutes()})
        if step % cfg.ckpt_every == 0:
            save(step)
    bar.close()
    if step % cfg.ckpt_every:
        save(step)
    model.eval()
    model.save_pretrained(out / "pitch")
    if len(held):
        error = held_out_error(model, held)
        append_log(out, {"stage": "pitch", "step": step, **error})
        print(f"pitch: {step} steps; on {error['frames']:.0f} frames of the held-out clips the error is "
              f"{error['median_abs_error']:.1f} degrees (median), {error['mean_abs_error']:.1f} (mean)", file=sys.stderr)


@torch.no_grad()
def held_out_error(model: PitchEstimator, frames: PitchFrames, most: int = 4000) -> dict[str, float]:
    """Median and mean absolute error in degrees on up to `most` frames spread evenly over `frames`."""
    index = torch.linspace(0, len(frames) - 1, min(most, len(frames))).round().long()
    errors = []
    for part in index.split(256):
        x, pitch = frames.batch(part)
        errors.append((model(x.to(model.rows.device)).cpu() - pitch).abs())
    error = torch.cat(errors)
    return {"median_abs_error": float(error.median()), "mean_abs_error": float(error.mean()), "frames": float(len(error))}


def with_pitch(init_from: Path, out: Path) -> None:
    """OUT/pipeline: the pipeline folder at `init_from` with this run's pitch estimator (OUT/pitch)."""
    from worldmodel.pipeline import WorldPipeline

    pipe = WorldPipeline.from_pretrained(init_from)
    pipe.pitch = PitchEstimator.from_pretrained(out / "pitch")
    pipe.save_pretrained(out / "pipeline")
    print(f"done: {out / 'pipeline'} ({init_from} with the new pitch estimator)", file=sys.stderr)
