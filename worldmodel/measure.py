"""Measure a world-model pipeline against the simulator, on worlds it never trained on.

    worldmodel record --out runs/val64 --frames 10000 --seed 100000     # once: unseen worlds (training used seed 0)
    python -m worldmodel.measure --pipeline assets/wm-default --out runs/ship --strip docs/images/model_strip.png

Writes OUT/measure.json, OUT/measure.md, OUT/rollout_1000.png (and the model and revisit strips). Five measurements:

(a) fidelity: 8-frame rollouts from frames of runs/val64 (recorded with --seed 100000; training used seed 0),
    the clip's own recorded actions; PSNR/SSIM per frame against the clip's true frames (eval.fidelity), beside
    copy-the-last-frame, turn-the-last-frame (the last true frame turned by the mouse moves: the geometry the
    model's residual base starts from, and nothing else), step-the-last-frame (turned and stepped by the keys at
    the simulator's true depth: an egomotion model's geometry with perfect depth), the same rollouts with
    another rollout's actions, and the autoencoder's ceiling.
(b) responsiveness: from the fixed scenes (data.scenes, seeds 1000-8003), 8 frames of yaw +10, yaw -10, no-op
    and forward, generated and simulated. Yaw read back from the pictures (eval.pose.camera_turn and phase
    correlation), forward read back as radial expansion of the optical flow (eval.flow.dis_flow); and which
    true condition's frames each generated video is closest to (chance 25%).
(c) a 1,000-frame play under a scripted action loop: finite latents, per-frame pixel mean/std ranges.
(d) the strip: start frame + 12 generated frames (model row above the simulator's row).
(e) revisits (worldmodel.revisit): a full circle, out and back, and an A -> B -> C -> A loop from the first scene
    of each biome; the last frame against the first, model and simulator; a strip of a full circle.

Everything runs on one thread (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from data.actions import Action, stack
from data.physics import FOV
from data.replay import replay_inverse_depth
from eval.fidelity import fidelity_curves, psnr
from eval.flow import dis_flow, grid_matches, radial_flow
from eval.pose import camera_turn
from worldmodel.autoencoder import to_model_range, to_uint8
from worldmodel.pipeline import WorldPipeline
from worldmodel.egomotion import EgoMotion
from worldmodel.revisit import measure_revisits, simulate, strip_rows
from worldmodel.revisit import markdown as revisit_markdown
from worldmodel.schedule import move_view, turn_view
from worldmodel.strips import save_row

REPO = Path(__file__).resolve().parents[1]

HORIZON = 8
TURN_DEG = 10.0


# ---------------------------------------------------------------- generation helpers


def rollout(pipe: WorldPipeline, starts: np.ndarray, actions: list[list[Action]], seed: int = 0) -> np.ndarray:
    """Batched sessions: starts (B, H, W, 3), actions B lists of T -> (B, T + 1, H, W, 3), frame 0 the start."""
    session = pipe.new_session(seed=seed)
    frames = [session.start(starts)]
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


def step_last(starts: np.ndarray, depths: np.ndarray, actions: list[list[Action]]) -> np.ndarray:
    """The start frame turned by the mouse and stepped by the keys (worldmodel.egomotion, from rest) at the
    simulator's true inverse depth (B, H, W), the depth moved along with the picture, nothing else:
    (B, T + 1, H, W, 3). The geometry an egomotion model's base starts from, with perfect depth."""
    frame = torch.from_numpy(np.ascontiguousarray(starts)).permute(0, 3, 1, 2).float()
    depth = torch.from_numpy(np.ascontiguousarray(depths)).float()
    walks = [EgoMotion() for _ in starts]
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


# ---------------------------------------------------------------- (a) fidelity on unseen worlds


