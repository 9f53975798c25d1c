"""Train the autoencoder, then the world model, from a JSON config.

    worldmodel train --config worldmodel/configs/default.json --out runs/wm-default [--resume]
    torchrun --nproc_per_node 2 -m worldmodel.train --config ... --out ...     (DDP: gloo on CPU, nccl on GPU)

Stages (the config's "stages"): "autoencoder" trains the frame autoencoder on single frames; "world" encodes the
dataset once into cached latents, then trains the causal DiT by diffusion forcing on runs of latent frames.
Each stage stops at its step count or its time budget, whichever comes first, and saves. OUT holds:

    OUT/pipeline/         the result (autoencoder + EMA DiT), a WorldPipeline folder: copy it to assets/
    OUT/autoencoder/      the autoencoder stage's result
    OUT/ckpt_ae/, OUT/ckpt_world/   resumable checkpoints (model, EMA, optimizer, step, RNG), written atomically
    OUT/latents.safetensors         the latent cache
    OUT/log.jsonl, OUT/loss.png     losses and the action-responsiveness eval, as numbers and as a plot

From the first eval on, the log shows how much the model listens to the actions: the error of its predicted next
frame with the true action, with the null action and with a mirrored one (left<->right, forward<->back, camera
negated). A model that ignores actions has all three equal.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from tqdm import tqdm

from data.actions import KEY_INDEX
from worldmodel.autoencoder import FrameAutoencoder, reconstruction_loss, to_model_range
from worldmodel.checkpoint import (
    load_checkpoint,
    optimizer_from_flat,
    optimizer_to_flat,
    prefixed,
    save_checkpoint,
    unprefixed,
)
from worldmodel.config import TrainConfig, load_train_config, to_dict
from worldmodel.dit import CausalDiT, DepthHead
from worldmodel import memory_bases
from worldmodel.finite import stop_on_non_finite_loss
from worldmodel.latents import LatentClips, add_ground_truth, cache_key, encode_windows, fingerprint, release_freed_memory
from worldmodel.memory_bases import MemoryBases
from worldmodel.run_folder import check_run_folder, clear_for_fresh_run
from worldmodel.sampler import sigma_schedule
from worldmodel.schedule import add_noise, flow_loss, model_base, sample_train_sigmas

# A factory for the clip dataset: (root, length, stride) -> a ClipWindows-like Dataset. Tests pass their own.
WindowsFactory = Callable[[str, int, int], Any]


def clip_windows(root: str, length: int, stride: int):
    from data.clips import ClipWindows

    return ClipWindows(root, length=length, stride=stride)


# ---------------------------------------------------------------- distributed


@dataclasses.dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.on:
            dist.barrier()

    def broadcast(self, values: list[float]) -> list[float]:
        """Rank 0's values on every rank (decisions that must agree: stop now, learning rate)."""
        if not self.on:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.broadcast(t, src=0)
        return t.tolist()


def setup_dist() -> Dist:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Dist(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return Dist(rank, world, torch.device("cuda", local))
    dist.init_process_group("gloo")
    return Dist(rank, world, torch.device("cpu"))


# ---------------------------------------------------------------- shared bits


def lr_at(cfg: TrainConfig, step: int, progress: float, base_lr: float, warmup: int | None = None) -> float:
    """Linear warmup, then cosine down to min_lr_ratio; `progress` in [0, 1] is the larger of steps and time used."""
    warmup = cfg.warmup_steps if warmup is None else warmup
    if step < warmup:
        return base_lr * (step + 1) / warmup
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return base_lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - decay)


