"""Measure a world-model pipeline against the simulator, on worlds it never trained on.

    worldmodel record --out runs/val64 --frames 10000 --seed 100000     # once: unseen worlds (training used seed 0)
    python -m eval.measure --pipeline assets/wm-default --out runs/ship --strip docs/images/model_strip.png

Writes OUT/measure.json, OUT/measure.md, OUT/rollout_1000.png (and the model and revisit strips). Five measurements,
one module each:

(a) rollout_fidelity: 8-frame rollouts from frames of runs/val64 (recorded with --seed 100000; training used
    seed 0), the clip's own recorded actions; PSNR/SSIM per frame against the clip's true frames (eval.fidelity),
    beside copy-the-last-frame, turn-the-last-frame (the last true frame turned by the mouse moves: the geometry
    the model's residual base starts from, and nothing else), step-the-last-frame (turned and stepped by the keys
    at the simulator's true depth: an egomotion model's geometry with perfect depth), the same rollouts with
    another rollout's actions, and the autoencoder's ceiling.
(b) responsiveness: from the fixed scenes (data.scenes, seeds 1000-8003), 8 frames of yaw +10, yaw -10, no-op
    and forward, generated and simulated. Yaw read back from the pictures (eval.pose.camera_turn and phase
    correlation), forward read back as radial expansion of the optical flow (eval.flow.dis_flow); and which
    true condition's frames each generated video is closest to (chance 25%).
(c) long_play: a 1,000-frame play under a scripted action loop, three games at once: finite latents, pixel mean/std
    ranges, detail per 100 frames, and the layout error (each row's mean colour against the simulator's frame,
    beside the start frame held still); from plain_1, and from the scenes of --long-play-scenes, a row each.
(d) strip: start frame + 12 generated frames (model row above the simulator's row).
(e) revisit: a full circle, out and back, and an A -> B -> C -> A loop from the first scene of each biome; the
    last frame against the first, model and simulator; a strip of a full circle.

rollouts.py holds what they share (batched model rollouts and the geometric baselines), report.py the
Markdown, __main__.py the command. Everything runs on one thread (the machine is shared).
"""
