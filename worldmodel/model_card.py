"""Write a checkpoint's MODEL_CARD.md from its training run and its measurements.

    python -m worldmodel.model_card --pipeline assets/wm-default --train runs/wm-default --walk runs/wm-walk \
        --measure runs/ship/measure.json --bench runs/ship/bench.json

measure.json comes from `python -m eval.measure`, bench.json from `worldmodel bench stream --json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from data.files import write_text_atomic

# How assets/wm-default was trained: two runs into one folder, the second resuming the first; then a third run
# starting from the second's pipeline (init_from) with the keys' step in the base and a depth head.
TRAIN_COMMANDS = (
    "worldmodel train --config worldmodel/configs/default.json --out runs/wm-default --max-minutes 50 --threads 1",
    "worldmodel train --config worldmodel/configs/default-continue.json --out runs/wm-default --resume --threads 1",
    "worldmodel train --config worldmodel/configs/default-walk.json --out runs/wm-walk --threads 1",
)
DATA_COMMAND = "worldmodel record --out runs/data64 --frames 150000 --size 64 --seed 0 --player mixed --workers 2"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fmt(v: float, digits: int = 2) -> str:
    return f"{v:.{digits}f}"


def bench_table(rows: list[dict]) -> list[str]:
    lines = ["| method | threads | frames/s | ms/frame | RSS MB | speed vs fp32 |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | | error: {r['error']} | | | |")
            continue
        lines.append(
            f"| {r['method']} | {r['threads']} | {fmt(r['fps'], 1)} | {fmt(r['ms_per_frame'], 1)} | "
            f"{fmt(r['rss_mb'], 0)} | {fmt(r.get('speed_vs_fp32', float('nan')))} |"
        )
    return lines


def limitations(f: dict, s: dict, p: dict, dit: dict, minutes: float) -> list[str]:
    """The limitations the measurements show, stated from the numbers (not from hopes)."""
    out = [
        f"- Trained {minutes:.0f} minutes on one CPU thread. Frames are blurrier than the autoencoder allows "
        f"({fmt(f['model_psnr'])} dB over 8 frames vs the {fmt(f['autoencoder_ceiling_psnr'])} dB autoencoder ceiling)."
    ]
    if "step_last_psnr" in f and f["model_psnr"] <= f["step_last_psnr"]:
        out.append(f"- It does not yet beat geometry alone with perfect depth: the last true frame turned by the mouse and "
                   f"stepped by the keys at the simulator's depth scores {fmt(f['step_last_psnr'])} dB against its "
                   f"{fmt(f['model_psnr'])} dB (turned only: {fmt(f['turn_last_psnr'])} dB); what the network adds (what "
                   "comes into view, its own depth) does not yet pay for the blur of its frames.")
    elif "turn_last_psnr" in f and f["model_psnr"] <= f["turn_last_psnr"]:
        out.append(f"- It does not yet beat geometry alone: the last true frame turned by the mouse scores "
                   f"{fmt(f['turn_last_psnr'])} dB against its {fmt(f['model_psnr'])} dB; what the network adds (walking, "
                   "what comes into view) does not yet pay for the blur of its frames.")
    if f["model_psnr"] <= f["copy_last_psnr"]:
        out.append(f"- On average it does not beat repeating the last true frame over 8 frames ({fmt(f['model_psnr'])} vs "
                   f"{fmt(f['copy_last_psnr'])} dB).")
    gap = f["model_psnr"] - f["model_shuffled_actions_psnr"]
    acc = s["nearest_true_condition_accuracy"]
    yaw_r = s["stats"]["model"]["yaw_right"]["yaw_deg_per_frame"]
    yaw_true = s["stats"]["simulator"]["yaw_right"]["yaw_deg_per_frame"]
    fwd, fwd_true = (s["stats"][k]["forward"]["radial_px_per_frame"] for k in ("model", "simulator"))
    if acc < 0.5 or gap < 0.5:
        out.append(f"- It responds weakly to the actions. On recorded play, another rollout's actions lower PSNR by "
                   f"{gap:.2f} dB; but from a standing start, a +10 deg/frame turn reads back as {yaw_r:+.2f} deg/frame "
                   f"(the simulator's video: {yaw_true:+.2f}), walking forward as {fwd:+.3f} px/frame of radial flow "
                   f"(simulator: {fwd_true:+.3f}), and each generated video is nearest its own action's true video in "
                   f"{acc:.2f} of cases (chance 0.25).")
    else:
        out.append(f"- Turns follow the mouse at about {yaw_r / yaw_true:.0%} of the true rate ({yaw_r:+.2f} vs {yaw_true:+.2f} "
                   "deg/frame read back for +10 deg/frame).")
    if 0.25 * fwd_true <= fwd < 0.75 * fwd_true:
        out.append(f"- Walking shows, but short of the truth from a standing start: {fwd:+.3f} px/frame of outward flow "
                   f"against the simulator's {fwd_true:+.3f} over 8 frames. The step is the game's physics from rest at "
                   "the depth head's estimate, made on the 16x16 latents, and a step of a fraction of a cell made there "
                   "reads back weaker than the same step made on pixels (the base alone, measured on 8 scenes: bicubic "
                   "2/3 of it, bilinear 1/3). Stepping the decoded pixels instead is the next lever.")
    if fwd < 0.25 * fwd_true:
        out.append(f"- Walking does not show: forward gives {fwd:+.3f} px/frame of radial flow against the simulator's "
                   f"{fwd_true:+.3f}, and forward videos are nearest the true no-op video in "
                   f"{s['nearest_true_condition_confusion']['forward']['noop']} of {len(s['scenes'])} scenes.")
    last = p["segments"][-1]
    if last["model_edge"] < 0.5 * last["true_edge"]:
        flat = p.get("first_flat_frame")
        flat_text = f"; from frame {flat} on the picture is one flat colour (pixel std < 2)" if flat else ""
        out.append(f"- Long plays drift: the picture keeps a sky, a ground and blocks, but the place wanders (the biome "
                   f"changes, the blur comes and goes) and holds less detail: by frames {last['frames']} the edge energy is "
                   f"{last['model_edge']:.1f} against the simulator's {last['true_edge']:.1f}{flat_text} "
                   "(docs/images/rollout_1000.png).")
    out += [
        f"- 64x64 only; it sees the last {dit['window']} frames and nothing older, so turning away and back cannot "
        "bring the same place back.",
        "- The start frame passes through the autoencoder, so frame 0 is already a reconstruction.",
    ]
    return out


def walking_lines(w: dict) -> list[str]:
    """Walking measured where the recorded player was already walking forward (eval.measure.responsiveness.walking_in_play)."""
    if not w.get("windows"):
        return []
    return [
        f"Walking in play ({w['windows']} windows of recorded straight forward walking, 8 frames each): outward flow "
        f"{w['model_forward_radial']:+.3f} px/frame with the forward key, {w['model_noop_radial']:+.3f} with no key, "
        f"the true frames {w['true_radial']:+.3f}.",
        "",
    ]


def world_rows_of(train: Path) -> list[dict]:
    return [r for r in read_jsonl(train / "log.jsonl") if r.get("stage") == "world"]


def card(pipeline: Path, train: Path, m: dict, bench: list[dict] | None, walk: Path | None = None) -> str:
    """`train`: the run (autoencoder + world stages) the checkpoint grew from; `walk`: the egomotion run that
    started from its pipeline, when there is one (its log then gives the last training eval)."""
    top = json.loads((pipeline / "config.json").read_text())
    ae = json.loads((pipeline / "autoencoder" / "config.json").read_text())
    dit = json.loads((pipeline / "dit" / "config.json").read_text())
    run_cfg = json.loads((train / "config.json").read_text())
    log = read_jsonl(train / "log.jsonl")
    walk_cfg = json.loads((walk / "config.json").read_text()) if walk else {}
    walk_rows = world_rows_of(walk) if walk else []
    walk_steps = max((r["step"] for r in walk_rows), default=0)
    walk_minutes = max((r.get("minutes", 0.0) for r in walk_rows), default=0.0)
    ae_rows = [r for r in log if r.get("stage") == "autoencoder"]
    ae_final = next((r for r in reversed(ae_rows) if "final_psnr" in r), {})
    ae_minutes = max((r.get("minutes", 0.0) for r in ae_rows), default=0.0)
    world_rows = [r for r in log if r.get("stage") == "world"]
    world_steps = max((r["step"] for r in world_rows), default=0)
    world_minutes = max((r.get("minutes", 0.0) for r in world_rows), default=0.0)
    evals = [r for r in (walk_rows or world_rows) if "eval_true" in r]
    last_eval = evals[-1] if evals else {}
    size_mb = sum(f.stat().st_size for f in pipeline.rglob("*") if f.is_file()) / 1e6
    f, s, p = m["fidelity"], m["responsiveness"], m["long_play"]
    st = s["stats"]
    tokens = (dit["latent_size"] // dit["patch_size"]) ** 2

    lines = [
        "# wm-default: the shipped world model",
        "",
        "A Matrix-Game-style interactive world model for our voxel game at 64x64, 20 frames/s: given a start image and,",
        "every frame, the keys held and the mouse move, it generates the next frame. Load it with",
        "`WorldPipeline.from_pretrained()` (this folder is the default), play it with `worldmodel play`.",
        "",
        "## What it is",
        f"- Autoencoder: AutoencoderTiny layout, {ae['image_size']}x{ae['image_size']} RGB <-> {ae['latent_channels']} x "
        f"{ae['image_size'] // ae['downsample']} x {ae['image_size'] // ae['downsample']} latents "
        f"(downsample {ae['downsample']}), encoder {ae['encoder_channels']} / decoder {ae['decoder_channels']} channels; "
        f"{m['autoencoder_parameters']:,} parameters.",
        f"- Denoiser: causal DiT, dim {dit['dim']}, depth {dit['depth']}, {dit['heads']} heads, MLP x{dit['mlp_ratio']}, "
        f"{dit['patch_size']}x{dit['patch_size']} latent patches ({tokens} tokens a frame), attention window {dit['window']} "
        f"frames (key/value cache, flat cost per frame), adaLN on noise level + keys ({dit['num_keys']}) + camera "
        f"(scale {dit['camera_scale']} deg); {m['dit_parameters']:,} parameters.",
        "- What the network predicts is the change from the previous frame turned by the mouse move (pure geometry: "
        f"a pinhole camera of vertical field of view {dit.get('view_fov', 0.0)} deg)"
        + (", and stepped as the keys walk the camera (the game's walking physics without walls, `worldmodel/egomotion.py`), "
           "each part of the picture moved by its distance, which a small convolutional depth head "
           f"({dit.get('depth_channels')} channels, dilated) reads from the previous frame's latent. The depth head learned "
           "from the simulator's true depth (`data/replay.py`)." if dit.get("egomotion") else "."),
        f"- Sampling (`config.json`): `{json.dumps(top['sampling'])}`: {top['sampling']['steps']} flow-matching steps, "
        f"finished frames re-enter the context at noise {top['sampling']['context_sigma']}, classifier-free guidance "
        f"{top['sampling']['guidance']} on the actions. (Training wrote steps {run_cfg['sampling']['steps']}, context "
        f"{run_cfg['sampling']['context_sigma']}, guidance {run_cfg['sampling'].get('guidance', 1.0)}; chosen at shipping "
        "by a sweep of steps 1-4, guidance 1-3, context noise 0.1-0.4 and shift 1-2.5 on rollout PSNR, turns and a "
        "1,000-frame play: more steps sharpen the frames but wash out or collapse long plays, guidance costs PSNR; "
        "with the world memory 2 steps beat 3 on rollouts and revisits at 1.23x the speed.)",
        f"- Files: {size_mb:.1f} MB, float32 safetensors + JSON, no pickles. Quantize at load: "
        "`WorldPipeline.from_pretrained(quant=\"int8\")`.",
        "",
        "## Training",
        f"- Data: `{DATA_COMMAND}`: 300 clips x 500 frames (150,000 frames), 64x64, 8 biomes, a scripted mixed player "
        "(human-like play mixed with random action changes); world seeds from --seed 0.",
        "- Commands: two runs into one folder, the second resuming the first"
        + (", then a third starting from the second's weights:" if walk else ":"),
        f"  1. `{TRAIN_COMMANDS[0]}`: the autoencoder, then the world model with the plain residual base (2,113 steps);",
        f"  2. `{TRAIN_COMMANDS[1]}`: the world model continued with the base turned by the mouse (`view_fov` "
        f"{dit.get('view_fov', 0.0)}), one batch in "
        f"{round(1 / run_cfg['unroll_prob']) if run_cfg.get('unroll_prob') else 'none'} "
        f"made of its own one-step predictions (anti-drift), lr restarted at {run_cfg['lr']}, stopped at 140 min of world "
        "stage (137 of its first steps ran before `view_fov` was added to the config and were kept; the config now "
        "holds the shipped sampling and that 140-minute budget).",
        *([f"  3. `{TRAIN_COMMANDS[2]}`: starting from run 2's weights, the base also stepped by the keys at the "
           f"depth head's estimate (`egomotion`), the new depth head trained on the simulator's inverse depth (squared error on "
           f"frames at noise <= 0.5, weight {walk_cfg.get('depth_weight')}; its first 1,250 steps ran with an L1 loss, "
           f"whose estimates ran a quarter short, then 500 with an uncapped squared error; and until step 1,750 the base "
           f"was resampled bilinearly, which smears a sub-cell step: the run was stopped and resumed at each change); "
           f"lr {walk_cfg.get('lr')}, warmup {walk_cfg.get('warmup_steps')}, {walk_steps} steps in {walk_minutes:.1f} min "
           f"(config: {walk / 'config.json'})."]
          if walk else []),
        f"  Full config of runs 1-2: {train / 'config.json'}; batch {run_cfg['batch_size']} x {run_cfg['seq_len']} frames, "
        f"warmup {run_cfg['warmup_steps']}, EMA {run_cfg['ema_decay']}, action dropout {run_cfg['action_dropout']}, "
        f"context noise up to {run_cfg['context_sigma_max']}.",
        f"- Autoencoder stage: {ae_final.get('step', '?')} steps in {ae_minutes:.1f} min, reconstruction PSNR "
        f"{ae_final.get('final_psnr', float('nan')):.2f} dB on 512 training frames.",
        f"- World stage: {world_steps} steps in {world_minutes:.1f} min"
        + (f", then {walk_steps} steps in {walk_minutes:.1f} min with the keys' step" if walk else "")
        + " (diffusion forcing, residual prediction, EMA weights shipped).",
        "- Hardware: one thread of a 2-core AMD EPYC CPU (AVX-512 VNNI), shared with other work; "
        f"{ae_minutes + world_minutes + walk_minutes:.0f} min of training in all, plus a few minutes encoding the latents.",
    ]
    if last_eval:
        lines.append(
            f"- Last training eval (step {last_eval['step']}, 16 held-out windows, next-frame latent MSE): true action "
            f"{last_eval['eval_true']:.4f}, null {last_eval['eval_null']:.4f}, mirrored {last_eval['eval_mirror']:.4f} "
            f"(x{last_eval['eval_mirror_ratio']:.2f}), copy-last {last_eval['eval_copy']:.4f}"
            + (f"; depth head {last_eval['eval_depth_l1']:.3f} mean absolute error in inverse depth (1/blocks)."
               if "eval_depth_l1" in last_eval else ".")
        )
    lines += [
        "",
        "## Measured (`python -m eval.measure`, worlds it never trained on)",
        f"### Fidelity: {f['rollouts']} rollouts of {f['horizon']} frames",
        "From frames of runs/val64 (record seed 100000), each with its clip's recorded actions, against the clip's true frames.",
        "",
        "| frames | PSNR dB | SSIM |",
        "|---|---|---|",
        f"| model | {fmt(f['model_psnr'])} | {fmt(f['model_ssim'], 3)} |",
        f"| model, another rollout's actions | {fmt(f['model_shuffled_actions_psnr'])} | "
        f"{fmt(f['model_shuffled_actions_ssim'], 3)} |",
        f"| copy the last true frame | {fmt(f['copy_last_psnr'])} | {fmt(f['copy_last_ssim'], 3)} |",
        f"| turn the last true frame by the mouse (geometry only) | {fmt(f['turn_last_psnr'])} | {fmt(f['turn_last_ssim'], 3)} |",
        *([f"| turn it and step it by the keys at the simulator's true depth (geometry only) | {fmt(f['step_last_psnr'])} | "
           f"{fmt(f['step_last_ssim'], 3)} |"] if "step_last_psnr" in f else []),
        f"| autoencoder reconstruction (ceiling) | {fmt(f['autoencoder_ceiling_psnr'])} | "
        f"{fmt(f['autoencoder_ceiling_ssim'], 3)} |",
        "",
        f"The model beats copy-last on {100 * f['model_beats_copy_fraction']:.0f}% of rollouts. PSNR by frame "
        "(model / copy-last): "
        + ", ".join(f"{m_:.1f}/{c_:.1f}" for m_, c_ in zip(f["curves"]["model"]["psnr"], f["curves"]["copy_last"]["psnr"])) + ".",
        "",
        f"### Responsiveness: {len(s['scenes'])} fixed scenes x {s['frames']} frames per condition",
        "Camera turn read back from the pictures (eval.pose: flow + Kabsch rotation), median horizontal flow, and radial",
        "flow (outward > 0: the view expands, as when walking forward); the simulator's own videos read the same way.",
        "",
        "| condition | model yaw deg/frame | true yaw | model x flow px | true x flow | model radial px | true radial |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in ("yaw_right", "yaw_left", "noop", "forward"):
        a, b = st["model"][c], st["simulator"][c]
        lines.append(
            f"| {c} | {a['yaw_deg_per_frame']:+.2f} | {b['yaw_deg_per_frame']:+.2f} | {a['flow_x_px_per_frame']:+.2f} | "
            f"{b['flow_x_px_per_frame']:+.2f} | {a['radial_px_per_frame']:+.3f} | {b['radial_px_per_frame']:+.3f} |"
        )
    lines += [
        "",
        f"Yaw sign right: {st['model']['yaw_right']['yaw_sign_correct']:.2f} of scenes turning right, "
        f"{st['model']['yaw_left']['yaw_sign_correct']:.2f} turning left. Each generated video's nearest true video "
        f"(same scene, 4 conditions, by PSNR) is its own condition's in {s['nearest_true_condition_accuracy']:.2f} of cases "
        "(chance 0.25).",
        "",
        *walking_lines(m.get("walking", {})),
        f"### Long play: {p['frames']} frames (scripted action loop from the scene {p['start_scene']})",
        f"Latents finite: {p['latents_finite']}. First flat frame (pixel std < 2): {p.get('first_flat_frame')}. "
        f"Per-frame pixel mean {p['pixel_mean_min']:.1f}..{p['pixel_mean_max']:.1f}, "
        f"pixel std {p['pixel_std_min']:.1f}..{p['pixel_std_max']:.1f}. The simulator played the same actions from the same "
        "start; edge energy (mean absolute grey gradient) says whether the picture still holds blocks:",
        "",
        "| frames | model pixel std | true pixel std | model edge energy | true edge energy |",
        "|---|---|---|---|---|",
        *[f"| {g['frames']} | {g['model_std']:.1f} | {g['true_std']:.1f} | {g['model_edge']:.1f} | {g['true_edge']:.1f} |"
          for g in p["segments"]],
        "",
        "Every 100th frame, model above the simulator: docs/images/rollout_1000.png.",
        "",
        "### Playing it",
        f"docs/images/model_strip.png: {m['strip']['scene']}, start frame + 12 generated frames "
        f"({m['strip']['actions']}), model row above the simulator's.",
        "",
    ]
    if bench:
        lines += ["### Speed (`worldmodel bench stream`, batch 1, 64x64)", ""] + bench_table(bench) + [""]
    lines += ["## Known limitations"] + limitations(f, s, p, dit, ae_minutes + world_minutes + walk_minutes) + [
        "",
        "Reproduce the measurements: `worldmodel record --out runs/val64 --frames 10000 --seed 100000`, then "
        "`python -m eval.measure --pipeline assets/wm-default --out runs/ship --strip docs/images/model_strip.png`.",
        "",
    ]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--measure", required=True)
    parser.add_argument("--bench", default="")
    parser.add_argument("--walk", default="", help="the egomotion run that started from --train's pipeline, if any")
    args = parser.parse_args()
    pipeline = Path(args.pipeline)
    m = json.loads(Path(args.measure).read_text())
    bench = json.loads(Path(args.bench).read_text()) if args.bench and Path(args.bench).is_file() else None
    text = card(pipeline, Path(args.train), m, bench, Path(args.walk) if args.walk else None)
    out = pipeline / "MODEL_CARD.md"
    write_text_atomic(out, text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