def append_log(out: Path, row: dict[str, Any]) -> None:
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def read_log(out: Path) -> list[dict[str, Any]]:
    path = out / "log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_losses(out: Path) -> None:
    """OUT/loss.png: training losses per stage, and the world model's eval errors with true / null / mirrored actions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(out)
    if not rows:
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, stage in zip(axes[:2], ("autoencoder", "world")):
        pts = [(r["step"], r["loss"]) for r in rows if r.get("stage") == stage and "loss" in r]
        if pts:
            ax.plot(*zip(*pts), lw=0.8)
            ax.set_yscale("log")
        ax.set_title(f"{stage} training loss")
        ax.set_xlabel("step")
    ax = axes[2]
    evals = [r for r in rows if r.get("stage") == "world" and "eval_true" in r]
    for name in ("eval_true", "eval_null", "eval_mirror", "eval_copy"):
        if evals:
            ax.plot([r["step"] for r in evals], [r[name] for r in evals], label=name.removeprefix("eval_"), marker=".")
    ax.set_title("next-frame latent MSE by action given")
    ax.set_xlabel("step")
    if evals:
        ax.legend()
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.14, top=0.9, wspace=0.25)  # tight_layout costs seconds
    tmp = out / ".loss.png.tmp.png"
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, out / "loss.png")


def rng_tensors(generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"rng.torch": torch.get_rng_state(), "rng.data": generator.get_state()}


def restore_rng(tensors: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.data"])


class Budget:
    """Stops a stage at its step count or its minutes (minutes carried over across resumes)."""

    def __init__(self, steps: int, minutes: float, spent_minutes: float):
        self.steps, self.minutes, self.start, self.spent = steps, minutes, time.time(), spent_minutes

    def elapsed_minutes(self) -> float:
        return self.spent + (time.time() - self.start) / 60

    def progress(self, step: int) -> float:
        return max(step / self.steps, self.elapsed_minutes() / self.minutes)


# ---------------------------------------------------------------- stage 1: the autoencoder


def train_autoencoder(cfg: TrainConfig, out: Path, resume: bool, dd: Dist, windows: WindowsFactory) -> FrameAutoencoder:
    torch.manual_seed(cfg.seed + dd.rank)
    ae = FrameAutoencoder(cfg.autoencoder).to(dd.device)
    if not ae.trainable:  # pixel space: nothing to learn, frames in [-1, 1] are the latents
        if dd.main:
            save_autoencoder_folder(out / "autoencoder", ae)
        dd.barrier()
        return ae
    dataset = windows(cfg.data, 1, 1)
    if len(dataset) == 0:
        raise ValueError(f"{cfg.data}: no frames to train the autoencoder on")
    opt = torch.optim.AdamW(ae.parameters(), lr=cfg.ae_lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + dd.rank)
    step, spent = 0, 0.0
    ckpt_dir = out / "ckpt_ae"
    loaded = load_checkpoint(ckpt_dir) if resume else None
    if loaded is not None:
        tensors, meta = loaded
        ae.load_state_dict(unprefixed("model", tensors))
        optimizer_from_flat(opt, tensors, meta)
        restore_rng(tensors, gen)
        step, spent = meta["step"], meta["minutes"]
    model = torch.nn.parallel.DistributedDataParallel(ae) if dd.on else ae
    budget = Budget(cfg.ae_steps, cfg.ae_minutes, spent)

    def save(step: int) -> None:
        if dd.main:
            flat, meta = optimizer_to_flat(opt)
            tensors = {**prefixed("model", ae.state_dict()), **flat, **rng_tensors(gen)}
            save_checkpoint(ckpt_dir, tensors, {**meta, "step": step, "minutes": budget.elapsed_minutes()})
            plot_losses(out)

    bar = tqdm(total=cfg.ae_steps, initial=step, desc="autoencoder", disable=not dd.main, dynamic_ncols=True)
    smooth = None
    while step < cfg.ae_steps:
        progress, stop = dd.broadcast([budget.progress(step), float(budget.elapsed_minutes() >= cfg.ae_minutes)])
        if stop:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step, progress, cfg.ae_lr, warmup=cfg.ae_warmup_steps)
        idx = torch.randint(len(dataset), (cfg.ae_batch_size,), generator=gen)
        obs = torch.stack([dataset[int(i)]["obs"][0] for i in idx]).to(dd.device)
        x = to_model_range(obs)
        loss, parts = reconstruction_loss(model(x), x, cfg.ae_edge_weight)
        stop_on_non_finite_loss(loss, "autoencoder", step, ckpt_dir, dd)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ae.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        smooth = float(loss.detach()) if smooth is None else 0.95 * smooth + 0.05 * float(loss.detach())
        bar.update(1)
        bar.set_postfix(loss=f"{smooth:.4f}", mse=f"{parts['mse']:.4f}")
        if step % cfg.log_every == 0:
            release_freed_memory()  # conv temporaries fragment the heap: resident memory grew to GBs without this
        if dd.main and step % cfg.log_every == 0:
            append_log(out, {"stage": "autoencoder", "step": step, "loss": float(loss.detach()), **parts, "minutes": budget.elapsed_minutes()})
        if step % cfg.ckpt_every == 0:
            save(step)
    bar.close()
    if step % cfg.ckpt_every:
        save(step)

    # Normalise latents per channel on a sample of frames, so the DiT sees unit-variance inputs.
    idx = torch.randint(len(dataset), (min(512, len(dataset)),), generator=torch.Generator().manual_seed(cfg.seed))
    ae.eval()
    sample = to_model_range(torch.stack([dataset[int(i)]["obs"][0] for i in idx]).to(dd.device))
    ae.set_latent_stats(sample)
    if dd.main:
        save_autoencoder_folder(out / "autoencoder", ae)
        with torch.no_grad():
            mse = float((ae.decode(ae.encode(sample)) - sample).pow(2).mean())
        psnr = 10 * math.log10(4.0 / max(mse, 1e-10))
        append_log(out, {"stage": "autoencoder", "step": step, "final_mse": mse, "final_psnr": psnr})
        print(f"autoencoder: {step} steps, reconstruction PSNR {psnr:.2f} dB on {len(sample)} frames", file=sys.stderr)
    dd.barrier()
    return ae


def save_autoencoder_folder(folder: Path, ae: FrameAutoencoder) -> None:
    from safetensors.torch import save_file

    from worldmodel.pipeline import write_json_atomic

    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "config.json", to_dict(ae.cfg))
    tmp = folder / ".model.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in ae.state_dict().items()}, str(tmp))
    os.replace(tmp, folder / "model.safetensors")


def load_autoencoder_folder(folder: Path, device: torch.device) -> FrameAutoencoder:
    from safetensors.torch import load_file

    from worldmodel.config import AutoencoderConfig, from_dict

    cfg = from_dict(AutoencoderConfig, json.loads((folder / "config.json").read_text()), str(folder / "config.json"))
    ae = FrameAutoencoder(cfg)
    ae.load_state_dict(load_file(str(folder / "model.safetensors")))
    return ae.to(device).eval()


# ---------------------------------------------------------------- stage 2: the world model


def mirror_actions(keys: torch.Tensor, camera: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left<->right, forward<->back, camera negated: an action that should move the view the other way."""
    keys = keys.clone()
    for a, b in (("left", "right"), ("forward", "back")):
        ia, ib = KEY_INDEX[a], KEY_INDEX[b]
        keys[..., [ia, ib]] = keys[..., [ib, ia]]
    return keys, -camera