def fidelity(pipe: WorldPipeline, val_dir: Path, per_clip: int) -> dict:
    from data.clips import find_clips, read_clip

    starts, depths, actions, truths, seeds = [], [], [], [], []
    for path in find_clips(val_dir):
        clip = read_clip(path)
        depth = replay_inverse_depth(path)
        seeds.append(int(clip.meta.get("record", {}).get("seed", -1)))
        n = len(clip.frames)
        for t in np.linspace(20, n - HORIZON - 2, per_clip).round().astype(int):
            starts.append(clip.frames[t])
            depths.append(depth[t])
            actions.append(list(clip.actions[t : t + HORIZON]))
            truths.append(np.asarray(clip.frames[t : t + HORIZON + 1]))
    starts, truths = np.stack(starts), np.stack(truths)
    B = len(starts)
    t0 = time.time()
    model = rollout(pipe, starts, actions)
    gen_s = time.time() - t0
    shuffled_actions = actions[B // 2 :] + actions[: B // 2]  # another rollout's actions (a derangement for B > 1)
    model_shuffled = rollout(pipe, starts, shuffled_actions)
    copy_last = np.repeat(truths[:, :1], HORIZON + 1, axis=1)
    turned = turn_last(starts, actions)
    stepped = step_last(starts, np.stack(depths), actions)
    ceiling = autoencode(pipe, truths.reshape(-1, *truths.shape[2:])).reshape(truths.shape)
    rows = {
        "model": mean_curves(model, truths),
        "model_shuffled_actions": mean_curves(model_shuffled, truths),
        "copy_last": mean_curves(copy_last, truths),
        "turn_last": mean_curves(turned, truths),
        "step_last": mean_curves(stepped, truths),
        "autoencoder_ceiling": mean_curves(ceiling, truths),
    }
    per_rollout_model = [np.mean(fidelity_curves(v[1:], g[1:])["psnr"]) for v, g in zip(model, truths)]
    per_rollout_copy = [np.mean(fidelity_curves(v[1:], g[1:])["psnr"]) for v, g in zip(copy_last, truths)]
    return {
        "source": f"{val_dir} ({len(seeds)} clips, record seed {sorted(set(seeds))}; training data: seed 0)",
        "rollouts": B,
        "horizon": HORIZON,
        "generate_seconds": gen_s,
        **{f"{name}_psnr": float(np.mean(c["psnr"])) for name, c in rows.items()},
        **{f"{name}_ssim": float(np.mean(c["ssim"])) for name, c in rows.items()},
        "model_beats_copy_fraction": float(np.mean(np.array(per_rollout_model) > np.array(per_rollout_copy))),
        "curves": rows,
    }


# ---------------------------------------------------------------- (b) responsiveness


def phase_shift_x(a: np.ndarray, b: np.ndarray) -> float:
    """Horizontal shift (pixels) of b relative to a by phase correlation of the grey images."""
    import cv2

    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float32)
    window = cv2.createHanningWindow(ga.shape[::-1], cv2.CV_32F)
    (dx, _dy), _response = cv2.phaseCorrelate(ga, gb, window)
    return float(dx)


CONDITIONS: dict[str, Action] = {
    "yaw_right": Action(camera=(0.0, TURN_DEG)),
    "yaw_left": Action(camera=(0.0, -TURN_DEG)),
    "noop": Action(),
    "forward": Action(frozenset({"forward"})),
}


def flow_shift_x(a: np.ndarray, b: np.ndarray) -> float:
    """Median horizontal flow (pixels) a -> b over grid points whose forward and backward flows agree (0 if none)."""
    pts_a, pts_b, ok = grid_matches(a, b)
    return float(np.median(pts_b[ok, 0] - pts_a[ok, 0])) if ok.any() else 0.0


def video_stats(video: np.ndarray) -> dict[str, float]:
    pairs = list(zip(video[:-1], video[1:]))
    yaw = [camera_turn(a, b)[1] for a, b in pairs]
    return {
        "yaw_deg_per_frame": float(np.nanmean(yaw)) if not all(map(math.isnan, yaw)) else math.nan,
        "flow_x_px_per_frame": float(np.mean([flow_shift_x(a, b) for a, b in pairs])),
        "shift_px_per_frame": float(np.mean([phase_shift_x(a, b) for a, b in pairs])),
        "radial_px_per_frame": float(np.mean([radial_flow(a, b) for a, b in pairs])),
    }


