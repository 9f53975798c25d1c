"""How much a world model listens to the actions, during training: the error of its predicted next frame with the
true action, with the null action and with a mirrored one (left<->right, forward<->back, camera negated). A model
that ignores the actions has all three equal."""

from __future__ import annotations

import torch

from data.actions import KEY_INDEX
from worldmodel.config import TrainConfig
from worldmodel.dit import CausalDiT, DepthHead
from worldmodel.sampler import sigma_schedule
from worldmodel.schedule import add_noise, euler_step, model_base


def mirror_actions(keys: torch.Tensor, camera: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left<->right, forward<->back, camera negated: an action that should move the view the other way."""
    keys = keys.clone()
    for a, b in (("left", "right"), ("forward", "back")):
        ia, ib = KEY_INDEX[a], KEY_INDEX[b]
        keys[..., [ia, ib]] = keys[..., [ib, ia]]
    return keys, -camera


@torch.no_grad()
def predict_last(model: CausalDiT, batch: dict[str, torch.Tensor], steps: int, context_sigma: float, last_keys: torch.Tensor,
                 last_camera: torch.Tensor, last_on: bool, seed: int, last_motion: torch.Tensor | None = None) -> torch.Tensor:
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
        # A model that reads its base sees it, with nothing remembered (the probe runs without the world memory).
        base_in = torch.cat([base, torch.zeros_like(base[:, :, :1])], dim=2) if model.cfg.base_input else None
        z_hat = (base + model(x, sigma, keys, camera, act_mask, base_in=base_in))[:, -1]
        if s_next > 0:
            x[:, -1] = euler_step(x[:, -1], z_hat, s, s_next)
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