@torch.no_grad()
def predict_last(model: CausalDiT, batch: dict[str, torch.Tensor], steps: int, context_sigma: float, last_keys, last_camera, last_on: bool, seed: int, last_motion=None) -> torch.Tensor:
    """Sample the last frame of each window given the others (at context noise) and the given last action
    (and, for an egomotion model, the camera's step into the last frame)."""
    z = batch["z"]
    B, L = z.shape[:2]
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(z.shape, generator=gen).to(z.device)
    keys, camera = batch["keys"].clone(), batch["camera"].clone()
    keys[:, -1], camera[:, -1] = last_keys, last_camera
    motion = batch.get("motion")
    if motion is not None and last_motion is not None:
        motion = motion.clone()
        motion[:, -1] = last_motion
    act_mask = torch.ones(B, L, dtype=torch.bool, device=z.device)
    act_mask[:, 0] = False
    act_mask[:, -1] = last_on
    sigma = torch.full((B, L), context_sigma, device=z.device)
    x = add_noise(z, eps, sigma)
    levels = sigma_schedule(steps)
    z_hat = x[:, -1]
    for s, s_next in zip(levels[:-1], levels[1:]):
        sigma[:, -1] = s
        if s == 1.0:
            x[:, -1] = eps[:, -1]
        base = model_base(model, x, sigma, camera, motion)
        z_hat = (base + model(x, sigma, keys, camera, act_mask))[:, -1]
        if s_next > 0:
            eps_hat = (x[:, -1] - (1 - s) * z_hat) / s
            x[:, -1] = (1 - s_next) * z_hat + s_next * eps_hat
    return z_hat