def responsiveness(pipe: WorldPipeline, n_scenes: int) -> dict:
    from eval.suite import pick_scenes

    scenes = pick_scenes(n_scenes)
    size = pipe.image_size
    names = list(CONDITIONS)
    truth = {(s.name, c): simulate(s, [CONDITIONS[c]] * HORIZON, size) for s in scenes for c in names}
    keys = list(truth)
    starts = np.stack([truth[k][0] for k in keys])
    gen = rollout(pipe, starts, [[CONDITIONS[c]] * HORIZON for _, c in keys])
    generated = {k: v for k, v in zip(keys, gen)}

    stats: dict[str, dict[str, dict[str, float]]] = {"model": {}, "simulator": {}}
    for source, videos in (("model", generated), ("simulator", truth)):
        for c in names:
            rows = [video_stats(videos[(s.name, c)]) for s in scenes]
            stats[source][c] = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
            if c.startswith("yaw"):
                sign = 1.0 if c == "yaw_right" else -1.0
                stats[source][c]["yaw_sign_correct"] = float(np.mean([np.sign(r["yaw_deg_per_frame"]) == sign for r in rows]))

    # Which true condition (same scene) is each generated video closest to, by PSNR over its frames 1..8?
    confusion = {c: {d: 0 for d in names} for c in names}
    closer_than_noop = {c: [] for c in names if c != "noop"}
    for s in scenes:
        for c in names:
            g = generated[(s.name, c)][1:]
            scores = {d: float(np.mean([psnr(a, b) for a, b in zip(g, truth[(s.name, d)][1:])])) for d in names}
            confusion[c][max(scores, key=scores.get)] += 1
            if c != "noop":
                closer_than_noop[c].append(scores[c] - scores["noop"])
    correct = sum(confusion[c][c] for c in names)
    return {
        "scenes": [s.name for s in scenes],
        "turn_deg_per_frame": TURN_DEG,
        "frames": HORIZON,
        "stats": stats,
        "nearest_true_condition_confusion": confusion,
        "nearest_true_condition_accuracy": correct / (len(scenes) * len(names)),
        "psnr_gain_vs_true_noop_db": {c: float(np.mean(v)) for c, v in closer_than_noop.items()},
    }


def walking_in_play(pipe: WorldPipeline, val_dir: Path, max_windows: int = 40) -> dict:
    """Walking where the player is already walking (a standing start also has to get going): windows of the
    recorded clips where forward was held with no turn for the 2 frames before and the 8 after; the model's
    8 frames with those actions and with no-op, the outward optical flow of each beside the true frames'."""
    from data.clips import find_clips, read_clip

    starts, actions, truths = [], [], []
    for path in find_clips(val_dir):
        clip = read_clip(path)
        t = 10
        while t < len(clip.frames) - HORIZON - 2 and len(starts) < max_windows:
            window = clip.actions[t - 2 : t + HORIZON]
            if all(a.keys == frozenset({"forward"}) and max(map(abs, a.camera)) < 0.5 for a in window):
                starts.append(clip.frames[t])
                actions.append(list(clip.actions[t : t + HORIZON]))
                truths.append(np.asarray(clip.frames[t : t + HORIZON + 1]))
                t += 30  # windows apart
            else:
                t += 1
    if not starts:
        return {"windows": 0}
    forward = rollout(pipe, np.stack(starts), actions)
    still = rollout(pipe, np.stack(starts), [[Action()] * HORIZON for _ in actions])

    def radial(videos: np.ndarray | list[np.ndarray]) -> float:
        return float(np.mean([radial_flow(a, b) for v in videos for a, b in zip(v[:-1], v[1:])]))

    return {"windows": len(starts), "true_radial": radial(truths), "model_forward_radial": radial(forward), "model_noop_radial": radial(still)}


