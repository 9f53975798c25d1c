"""Stage 2: the world model. The dataset is encoded once into cached latents (worldmodel/latents.py), then the
causal DiT learns by diffusion forcing on runs of latent frames (worldmodel/schedule.py), its EMA weights saved as
the pipeline. For a DiT that reads its base, a share of the batches take the world memory's bases
(worldmodel/memory_bases.py)."""

from __future__ import annotations

import copy
import dataclasses
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from worldmodel import memory_bases
from worldmodel.action_probe import eval_actions
from worldmodel.autoencoder import FrameAutoencoder
from worldmodel.config import TrainConfig
from worldmodel.distributed import Dist
from worldmodel.dit import CausalDiT, widen_latent_channels
from worldmodel.finite import stop_on_non_finite_loss
from worldmodel.latents import LatentClips, add_ground_truth, cache_key, encode_windows, fingerprint, release_freed_memory
from worldmodel.lr_schedule import warmup_cosine
from worldmodel.memory_bases import MemoryBases
from worldmodel.schedule import add_noise, flow_loss, model_base, sample_train_sigmas
from worldmodel.train_log import append_log, plot_losses
from worldmodel.training import Budget, WindowsFactory, ema_update, resume_progress, save_progress


def world_batch(
    clips: LatentClips, starts: torch.Tensor, cfg: TrainConfig, gen: torch.Generator, device: torch.device
) -> dict[str, torch.Tensor]:
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
    ckpt_dir = out / "ckpt_world"
    step, spent = resume_progress(ckpt_dir, {"model": dit, "ema": ema}, opt, gen) if resume else (0, 0.0)
    if step and dd.main:
        print(f"resumed the world model at step {step} ({spent:.1f} min)", file=sys.stderr)
    model = torch.nn.parallel.DistributedDataParallel(dit) if dd.on else dit
    budget = Budget(cfg.steps, cfg.max_minutes, spent)

    def save(step: int) -> None:
        if dd.main:
            save_progress(ckpt_dir, {"model": dit, "ema": ema}, opt, gen, step, budget.elapsed_minutes())
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
        lr = warmup_cosine(cfg.lr, progress, cfg.min_lr_ratio, step, cfg.warmup_steps)
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
            append_log(out, {"stage": "world", "step": step, "loss": float(loss.detach()), "loss_high_noise": hi_loss,
                             "lr": lr, "minutes": budget.elapsed_minutes()})
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
    if state["x_embed.weight"].shape[1] < own["x_embed.weight"].shape[1]:  # an autoencoder with more channels now
        state = widen_latent_channels(state, dit.cfg.latent_channels, dit.cfg.patch_size)
    # A DiT without a depth head starts one that has it (the head then learns from scratch); one without a base
    # input starts it at zero (so the model starts as it was).
    new = {k for k in own if k.startswith(("depth.", "base_embed."))} - set(state)
    if all(k in own and own[k].shape == v.shape for k, v in state.items()) and len(state) + len(new) == len(own):
        dit.load_state_dict(state, strict=not new)
        print(f"initialised the DiT from {path}" + (f" (new: {', '.join(sorted(new))})" if new else ""), file=sys.stderr)


def save_pipeline(cfg: TrainConfig, out: Path, ae: FrameAutoencoder, dit: CausalDiT) -> None:
    from worldmodel.pipeline import WorldPipeline
    from worldmodel.pitch import PitchEstimator

    pitch = PitchEstimator.from_pretrained(out / "pitch") if (out / "pitch" / "model.safetensors").is_file() else None
    pipe = WorldPipeline(copy.deepcopy(ae).cpu(), copy.deepcopy(dit).cpu(), cfg.sampling, pitch=pitch)
    pipe.save_pretrained(out / "pipeline")