@torch.no_grad()
def eval_actions(model: CausalDiT, batch: dict[str, torch.Tensor], cfg: TrainConfig) -> dict[str, float]:
    """Next-frame latent MSE with the true, null and mirrored last action, and the copy-last-frame baseline."""
    was_training = model.training
    model.eval()
    z = batch["z"]
    steps, s_c = cfg.sampling.steps, cfg.sampling.context_sigma
    true_k, true_c = batch["keys"][:, -1], batch["camera"][:, -1]
    mir_k, mir_c = mirror_actions(true_k, true_c)
    true_m = mir_m = batch["motion"][:, -1] if "motion" in batch else None
    if true_m is not None:  # the mirrored keys step the other way (right and forward negated)
        mir_m = true_m * torch.tensor([-1.0, 1.0, -1.0, 1.0], device=true_m.device)
    err = {}
    for name, k, c, m, on in (("true", true_k, true_c, true_m, True), ("null", true_k, true_c, true_m, False),
                              ("mirror", mir_k, mir_c, mir_m, True)):  # fmt: skip
        pred = predict_last(model, batch, steps, s_c, k, c, on, seed=cfg.seed, last_motion=m)
        err[f"eval_{name}"] = float((pred - z[:, -1]).pow(2).mean())
    if model.cfg.egomotion and "inv_depth" in batch:  # the depth head on clean frames, in 1/blocks
        sigma0 = torch.zeros(z.shape[:2], device=z.device)
        target = batch["inv_depth"].clamp(max=DepthHead.MAX_INVERSE_DEPTH)
        err["eval_depth_l1"] = float((model.depth(z, sigma0) - target).abs().mean())
    err["eval_copy"] = float((z[:, -2] - z[:, -1]).pow(2).mean())
    err["eval_mirror_ratio"] = err["eval_mirror"] / max(err["eval_true"], 1e-12)
    model.train(was_training)
    return err


