"""(d) The strip: a start frame and 12 generated frames, the model's row above the simulator's."""

from __future__ import annotations

from pathlib import Path

from data.actions import Action
from eval.fidelity import psnr
from eval.measure.rollouts import rollout
from worldmodel.pipeline import WorldPipeline
from worldmodel.strips import save_row

STRIP_ACTIONS = (
    [Action(frozenset({"forward"}))] * 4 + [Action(camera=(0.0, 10.0))] * 4 + [Action(frozenset({"forward"}), (0.0, -10.0))] * 4
)


def model_strip(pipe: WorldPipeline, path: Path, scene_name: str = "forest_0") -> dict:
    from data.scenes import get_scene

    scene = get_scene(scene_name)
    truth = scene.game(pipe.image_size).rollout(STRIP_ACTIONS).frames
    gen = rollout(pipe, truth[:1], [STRIP_ACTIONS])[0]
    save_row(path, [list(gen), list(truth)], scale=2, labels=["model", "truth"])
    return {
        "path": str(path),
        "scene": scene_name,
        "actions": "frames 1-4 forward, 5-8 yaw +10 deg/frame, 9-12 forward + yaw -10 deg/frame",
        "psnr_per_frame": [psnr(a, b) for a, b in zip(gen[1:], truth[1:])],
    }
