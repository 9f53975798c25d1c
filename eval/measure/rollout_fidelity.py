"""(a) 8-frame rollouts from recorded frames of unseen worlds, with the clips' own actions, against
the true frames, beside copy-last, turn-last, step-last, another rollout's actions and the autoencoder's ceiling.

Each rollout starts from one true frame. It is also played with a motion context (the CONTEXT true frames
before it and their actions, Session.start), beside step-last given the same actions before the start (its walk
takes up their motion): the player is often already moving, which a start frame alone cannot tell."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from data.replay import replay_inverse_depth
from eval.fidelity import fidelity_curves
from eval.measure.rollouts import CONTEXT, HORIZON, autoencode, mean_curves, rollout, step_last, turn_last
from worldmodel.pipeline import WorldPipeline


def rollout_fidelity(pipe: WorldPipeline, val_dir: Path, per_clip: int) -> dict:
    from data.clips import find_clips, read_clip

    starts, depths, actions, truths, seeds, before, before_actions, pitches = [], [], [], [], [], [], [], []
    for path in find_clips(val_dir):
        clip = read_clip(path)
        depth = replay_inverse_depth(path)
        seeds.append(int(clip.meta.get("record", {}).get("seed", -1)))
        n = len(clip.frames)
        for t in np.linspace(20, n - HORIZON - 2, per_clip).round().astype(int):
            starts.append(clip.frames[t])
            before.append(clip.frames[t - CONTEXT : t])
            before_actions.append(list(clip.actions[t - CONTEXT : t]))
            depths.append(depth[t])
            pitches.append(clip.poses[t]["pitch"] if clip.poses is not None else np.nan)
            actions.append(list(clip.actions[t : t + HORIZON]))
            truths.append(np.asarray(clip.frames[t : t + HORIZON + 1]))
    starts, truths = np.stack(starts), np.stack(truths)
    B = len(starts)
    t0 = time.time()
    model = rollout(pipe, starts, actions)
    gen_s = time.time() - t0
    shuffled_actions = actions[B // 2 :] + actions[: B // 2]  # another rollout's actions (a derangement for B > 1)
    model_shuffled = rollout(pipe, starts, shuffled_actions)
    model_context = rollout(pipe, starts, actions, context=(np.stack(before), before_actions))
    copy_last = np.repeat(truths[:, :1], HORIZON + 1, axis=1)
    turned = turn_last(starts, actions)
    stepped = step_last(starts, np.stack(depths), actions)
    stepped_context = step_last(starts, np.stack(depths), actions, context_actions=before_actions)
    ceiling = autoencode(pipe, truths.reshape(-1, *truths.shape[2:])).reshape(truths.shape)
    # Geometry told the true start pitch (which the model reads from the picture, with its pitch estimator).
    pitches = np.array(pitches)
    true_pitch = step_last(starts, np.stack(depths), actions, start_pitch=np.nan_to_num(pitches))
    pitch_error = (float(np.nanmedian(np.abs(pipe.pitch.estimate(starts) - pitches)))
                   if pipe.pitch is not None and np.isfinite(pitches).any() else None)
    rows = {
        "model": mean_curves(model, truths),
        "model_shuffled_actions": mean_curves(model_shuffled, truths),
        "copy_last": mean_curves(copy_last, truths),
        "turn_last": mean_curves(turned, truths),
        "step_last": mean_curves(stepped, truths),
        "model_with_context": mean_curves(model_context, truths),
        "step_last_with_context": mean_curves(stepped_context, truths),
        "step_last_true_pitch": mean_curves(true_pitch, truths),
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
        "start_pitch_abs_median": float(np.nanmedian(np.abs(pitches))) if np.isfinite(pitches).any() else None,
        "pitch_error_median": pitch_error,
        "curves": rows,
    }