def world_batch(clips: LatentClips, starts: torch.Tensor, cfg: TrainConfig, gen: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    idx = starts[torch.randint(len(starts), (cfg.batch_size,), generator=gen)]
    batch = {k: v.to(device) for k, v in clips.batch(idx, cfg.seq_len).items()}
    B, L = cfg.batch_size, cfg.seq_len
    act_mask = torch.rand(B, L, generator=gen) >= cfg.action_dropout
    # The first frame of a sample plays the start image half the time (no action made it, as at inference).
    act_mask[:, 0] &= torch.rand(B, generator=gen) >= 0.5
    batch["act_mask"] = act_mask.to(device)
    batch["sigma"] = sample_train_sigmas(B, L, cfg.context_prob, cfg.context_sigma_max, gen).to(device)
    batch["eps"] = torch.randn(batch["z"].shape, generator=gen).to(device)
    batch["rows"] = idx
    return batch


def build_latents(cfg: TrainConfig, out: Path, ae: FrameAutoencoder, dd: Dist, windows: WindowsFactory) -> LatentClips:
    path = out / "latents.safetensors"
    chunk = cfg.seq_len + 1  # the shortest run a training sample needs: a clip's tail shorter than this is lost
    # Rank 0 decides whether the cache matches and rewrites it if not; the others read what it left.
    fp = cache_key(ae, cfg.data, chunk) if dd.main else {}
    if dd.main and LatentClips.load(path, fp) is None:
        dataset = windows(cfg.data, chunk, chunk)
        items = (dataset[i] for i in range(len(dataset)))
        clips = encode_windows(ae, items, total=len(dataset), batch_frames=cfg.cache_batch)
        clips.save(path, fp)
        print(f"cached {len(clips.latents)} latent frames in {path}", file=sys.stderr)
    dd.barrier()
    if cfg.dit.egomotion and dd.main:
        cached = LatentClips.load(path, fp)
        if cached is not None and cached.motion is None:  # a cache from before egomotion: add the ground truth
            add_ground_truth(cached, windows(cfg.data, chunk, chunk))
            cached.save(path, fp)
        del cached
    dd.barrier()
    clips = LatentClips.load(path, fp)
    if clips is None:
        raise RuntimeError(f"{path}: latent cache missing after encoding")
    return clips


def train_world(cfg: TrainConfig, out: Path, resume: bool, ae: FrameAutoencoder, dd: Dist, windows: WindowsFactory) -> CausalDiT:
    clips = build_latents(cfg, out, ae, dd, windows)
    train_starts = clips.starts(cfg.seq_len, validation=False)
    val_starts = clips.starts(cfg.seq_len, validation=True)
    if len(train_starts) == 0:
        raise ValueError(f"no training windows of {cfg.seq_len + 1} frames in {cfg.data}")
    if len(val_starts) == 0:
        val_starts = train_starts  # a tiny dataset: evaluate on training windows rather than not at all
    eval_gen = torch.Generator().manual_seed(12345)
    eval_idx = val_starts[torch.randint(len(val_starts), (cfg.eval_batch,), generator=eval_gen)]
    eval_batch = {k: v.to(dd.device) for k, v in clips.batch(eval_idx, cfg.seq_len).items()}

    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    dit = CausalDiT(cfg.dit).to(dd.device)
    if cfg.init_from:
        _init_dit_from(dit, Path(cfg.init_from))
    bases = memory_bases_for(cfg, out, clips, dit, ae, windows, dd) if cfg.memory_base_prob > 0 else None
    memory_starts = train_starts[bases.made[train_starts + 2]] if bases is not None else None  # a memory from frame 2 on
    if memory_starts is not None and len(memory_starts) == 0:
        raise ValueError("no training window has memory bases: raise memory_clips or memory_restart")
    ema = copy.deepcopy(dit).eval().requires_grad_(False)
    decay_params = [p for n, p in dit.named_parameters() if p.ndim >= 2]
    other_params = [p for n, p in dit.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay_params, "weight_decay": cfg.weight_decay}, {"params": other_params, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.99),
    )
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + 17 + dd.rank)
    step, spent = 0, 0.0
    ckpt_dir = out / "ckpt_world"
    loaded = load_checkpoint(ckpt_dir) if resume else None
    if loaded is not None:
        tensors, meta = loaded
        dit.load_state_dict(unprefixed("model", tensors))
        ema.load_state_dict(unprefixed("ema", tensors))
        optimizer_from_flat(opt, tensors, meta)
        restore_rng(tensors, gen)
        step, spent = meta["step"], meta["minutes"]
        if dd.main:
            print(f"resumed the world model at step {step} ({spent:.1f} min)", file=sys.stderr)
    model = torch.nn.parallel.DistributedDataParallel(dit) if dd.on else dit
    budget = Budget(cfg.steps, cfg.max_minutes, spent)

    def save(step: int) -> None:
        if dd.main:
            flat, meta = optimizer_to_flat(opt)
            tensors = {**prefixed("model", dit.state_dict()), **prefixed("ema", ema.state_dict()), **flat, **rng_tensors(gen)}
            save_checkpoint(ckpt_dir, tensors, {**meta, "step": step, "minutes": budget.elapsed_minutes()})
            save_pipeline(cfg, out, ae, ema)
            plot_losses(out)

    def evaluate(step: int) -> None:
        if not dd.main:
            return  # the other ranks hold the same weights
        row = eval_actions(ema, eval_batch, cfg)  # the EMA weights are what ships
        append_log(out, {"stage": "world", "step": step, **row, "minutes": budget.elapsed_minutes()})
        tqdm.write(
            f"step {step}: next-frame MSE true {row['eval_true']:.4f} null {row['eval_null']:.4f} "
            f"mirror {row['eval_mirror']:.4f} (x{row['eval_mirror_ratio']:.2f}) copy-last {row['eval_copy']:.4f}"
            + (f" depth L1 {row['eval_depth_l1']:.3f}" if "eval_depth_l1" in row else "")
        )

    if dd.main:
        print(f"world model: {sum(p.numel() for p in dit.parameters()) / 1e6:.2f}M parameters, "
              f"{len(train_starts)} training windows, {len(val_starts)} eval windows", file=sys.stderr)
    if step == 0:
        evaluate(0)
    bar = tqdm(total=cfg.steps, initial=step, desc="world model", disable=not dd.main, dynamic_ncols=True)
    smooth = None
    model.train()
    while step < cfg.steps:
        progress, stop = dd.broadcast([budget.progress(step), float(budget.elapsed_minutes() >= cfg.max_minutes)])
        if stop:
            break
        lr = lr_at(cfg, step, progress, cfg.lr)
        for group in opt.param_groups:
            group["lr"] = lr
        # With memory bases: a share memory_base_prob of the batches come from the clips that have them.
        with_memory = bases is not None and float(torch.rand(1, generator=gen)) < cfg.memory_base_prob
        b = world_batch(clips, memory_starts if with_memory else train_starts, cfg, gen, dd.device)
        if cfg.unroll_prob > 0 and float(torch.rand(1, generator=gen)) < cfg.unroll_prob:
            b["z"] = self_conditioned_context(dit, b, cfg)
        memory = bases.sample(b["rows"], cfg.seq_len) if with_memory else None
        loss, per_frame = flow_loss(model, b["z"], b["keys"], b["camera"], b["act_mask"], b["sigma"], b["eps"],
                                    fov=dit.cfg.view_fov, motion=b.get("motion"), true_inv_depth=b.get("inv_depth"),
                                    depth_weight=cfg.depth_weight, memory=memory)  # fmt: skip
        stop_on_non_finite_loss(loss, "world model", step, ckpt_dir, dd)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dit.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        ema_update(ema, dit, min(cfg.ema_decay, (1 + step) / (10 + step)))
        smooth = float(loss.detach()) if smooth is None else 0.95 * smooth + 0.05 * float(loss.detach())
        bar.update(1)
        bar.set_postfix(loss=f"{smooth:.4f}", lr=f"{lr:.1e}")
        if step % cfg.log_every == 0:
            release_freed_memory()
        if dd.main and step % cfg.log_every == 0:
            high = b["sigma"] > 0.5
            hi_loss = float(per_frame[high.cpu()].mean()) if bool(high.any()) else float("nan")
            append_log(out, {"stage": "world", "step": step, "loss": float(loss.detach()), "loss_high_noise": hi_loss, "lr": lr, "minutes": budget.elapsed_minutes()})
        if step % cfg.eval_every == 0:
            evaluate(step)
        if step % cfg.ckpt_every == 0:
            save(step)
    bar.close()
    if step % cfg.eval_every:
        evaluate(step)
    if step % cfg.ckpt_every:
        save(step)
    dd.barrier()
    return ema


