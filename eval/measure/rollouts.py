"""What the measurements share: batched model rollouts, the autoencoder's ceiling, and the geometric
baselines (the last true frame turned, or turned and stepped) that a model's frames are compared with."""

from __future__ import annotations

import numpy as np
import torch

from data.actions import Action, stack
from data.physics import FOV
from eval.fidelity import fidelity_curves
from worldmodel.autoencoder import to_model_range, to_uint8
from worldmodel.egomotion import EgoMotion
from worldmodel.pipeline import WorldPipeline
from worldmodel.schedule import move_view, turn_view

HORIZON = 8
CONTEXT = 4  # frames of motion context a rollout may be given


def rollout(pipe: WorldPipeline, starts: np.ndarray, actions: list[list[Action]], seed: int = 0,
            context: tuple[np.ndarray, list[list[Action]]] | None = None) -> np.ndarray:
    """Batched sessions: starts (B, H, W, 3), actions B lists of T -> (B, T + 1, H, W, 3), frame 0 the start.
    context: a motion context, the K frames before each start (B, K, H, W, 3) and B lists of the K actions that
    led on from them (Session.start)."""
    session = pipe.new_session(seed=seed)
    if context is not None:
        frames, acts = context
        context = (frames, [[a[k] for a in acts] for k in range(len(acts[0]))])  # K steps of B actions
    frames = [session.start(starts, context=context)]
    for t in range(len(actions[0])):
        frames.append(session.step([a[t] for a in actions]))
    return np.stack(frames, axis=1)


@torch.no_grad()
def autoencode(pipe: WorldPipeline, frames: np.ndarray) -> np.ndarray:
    """Frames (N, H, W, 3) through the autoencoder and back: the best any generated frame can look."""
    x = to_model_range(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2))
    return to_uint8(pipe.autoencoder.decode(pipe.autoencoder.encode(x))).permute(0, 2, 3, 1).numpy()


def turn_last(starts: np.ndarray, actions: list[list[Action]]) -> np.ndarray:
    """The start frame turned by each frame's mouse move in turn, nothing else: (B, T + 1, H, W, 3)."""
    frame = torch.from_numpy(np.ascontiguousarray(starts)).permute(0, 3, 1, 2).float()
    out = [starts]
    for t in range(len(actions[0])):
        camera = torch.tensor([a[t].camera for a in actions], dtype=torch.float32)
        frame = turn_view(frame, camera, FOV, mode="bilinear")  # on pixels bilinear scores higher: the stronger baseline
        out.append(frame.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy())
    return np.stack(out, axis=1)


def step_last(starts: np.ndarray, depths: np.ndarray, actions: list[list[Action]],
              context_actions: list[list[Action]] | None = None, start_pitch: np.ndarray | None = None) -> np.ndarray:
    """The start frame turned by the mouse and stepped by the keys (worldmodel.egomotion, from rest) at the
    simulator's true inverse depth (B, H, W), the depth moved along with the picture, nothing else:
    (B, T + 1, H, W, 3). The geometry an egomotion model's base starts from, with perfect depth.
    context_actions: B lists of the actions before the start (a motion context's): the walk takes up their
    motion first, as a session given that context does, so the geometry knows what the model knows.
    start_pitch: (B,) degrees each start looks up (the walk's steps follow it); level when None."""
    frame = torch.from_numpy(np.ascontiguousarray(starts)).permute(0, 3, 1, 2).float()
    depth = torch.from_numpy(np.ascontiguousarray(depths)).float()
    pitch = np.zeros(len(starts)) if start_pitch is None else np.asarray(start_pitch, np.float64)
    if context_actions is not None:  # the walk starts before the context, where its mouse moves then lead
        pitch = pitch - np.array([sum(a.camera[0] for a in before) for before in context_actions])
    walks = [EgoMotion(pitch=float(p)) for p in pitch]
    for walk, before in zip(walks, context_actions or [[] for _ in starts]):
        for a in before:
            keys, _ = stack([a])
            walk.step(keys[0], a.camera)
    out = [starts]
    for t in range(len(actions[0])):
        camera = torch.tensor([a[t].camera for a in actions], dtype=torch.float32)
        keys, _ = stack([a[t] for a in actions])
        motion = torch.from_numpy(np.stack([w.step(k, a[t].camera) for w, k, a in zip(walks, keys, actions)]))
        moved = move_view(torch.cat([frame, depth[:, None]], dim=1), camera, FOV, depth, motion, mode="bilinear")
        frame, depth = moved[:, :3], moved[:, 3]
        out.append(frame.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy())
    return np.stack(out, axis=1)


def mean_curves(videos: np.ndarray, truth: np.ndarray) -> dict[str, list[float]]:
    """Mean per-horizon PSNR/SSIM over videos (B, T + 1, ...) vs truth (B, T + 1, ...); frame 0 left out."""
    curves = [fidelity_curves(v[1:], g[1:]) for v, g in zip(videos, truth)]
    return {k: np.mean([c[k] for c in curves], axis=0).tolist() for k in ("psnr", "ssim")}
