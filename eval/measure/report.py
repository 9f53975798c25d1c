"""measure.md: the measurements of one pipeline as Markdown tables."""

from __future__ import annotations

import json

from eval.measure.responsiveness import CONDITIONS
from eval.measure.revisit import markdown as revisit_markdown
from eval.measure.rollouts import CONTEXT


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
    for name in ("model", "model_shuffled_actions", "copy_last", "turn_last", "step_last", "model_with_context",
                 "step_last_with_context", "step_last_true_pitch", "autoencoder_ceiling"):
        if name + "_psnr" in f:
            lines.append(f"| {name} | {f[name + '_psnr']:.2f} | {f[name + '_ssim']:.3f} |")
    lines += [
        "",
        f"`_with_context`: given the {CONTEXT} true frames before the start and their actions (a motion context; "
        "step-last's walk then takes up their motion too).",
        "`step_last_true_pitch`: step-last's walk told each start's true pitch (the model reads it from the picture"
        + (f"; its estimate is off by {f['pitch_error_median']:.1f} degrees, median" if f.get("pitch_error_median") is not None
           else "; this model has no pitch estimator and starts level")
        + (f"; the starts look {f['start_pitch_abs_median']:.0f} degrees up or down, median)."
           if f.get("start_pitch_abs_median") is not None else ")."),
        f"model beats copy-last on {100 * f['model_beats_copy_fraction']:.0f}% of rollouts.",
        "PSNR by horizon (model / copy-last): "
        + ", ".join(
            f"t{t + 1} {m:.1f}/{c:.1f}"
            for t, (m, c) in enumerate(zip(f["curves"]["model"]["psnr"], f["curves"]["copy_last"]["psnr"]))
        ),
        "",
        f"## (b) responsiveness ({len(s['scenes'])} scenes x {s['frames']} frames, turns {s['turn_deg_per_frame']} deg/frame)",
        "",
        "| condition | source | yaw deg/frame (eval.pose) | x flow px/frame (median) | x shift px/frame (phase corr.) "
        "| radial flow px/frame | yaw sign correct |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in CONDITIONS:
        for source in ("model", "simulator"):
            st = s["stats"][source][c]
            sign = f"{st['yaw_sign_correct']:.2f}" if "yaw_sign_correct" in st else ""
            lines.append(
                f"| {c} | {source} | {st['yaw_deg_per_frame']:+.2f} | {st['flow_x_px_per_frame']:+.2f} "
                f"| {st['shift_px_per_frame']:+.2f} | {st['radial_px_per_frame']:+.3f} | {sign} |"
            )
    lines += [
        "",
        f"nearest true condition (by PSNR, same scene): accuracy {s['nearest_true_condition_accuracy']:.2f} (chance 0.25)",
        f"confusion (generated -> nearest true): `{json.dumps(s['nearest_true_condition_confusion'])}`",
        "PSNR gain of the true condition over true no-op: "
        f"`{json.dumps({k: round(v, 2) for k, v in s['psnr_gain_vs_true_noop_db'].items()})}`",
        "",
        f"walking in play ({r['walking']['windows']} windows of recorded forward walking): outward flow px/frame, "
        f"truth {r['walking'].get('true_radial', float('nan')):+.3f}, "
        f"model with forward {r['walking'].get('model_forward_radial', float('nan')):+.3f}, "
        f"model with no-op {r['walking'].get('model_noop_radial', float('nan')):+.3f}",
        "",
        f"## (c) {p['frames']}-frame play",
        f"The same actions played {p.get('plays', 1)} times at once (a batch, each game with its own noise: one long play "
        "is chaotic, and its detail in any 100 frames swings by about 0.1 of the simulator's); the model's figures "
        "are means over the plays, and the least detailed play's ratio is beside them. Layout: the RMS difference of "
        "each row's mean colour from the simulator's frame (where sky, horizon and ground sit; a turn barely "
        "changes it), beside the same for the start frame held still.",
        "",
        f"latents finite: {p['latents_finite']}; first flat frame (pixel std < 2): {p['first_flat_frame']}; "
        f"pixel mean {p['pixel_mean_min']:.1f}..{p['pixel_mean_max']:.1f}; "
        f"pixel std {p['pixel_std_min']:.1f}..{p['pixel_std_max']:.1f} (first 100 frames {p['pixel_std_first_100']:.1f}, "
        f"last 100 {p['pixel_std_last_100']:.1f}); latent std {p['latent_std_min']:.2f}..{p['latent_std_max']:.2f}; "
        f"{p['fps']:.1f} steps/s of the batch (1 thread, machine shared). "
        f"Strip: {p['strip']} (every 100th frame, model above the simulator).",
        "",
        "| frames | model pixel std | true pixel std | model edge energy | true edge energy | model / true edge "
        "| least detailed play | layout error | frozen start's |",
        "|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {g['frames']} | {g['model_std']:.1f} | {g['true_std']:.1f} | {g['model_edge']:.1f} | {g['true_edge']:.1f} "
            f"| {g['edge_ratio']:.2f} | {g.get('edge_ratio_least_play', g['edge_ratio']):.2f} "
            f"| {g.get('layout_error', float('nan')):.1f} | {g.get('layout_error_frozen_start', float('nan')):.1f} |"
            for g in p["segments"]
        ],
        "",
        *long_play_scenes_markdown(r.get("long_play_scenes") or {}, "The same play from other start scenes"),
        *long_play_scenes_markdown(r.get("long_play_true_geometry") or {},
                                   "The same plays with the simulator's camera and depth in the world memory and the base "
                                   "(eval.measure.true_geometry: what is left short is the painter's)"),
        f"## (d) strip: {r['strip']['path']} ({r['strip']['scene']}; {r['strip']['actions']})",
        "PSNR per frame: " + ", ".join(f"{v:.1f}" for v in r["strip"]["psnr_per_frame"]),
        "",
    ]
    if "revisit" in r:
        lines += [f"## (e) revisits: paths that come back to their start (strip: {r['revisit']['strip_path']})", "",
                  revisit_markdown(r["revisit"])]
    return "\n".join(lines)


def long_play_scenes_markdown(plays: dict, title: str) -> list[str]:
    """Long plays from several start scenes, a row each (--long-play-scenes, --long-play-true-geometry)."""
    if not plays:
        return []
    rows = []
    for scene, p in plays.items():
        ratios = [g["edge_ratio"] for g in p["segments"]]
        least = min(g["edge_ratio_least_play"] for g in p["segments"])
        layout = sum(g["layout_error"] for g in p["segments"]) / len(p["segments"])
        frozen = sum(g["layout_error_frozen_start"] for g in p["segments"]) / len(p["segments"])
        rows.append(f"| {scene} | {min(ratios):.2f}-{max(ratios):.2f} | {least:.2f} | {layout:.1f} | {frozen:.1f} |")
    return [
        f"{title} (model / true edge energy per 100 frames, least to most; the least "
        "detailed play's worst segment; layout error and the frozen start frame's, means over the segments):",
        "",
        "| scene | model / true edge | least detailed play | layout error | frozen start's |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