def memory_bases_for(cfg: TrainConfig, out: Path, clips: LatentClips, dit: CausalDiT, ae: FrameAutoencoder,
                     windows: WindowsFactory, dd: Dist) -> MemoryBases:  # fmt: skip
    """The world memory's bases for the cached latents, made once and kept in out/memory_bases.safetensors."""
    if dd.on:
        raise NotImplementedError("memory bases are made and trained on in one process")
    settings = {"restart": cfg.memory_restart, "clips": cfg.memory_clips, "sampling": dataclasses.asdict(cfg.sampling)}
    path, fp = out / "memory_bases.safetensors", memory_bases.fingerprint(clips, dit, fingerprint(ae), settings)
    bases = memory_bases.load(path, fp)
    if bases is None:
        chunk = cfg.seq_len + 1
        bases = memory_bases.make_memory_bases(clips, windows(cfg.data, chunk, chunk), copy.deepcopy(dit), ae, cfg.sampling,
                                               restart_every=cfg.memory_restart, max_clips=cfg.memory_clips)  # fmt: skip
        memory_bases.save(path, bases, fp)
    return bases


@torch.no_grad()
def self_conditioned_context(dit: CausalDiT, b: dict[str, torch.Tensor], cfg: TrainConfig) -> torch.Tensor:
    """A cheap autoregressive unroll (DIAMOND's fix for drift): the model's own one-step predictions of the frames
    (each from the true past, through the sampler's first step at full noise) replace the true frames as context,
    the last frame stays the true target. Errors the model makes become inputs it learns to correct."""
    z = b["z"]
    B, L = z.shape[:2]
    sigma = torch.full((B, L), cfg.sampling.context_sigma, device=z.device)
    x = add_noise(z, b["eps"], sigma)
    pred = torch.empty_like(z)
    for t in range(1, L):
        # predict frame t from pure noise in one step, given the true frames before it
        xt = x.clone()
        st = sigma.clone()
        xt[:, t] = b["eps"][:, t]
        st[:, t] = 1.0
        keys, camera, on = b["keys"][:, : t + 1], b["camera"][:, : t + 1], b["act_mask"][:, : t + 1]
        motion = b["motion"][:, : t + 1] if "motion" in b else None
        base = model_base(dit, xt[:, : t + 1], st[:, : t + 1], camera, motion)
        out = base + dit(xt[:, : t + 1], st[:, : t + 1], keys, camera, on)
        pred[:, t] = out[:, t]
    new = z.clone()
    new[:, 1:-1] = pred[:, 1:-1]
    return new


