"""(c) A long play under a scripted action loop, and the simulator's play of the same actions: does the
picture stay a picture (finite latents, pixel spread and edges like the truth's), summarised per 100 frames.

A long play is chaotic: the smallest change (another CPU's float rounding, another seed) sends it elsewhere after
some tens of frames, and one play's detail in a given 100 frames swings by +-0.1 of the simulator's. So the model
plays the same actions several times at once (a batch of games, each with its own noise), and a segment's figures
are the mean over the plays; the least detailed play's ratio is reported beside it.

Edge energy counts blotches as detail, so each segment also says whether the picture is still laid out like the
place: the layout error compares each row's mean colour with the simulator's frame (sky above, ground below, the
horizon where the pitch puts it), beside the same for the start frame held still."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from data.players import long_play_actions
from eval.measure.true_geometry import TrueGeometrySession, simulator_geometry
from worldmodel.pipeline import WorldPipeline
from worldmodel.strips import save_row


def frame_stats(frame: np.ndarray) -> tuple[float, float, float]:
    """(pixel mean, pixel std averaged over RGB, edge energy = mean |grey gradient|) of a uint8 frame."""
    grey = frame.astype(np.float32).mean(axis=2)
    edge = float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())
    return float(frame.mean()), float(frame.reshape(-1, 3).std(axis=0).mean()), edge


def row_profile(frame: np.ndarray) -> np.ndarray:
    """The mean colour of each row of a uint8 frame: (H, 3) float. Where the sky ends and the ground starts, and
    nothing of what lies left or right: a turn leaves it nearly unchanged, so a long play's profile can be compared
    with the simulator's frame for frame even after the two have wandered apart (the mouse's pitch is the same)."""
    return frame.astype(np.float32).mean(axis=1)


def layout_error(frame: np.ndarray, truth: np.ndarray) -> float:
    """RMS difference of two frames' row profiles, in 0-255 units: 0 when the sky, horizon and ground sit where the
    truth's do, large when the frame shows sky where the truth shows ground."""
    return float(np.sqrt(((row_profile(frame) - row_profile(truth)) ** 2).mean()))


def long_play(pipe: WorldPipeline, frames: int, strip_path: Path, plays: int = 3, scene_name: str = "plain_1",
              true_geometry: bool = False) -> dict:  # fmt: skip
    """`plays` long plays from one scene (a batch, one noise each), and the simulator's play of the same actions,
    summarised per 100 frames. The strip shows the first play. With true_geometry the world memory and the network's
    base follow the simulator's camera, and what is shown joins the memory at its depth (eval.measure.true_geometry)."""
    from data.scenes import get_scene

    scene = get_scene(scene_name)
    game = scene.game(pipe.image_size)
    acts = long_play_actions(frames)
    if true_geometry:
        truth, views, inv_depths = simulator_geometry(game, acts, pipe.image_size)
        session = TrueGeometrySession(pipe.dit, pipe.autoencoder, pipe.sampling, seed=0, pitch=pipe.pitch, views=views,
                                      inv_depths=inv_depths)  # fmt: skip
    else:
        truth = game.rollout(acts).frames
        session = pipe.new_session(seed=0)
    start = truth[0]
    first = session.start(np.stack([start] * plays))
    shown, shown_true = [first[0]], [start]
    finite = True
    stats, latent_stds = [], []  # stats[t][play] = (mean, std, edge)
    layouts = []  # layouts[t] = each play's layout error, then the frozen start frame's
    t0 = time.time()
    for t, act in enumerate(acts, start=1):
        frame = session.step(act)  # (plays, H, W, 3)
        x = session.pending.x
        finite = finite and bool(torch.isfinite(x).all())
        latent_stds.append(float(x.std()))
        stats.append([frame_stats(f) for f in frame])
        layouts.append([layout_error(f, truth[t]) for f in frame] + [layout_error(start, truth[t])])
        if t % 100 == 0:
            shown.append(frame[0])
            shown_true.append(truth[t])
    seconds = time.time() - t0
    save_row(strip_path, [shown, shown_true], scale=2, labels=["model", "truth"])
    stats_array = np.array(stats)  # (frames, plays, 3)
    layout_array = np.array(layouts)  # (frames, plays + 1)
    true_stats = [frame_stats(f) for f in truth[1:]]
    segments = []
    for a in range(0, frames, 100):
        m, g = stats_array[a : a + 100], np.array(true_stats[a : a + 100])
        true_edge = max(g[:, 2].mean(), 1e-6)
        segments.append({
            "frames": f"{a + 1}-{min(a + 100, frames)}",
            "model_std": float(m[:, :, 1].mean()), "true_std": float(g[:, 1].mean()),
            "model_edge": float(m[:, :, 2].mean()), "true_edge": float(g[:, 2].mean()),
            "edge_ratio": float(m[:, :, 2].mean() / true_edge),
            "edge_ratio_least_play": float(m[:, :, 2].mean(axis=0).min() / true_edge),
            "layout_error": float(layout_array[a : a + 100, :plays].mean()),
            "layout_error_frozen_start": float(layout_array[a : a + 100, plays].mean()),
        })  # fmt: skip
    means, stds, edges = (stats_array[:, :, i] for i in range(3))
    return {
        "frames": frames,
        "plays": plays,
        "start_scene": scene.name,
        "true_geometry": true_geometry,
        "seconds": seconds,
        "fps": frames / seconds,  # steps/s of the batch: each step makes `plays` frames
        "latents_finite": finite,
        "pixel_mean_min": float(means.min()),
        "pixel_mean_max": float(means.max()),
        "pixel_std_min": float(stds.min()),
        "pixel_std_max": float(stds.max()),
        "pixel_std_first_100": float(stds[:100].mean()),
        "pixel_std_last_100": float(stds[-100:].mean()),
        # The first frame that is a flat colour (pixel std < 2) in any play: a play collapsed (None: none did).
        "first_flat_frame": next((t + 1 for t, v in enumerate(stds.min(axis=1)) if v < 2.0), None),
        "edge_first_100": float(edges[:100].mean()),
        "edge_last_100": float(edges[-100:].mean()),
        "true_edge_mean": float(np.mean([t[2] for t in true_stats])),
        "true_pixel_std_mean": float(np.mean([t[1] for t in true_stats])),
        "latent_std_min": min(latent_stds),
        "latent_std_max": max(latent_stds),
        "segments": segments,
        "strip": str(strip_path),
        "strip_frames": list(range(0, frames + 1, 100)),
    }
