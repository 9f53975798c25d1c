"""`worldmodel bench eval`: what each scorer costs per video, and what the full suite costs on this machine.

Times every dimension on true 65-frame videos (33 with quick), one thread, and extrapolates to the full
suite (32 scenes x 76 actions + 32 round trips) and the quick one. Generation by a world model comes on top:
`worldmodel bench stream` gives its frames per second.
"""

from __future__ import annotations

import time

FULL_VIDEOS = 32 * 76
QUICK_VIDEOS = 8 * 8


def run(quick: bool = False) -> list[dict]:
    import torch

    from data.actions import stack
    from data.benchmark_actions import benchmark_actions
    from eval import aesthetic, consistency3d, fidelity, image_quality, pose, smoothness, temporal
    from eval.controllability import video_labels
    from eval.idm import model as idm
    from eval.suite import Job, simulate

    torch.set_num_threads(1)
    frames_per_video = 33 if quick else 65
    names = ["forward", "camera_r"] if quick else ["forward", "camera_r", "jump_camera_ul", "left_attack"]
    every = benchmark_actions()
    jobs = [Job("forest_1", n, tuple(every[n][:frames_per_video])) for n in names]
    model = (
        idm.InverseDynamicsModel.from_pretrained()
        if (idm.DEFAULT_PATH / "model.safetensors").is_file()
        else idm.InverseDynamicsModel(idm.IDMConfig()).eval()
    )

    def controllability(job, truth):
        keys, camera = stack(list(job.actions))
        video_labels(keys, camera, len(truth.frames))
        return idm.predict(model, truth.frames)

    steps = {
        "simulate (true video)": lambda job, truth: simulate(job),
        "image quality (BRISQUE)": lambda job, truth: image_quality.image_quality(truth.frames),
        "aesthetic (proxy)": lambda job, truth: aesthetic.aesthetic_quality(truth.frames),
        "temporal (IDM trunk)": lambda job, truth: temporal.consistency_from_features(idm.embed_frames(model, truth.frames)),
        "motion smoothness (DIS)": lambda job, truth: smoothness.motion_smoothness(truth.frames),
        "keyboard + mouse (IDM)": controllability,
        "3D consistency (epipolar)": lambda job, truth: consistency3d.consistency_3d(truth.frames),
        "fidelity (PSNR, SSIM)": lambda job, truth: fidelity.fidelity_curves(truth.frames, truth.frames),
        "pose following": lambda job, truth: pose.pose_following(truth.frames, truth.path),
    }
    truths = [simulate(job) for job in jobs]
    rows, total = [], 0.0
    for name, fn in steps.items():
        start = time.perf_counter()
        for job, truth in zip(jobs, truths):
            fn(job, truth)
        per_video = (time.perf_counter() - start) / len(jobs)
        total += per_video
        rows.append({"step": name, "frames": frames_per_video, "ms_per_video": per_video * 1000})
    videos = QUICK_VIDEOS if quick else FULL_VIDEOS
    rows.append({
        "step": f"all scorers, {'quick' if quick else 'full'} suite ({videos} videos)",
        "frames": frames_per_video,
        "ms_per_video": total * 1000,
        "suite_minutes": total * videos / 60,
    })  # fmt: skip
    return rows