def _init_dit_from(dit: CausalDiT, folder: Path) -> None:
    from safetensors.torch import load_file

    path = folder / "dit" / "model.safetensors"
    if not path.is_file():
        return
    state = load_file(str(path))
    own = dit.state_dict()
    # A DiT without a depth head starts one that has it (the head then learns from scratch); one without a base
    # input starts it at zero (so the model starts as it was).
    new = {k for k in own if k.startswith(("depth.", "base_embed."))} - set(state)
    if all(k in own and own[k].shape == v.shape for k, v in state.items()) and len(state) + len(new) == len(own):
        dit.load_state_dict(state, strict=not new)
        print(f"initialised the DiT from {path}" + (f" (new: {', '.join(sorted(new))})" if new else ""), file=sys.stderr)


def save_pipeline(cfg: TrainConfig, out: Path, ae: FrameAutoencoder, dit: CausalDiT) -> None:
    from worldmodel.pipeline import WorldPipeline

    pipe = WorldPipeline(copy.deepcopy(ae).cpu(), copy.deepcopy(dit).cpu(), cfg.sampling)
    pipe.save_pretrained(out / "pipeline")


# ---------------------------------------------------------------- entry points


def run(cfg: TrainConfig, out: Path, resume: bool = False, windows: WindowsFactory | None = None, threads: int = 0,
        force: bool = False) -> CausalDiT | None:
    """Run the configured stages into `out` (same code with or without torchrun). Returns the EMA DiT, if trained.

    A folder that holds an earlier run is refused unless resume (continue it) or force (start over in it).
    threads > 0 sets torch's CPU threads per process (0 leaves torch's default)."""
    from worldmodel.pipeline import write_json_atomic

    if threads > 0:
        torch.set_num_threads(threads)
    check_run_folder(out, cfg.stages, resume, force)  # before any rank can write: setup_dist waits for all of them
    if windows is None:  # the clips on disk: checked before any work, read at the model's frame size
        from worldmodel.training_clips import checked_windows

        windows = checked_windows(cfg)
    dd = setup_dist()
    try:
        if dd.main:
            out.mkdir(parents=True, exist_ok=True)
            if not resume:
                clear_for_fresh_run(out, cfg.stages)
            write_json_atomic(out / "config.json", to_dict(cfg))
        dd.barrier()
        if "autoencoder" in cfg.stages:
            ae = train_autoencoder(cfg, out, resume, dd, windows)
        elif cfg.init_from:
            ae = load_autoencoder_folder(Path(cfg.init_from) / "autoencoder", dd.device)
        elif (out / "autoencoder" / "model.safetensors").is_file():
            ae = load_autoencoder_folder(out / "autoencoder", dd.device)
        else:
            raise ValueError("the world stage needs an autoencoder: add the 'autoencoder' stage, set init_from, "
                             f"or train one into {out / 'autoencoder'} first")
        ae.eval().requires_grad_(False)
        ema = None
        if "world" in cfg.stages:
            ema = train_world(cfg, out, resume, ae, dd, windows)
            if dd.main:
                print(f"done: {out / 'pipeline'}", file=sys.stderr)
        return ema
    finally:
        if dd.on:
            dist.destroy_process_group()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config JSON (see worldmodel/configs/)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/<config name> in the current folder)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    parser.add_argument("--force", action="store_true",
                        help="start over in an --out that holds an earlier run (its log, checkpoints and pipeline are replaced)")
    parser.add_argument("--data", default=None, help="clip folder, overriding the config's data")
    parser.add_argument("--max-minutes", type=float, default=None, help="time budget of the world stage, overriding the config")
    parser.add_argument("--steps", type=int, default=None, help="world-model steps, overriding the config")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads per process; on a shared machine 1 is far faster than 2 (OpenMP threads stall when a core "
        "is busy); on an idle 2-core machine use 2, or torchrun with 2 processes of 1 (0 = torch's default)",
    )


def main(args: argparse.Namespace) -> int:
    if args.resume and args.force:
        raise ValueError("--resume continues the run in --out, --force starts it over: pass one of them")
    cfg = load_train_config(args.config)
    overrides = {}
    if args.data:
        overrides["data"] = os.path.abspath(args.data)
    if args.max_minutes is not None:
        overrides["max_minutes"] = args.max_minutes
    if args.steps is not None:
        overrides["steps"] = args.steps
    cfg = dataclasses.replace(cfg, **overrides)
    if not cfg.data:
        raise ValueError("no data: set \"data\" in the config or pass --data")
    if not os.path.isdir(cfg.data):
        raise ValueError(f"{cfg.data}: no such folder of clips (the config's \"data\", or --data)")
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    run(cfg, out, resume=args.resume, threads=args.threads, force=args.force)
    return 0


if __name__ == "__main__":  # torchrun -m worldmodel.train ...
    p = argparse.ArgumentParser(prog="python -m worldmodel.train")
    add_arguments(p)
    sys.exit(main(p.parse_args()))