# ---------------------------------------------------------------- (c) long play


def long_play_actions(n: int) -> list[Action]:
    """A scripted loop of 20-frame segments: walk, turn while walking, look around, jump, back up."""
    segments = [
        Action(frozenset({"forward"})),
        Action(frozenset({"forward"}), (0.0, 5.0)),
        Action(camera=(0.0, -8.0)),
        Action(),
        Action(frozenset({"forward", "jump"})),
        Action(camera=(3.0, 0.0)),
        Action(camera=(-3.0, 4.0)),
        Action(frozenset({"back"})),
        Action(frozenset({"left"})),
        Action(frozenset({"forward", "sprint"}), (0.0, -3.0)),
    ]
    return [segments[(t // 20) % len(segments)] for t in range(n)]


def frame_stats(frame: np.ndarray) -> tuple[float, float, float]:
    """(pixel mean, pixel std averaged over RGB, edge energy = mean |grey gradient|) of a uint8 frame."""
    grey = frame.astype(np.float32).mean(axis=2)
    edge = float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())
    return float(frame.mean()), float(frame.reshape(-1, 3).std(axis=0).mean()), edge


def long_play(pipe: WorldPipeline, frames: int, strip_path: Path) -> dict:
    """A long play from one scene, and the simulator's play of the same actions, summarised per 100 frames."""
    from data.scenes import get_scene

    scene = get_scene("plain_1")
    game = scene.game(pipe.image_size)
    start = game.reset()
    acts = long_play_actions(frames)
    truth = [start] + [game.step(a) for a in acts]
    session = pipe.new_session(seed=0)
    shown, shown_true = [session.start(start)], [start]
    finite = True
    stats, latent_stds = [], []
    t0 = time.time()
    for t, act in enumerate(acts, start=1):
        frame = session.step(act)
        x = session.pending.x
        finite = finite and bool(torch.isfinite(x).all())
        latent_stds.append(float(x.std()))
        stats.append(frame_stats(frame))
        if t % 100 == 0:
            shown.append(frame)
            shown_true.append(truth[t])
    seconds = time.time() - t0
    save_row(strip_path, [shown, shown_true], scale=2, labels=["model", "truth"])
    true_stats = [frame_stats(f) for f in truth[1:]]
    segments = []
    for a in range(0, frames, 100):
        m, g = np.array(stats[a : a + 100]), np.array(true_stats[a : a + 100])
        segments.append({
            "frames": f"{a + 1}-{min(a + 100, frames)}",
            "model_std": float(m[:, 1].mean()), "true_std": float(g[:, 1].mean()),
            "model_edge": float(m[:, 2].mean()), "true_edge": float(g[:, 2].mean()),
            "edge_ratio": float(m[:, 2].mean() / max(g[:, 2].mean(), 1e-6)),
        })  # fmt: skip
    means, stds, edges = (np.array(stats)[:, i] for i in range(3))
    return {
        "frames": frames,
        "start_scene": scene.name,
        "seconds": seconds,
        "fps": frames / seconds,
        "latents_finite": finite,
        "pixel_mean_min": float(means.min()),
        "pixel_mean_max": float(means.max()),
        "pixel_std_min": float(stds.min()),
        "pixel_std_max": float(stds.max()),
        "pixel_std_first_100": float(stds[:100].mean()),
        "pixel_std_last_100": float(stds[-100:].mean()),
        # The first frame that is a flat colour (pixel std < 2): the play has collapsed (None: it never did).
        "first_flat_frame": next((t + 1 for t, v in enumerate(stds) if v < 2.0), None),
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


# ---------------------------------------------------------------- (d) the strip


STRIP_ACTIONS = (
    [Action(frozenset({"forward"}))] * 4 + [Action(camera=(0.0, 10.0))] * 4 + [Action(frozenset({"forward"}), (0.0, -10.0))] * 4
)


def model_strip(pipe: WorldPipeline, path: Path, scene_name: str = "forest_0") -> dict:
    from data.scenes import get_scene

    scene = get_scene(scene_name)
    truth = simulate(scene, STRIP_ACTIONS, pipe.image_size)
    gen = rollout(pipe, truth[:1], [STRIP_ACTIONS])[0]
    save_row(path, [list(gen), list(truth)], scale=2, labels=["model", "truth"])
    return {
        "path": str(path),
        "scene": scene_name,
        "actions": "frames 1-4 forward, 5-8 yaw +10 deg/frame, 9-12 forward + yaw -10 deg/frame",
        "psnr_per_frame": [psnr(a, b) for a, b in zip(gen[1:], truth[1:])],
    }


# ---------------------------------------------------------------- (e) revisits


def revisits(pipe: WorldPipeline, strip_path: Path) -> dict:
    """worldmodel.revisit's paths, and the strip of the first scene's full circle."""
    r = measure_revisits(pipe)
    save_row(strip_path, strip_rows(r), scale=2, labels=["model", "truth"])
    r.pop("strip")
    r["strip_path"] = str(strip_path)
    return r


# ---------------------------------------------------------------- report


def markdown(r: dict) -> str:
    f, s, p = r["fidelity"], r["responsiveness"], r["long_play"]
    lines = [
        f"# Measurements of {r['pipeline']}",
        "",
        f"sampling: `{json.dumps(r['sampling'])}`",
        "",
        f"## (a) {f['horizon']}-frame rollouts on unseen worlds ({f['rollouts']} rollouts)",
        f"source: {f['source']}",
        "",
        "| frames | PSNR dB | SSIM |",
        "|---|---|---|",
    ]
    for name in ("model", "model_shuffled_actions", "copy_last", "turn_last", "step_last", "autoencoder_ceiling"):
        if name + "_psnr" in f:
            lines.append(f"| {name} | {f[name + '_psnr']:.2f} | {f[name + '_ssim']:.3f} |")
    lines += [
        "",
        f"model beats copy-last on {100 * f['model_beats_copy_fraction']:.0f}% of rollouts.",
        "PSNR by horizon (model / copy-last): "
        + ", ".join(f"t{t + 1} {m:.1f}/{c:.1f}" for t, (m, c) in enumerate(zip(f["curves"]["model"]["psnr"], f["curves"]["copy_last"]["psnr"]))),
        "",
        f"## (b) responsiveness ({len(s['scenes'])} scenes x {s['frames']} frames, turns {s['turn_deg_per_frame']} deg/frame)",
        "",
        "| condition | source | yaw deg/frame (eval.pose) | x flow px/frame (median) | x shift px/frame (phase corr.) | radial flow px/frame | yaw sign correct |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in CONDITIONS:
        for source in ("model", "simulator"):
            st = s["stats"][source][c]
            sign = f"{st['yaw_sign_correct']:.2f}" if "yaw_sign_correct" in st else ""
            lines.append(f"| {c} | {source} | {st['yaw_deg_per_frame']:+.2f} | {st['flow_x_px_per_frame']:+.2f} | {st['shift_px_per_frame']:+.2f} | {st['radial_px_per_frame']:+.3f} | {sign} |")
    lines += [
        "",
        f"nearest true condition (by PSNR, same scene): accuracy {s['nearest_true_condition_accuracy']:.2f} (chance 0.25)",
        f"confusion (generated -> nearest true): `{json.dumps(s['nearest_true_condition_confusion'])}`",
        f"PSNR gain of the true condition over true no-op: `{json.dumps({k: round(v, 2) for k, v in s['psnr_gain_vs_true_noop_db'].items()})}`",
        "",
        f"walking in play ({r['walking']['windows']} windows of recorded forward walking): outward flow px/frame, "
        f"truth {r['walking'].get('true_radial', float('nan')):+.3f}, model with forward {r['walking'].get('model_forward_radial', float('nan')):+.3f}, "
        f"model with no-op {r['walking'].get('model_noop_radial', float('nan')):+.3f}",
        "",
        f"## (c) {p['frames']}-frame play",
        f"latents finite: {p['latents_finite']}; first flat frame (pixel std < 2): {p['first_flat_frame']}; pixel mean {p['pixel_mean_min']:.1f}..{p['pixel_mean_max']:.1f}; "
        f"pixel std {p['pixel_std_min']:.1f}..{p['pixel_std_max']:.1f} (first 100 frames {p['pixel_std_first_100']:.1f}, "
        f"last 100 {p['pixel_std_last_100']:.1f}); latent std {p['latent_std_min']:.2f}..{p['latent_std_max']:.2f}; "
        f"{p['fps']:.1f} frames/s (1 thread, machine shared). Strip: {p['strip']} (every 100th frame, model above the simulator).",
        "",
        "| frames | model pixel std | true pixel std | model edge energy | true edge energy | model / true edge |",
        "|---|---|---|---|---|---|",
        *[f"| {g['frames']} | {g['model_std']:.1f} | {g['true_std']:.1f} | {g['model_edge']:.1f} | {g['true_edge']:.1f} | {g['edge_ratio']:.2f} |" for g in p["segments"]],
        "",
        f"## (d) strip: {r['strip']['path']} ({r['strip']['scene']}; {r['strip']['actions']})",
        "PSNR per frame: " + ", ".join(f"{v:.1f}" for v in r["strip"]["psnr_per_frame"]),
        "",
    ]
    if "revisit" in r:
        lines += [f"## (e) revisits: paths that come back to their start (strip: {r['revisit']['strip_path']})", "",
                  revisit_markdown(r["revisit"])]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--strip", required=True, help="PNG for the model strip (docs/images/model_strip.png)")
    parser.add_argument("--val", default=str(REPO / "runs" / "val64"))
    parser.add_argument("--per-clip", type=int, default=2, help="rollouts per val clip (20 clips)")
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--long-frames", type=int, default=1000)
    parser.add_argument("--revisit-strip", default=str(REPO / "docs" / "images" / "revisit_strip.png"),
                        help="PNG of a full circle, model above the simulator")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from data.clips import find_clips

    if not Path(args.val).is_dir() or not find_clips(args.val):
        raise SystemExit(f"{args.val}: no recorded clips; record the unseen worlds first: "
                         f"worldmodel record --out {args.val} --frames 10000 --seed 100000")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = WorldPipeline.from_pretrained(args.pipeline)
    result: dict = {
        "pipeline": args.pipeline,
        "sampling": {k: getattr(pipe.sampling, k) for k in ("steps", "context_sigma", "shift", "guidance", "guidance_steps")},
        "dit_parameters": sum(p.numel() for p in pipe.dit.parameters()),
        "autoencoder_parameters": sum(p.numel() for p in pipe.autoencoder.parameters()),
    }
    t0 = time.time()
    for name, fn in (
        ("fidelity", lambda: fidelity(pipe, Path(args.val), args.per_clip)),
        ("responsiveness", lambda: responsiveness(pipe, args.scenes)),
        ("walking", lambda: walking_in_play(pipe, Path(args.val))),
        ("long_play", lambda: long_play(pipe, args.long_frames, out / "rollout_1000.png")),
        ("strip", lambda: model_strip(pipe, Path(args.strip))),
        ("revisit", lambda: revisits(pipe, Path(args.revisit_strip))),
    ):
        t = time.time()
        result[name] = fn()
        print(f"{name}: {time.time() - t:.0f} s", file=sys.stderr, flush=True)
    result["seconds"] = time.time() - t0
    for name, text in (("measure.json", json.dumps(result, indent=2) + "\n"), ("measure.md", markdown(result))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
