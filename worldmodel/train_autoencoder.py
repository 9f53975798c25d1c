"""Stage 1: the frame autoencoder, trained on single frames; its latents are then normalised per channel."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from worldmodel.autoencoder import FrameAutoencoder, reconstruction_loss, to_model_range
from worldmodel.config import TrainConfig
from worldmodel.distributed import Dist
from worldmodel.finite import stop_on_non_finite_loss
from worldmodel.latents import release_freed_memory
from worldmodel.lr_schedule import warmup_cosine
from worldmodel.train_log import append_log, plot_losses
from worldmodel.training import Budget, WindowsFactory, resume_progress, save_progress


class Reconstruct(torch.nn.Module):
    """The autoencoder's reconstruction and its raw latents in one forward (so DDP sees one call)."""

    def __init__(self, ae: FrameAutoencoder):
        super().__init__()
        self.ae = ae

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.ae.encode_raw(x)
        return self.ae.decode_raw(z), z


def train_autoencoder(cfg: TrainConfig, out: Path, resume: bool, dd: Dist, windows: WindowsFactory) -> FrameAutoencoder:
    torch.manual_seed(cfg.seed + dd.rank)
    ae = FrameAutoencoder(cfg.autoencoder).to(dd.device)
    anchor = None  # the autoencoder this one starts from, whose latent channels it keeps (ae_anchor_weight)
    if cfg.init_from and ae.trainable:  # a sharper autoencoder from an existing one (more latent channels, say)
        anchor = FrameAutoencoder.from_pretrained(Path(cfg.init_from) / "autoencoder").to(dd.device)
        ae.start_from(anchor)
        anchor.requires_grad_(False)
    if not ae.trainable:  # pixel space: nothing to learn, frames in [-1, 1] are the latents
        if dd.main:
            ae.save_pretrained(out / "autoencoder")
        dd.barrier()
        return ae
    dataset = windows(cfg.data, 1, 1)
    if len(dataset) == 0:
        raise ValueError(f"{cfg.data}: no frames to train the autoencoder on")
    opt = torch.optim.AdamW(ae.parameters(), lr=cfg.ae_lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + dd.rank)
    ckpt_dir = out / "ckpt_ae"
    step, spent = resume_progress(ckpt_dir, {"model": ae}, opt, gen) if resume else (0, 0.0)
    model = torch.nn.parallel.DistributedDataParallel(Reconstruct(ae)) if dd.on else Reconstruct(ae)
    budget = Budget(cfg.ae_steps, cfg.ae_minutes, spent)

    def save(step: int) -> None:
        if dd.main:
            save_progress(ckpt_dir, {"model": ae}, opt, gen, step, budget.elapsed_minutes())
            plot_losses(out)

    bar = tqdm(total=cfg.ae_steps, initial=step, desc="autoencoder", disable=not dd.main, dynamic_ncols=True)
    smooth = None
    while step < cfg.ae_steps:
        progress, stop = dd.broadcast([budget.progress(step), float(budget.elapsed_minutes() >= cfg.ae_minutes)])
        if stop:
            break
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(cfg.ae_lr, progress, cfg.min_lr_ratio, step, cfg.ae_warmup_steps)
        idx = torch.randint(len(dataset), (cfg.ae_batch_size,), generator=gen)
        obs = torch.stack([dataset[int(i)]["obs"][0] for i in idx]).to(dd.device)
        x = to_model_range(obs)
        recon, z = model(x)
        loss, parts = reconstruction_loss(recon, x, cfg.ae_edge_weight)
        if anchor is not None and cfg.ae_anchor_weight > 0:
            # Keep the channels it started from where they were, so a world model trained on them still reads
            # them: what the new channels add is detail on top.
            with torch.no_grad():
                target = anchor.encode_raw(x)
            drift = F.mse_loss(z[:, : target.shape[1]], target)
            loss = loss + cfg.ae_anchor_weight * drift
            parts["anchor"] = float(drift.detach())
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
            append_log(out, {"stage": "autoencoder", "step": step, "loss": float(loss.detach()), **parts,
                             "minutes": budget.elapsed_minutes()})
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
        ae.save_pretrained(out / "autoencoder")
        with torch.no_grad():
            mse = float((ae.decode(ae.encode(sample)) - sample).pow(2).mean())
        psnr = 10 * math.log10(4.0 / max(mse, 1e-10))
        append_log(out, {"stage": "autoencoder", "step": step, "final_mse": mse, "final_psnr": psnr})
        print(f"autoencoder: {step} steps, reconstruction PSNR {psnr:.2f} dB on {len(sample)} frames", file=sys.stderr)
    dd.barrier()
    return ae
