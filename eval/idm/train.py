"""Training the IDM (eval/idm/model.py) on clips simulated while it trains (eval/idm/data.py).

Training (`python -m eval.idm train --out assets/idm`, or `worldmodel eval --train-idm sim --out assets/idm`;
20 minutes of wall time on one CPU thread, simulating and training together, then about 2 minutes of
scoring): the clips are simulated while training, not drawn from a fixed set. Between training steps
(45% of the time) fresh worlds are generated, every biome equally often, and four clips played in each,
each from its own start made like the benchmark scenes' (data/scenes.py: a spawn point, pitch -5, turned
to an open view); a pool of the latest 1200 clips feeds the batches, so the model meets thousands of
worlds (a few hundred fixed worlds were memorised: a still video read as "forward" on one beach). Two
players made for this: benchmark-like play (`benchmark_like_actions`, 65-frame clips): one action held
for the whole clip, drawn like the 76 benchmark actions (5 degrees a frame, attack in bursts), so the
view also runs into the pitch limit and stays there; and random play (`random_actions`, 33-frame clips):
every key and the camera change often, in held segments of 2 to 48 frames, camera steps of 0.5 to 12
degrees on either axis, the view kept off the pitch limits. 85% of the clips are benchmark-like (the
IDM mostly scores the benchmark). Half the clips are blurred and/or noisy, since the IDM mostly judges
a world model's slightly blurry frames. Training worlds' seeds (10,000 + 90,000 x seed + i) are disjoint
from the 32 benchmark scenes' (1000-8003) and the held-out worlds' (from 1,000,000). Recorded clips can
be added with --data.

Continuing (`--init DIR`): a run can start from a trained IDM of the same architecture, on a fresh block of
worlds (`--seed`), often with a lower peak rate (`--lr`) and more benchmark-like clips that hold a key while
the camera turns (`--key-camera-share`; walking or strafing while the view pitches up into the sky is what
the IDM misses most). The shipped IDM is such a chain of runs; its MODEL_CARD.md lists each run's command
and its suite figures, and config.json records them under training.earlier_runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from eval.idm.card import write_model_card
from eval.idm.config import TEST_LENGTH, TRAIN_SEED_BASE, WORLDS_PER_SEED, IDMTrainConfig
from eval.idm.data import IDMClip, clips_from_folder, simulated_clips, suite_clips, world_clips
from eval.idm.model import InverseDynamicsModel, frames_to_tensor, predict
from eval.labels import BINARY_KEYS, labels_from_actions
from worldmodel.lr_schedule import warmup_cosine


def _loss(out: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
    loss = sum(F.cross_entropy(out[k].flatten(0, 1), target[k].flatten()) for k in ("fb", "lr", "pitch", "yaw"))
    loss = loss + F.binary_cross_entropy_with_logits(out["keys"], target["keys"]) * len(BINARY_KEYS)
    loss = loss + 0.02 * F.smooth_l1_loss(out["camera"], target["camera"])
    return loss


def accuracy(model: InverseDynamicsModel, clips: list[IDMClip]) -> dict[str, float]:
    """GameWorld keyboard and mouse accuracy of the IDM on true clips (eval/controllability.py's scoring)."""
    from eval.controllability import score_predictions

    preds, labels = [], []
    for clip in clips:
        preds.append(predict(model, clip.frames))
        labels.append(labels_from_actions(clip.keys[:-1], clip.camera[:-1]))
    return score_predictions(preds, labels)


def _batch(pool: Sequence[IDMClip], rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """`size` whole clips drawn from one pool (all of one length)."""
    xs, flows, targets = [], [], {k: [] for k in ("fb", "lr", "pitch", "yaw", "keys", "camera")}
    for _ in range(size):
        clip = pool[int(rng.integers(len(pool)))]
        xs.append(frames_to_tensor(clip.frames)[0])
        flows.append(clip.flow)
        lab = labels_from_actions(clip.keys[:-1], clip.camera[:-1])
        for k in targets:
            targets[k].append(torch.from_numpy(lab[k]))
    return torch.stack(xs), torch.stack(flows), {k: torch.stack(v) for k, v in targets.items()}


def train_idm(cfg: IDMTrainConfig, out: str | Path, data: str | Path | None = None, progress: bool = True) -> dict:
    """Simulate and train for cfg.minutes of wall time, save the IDM to `out`; returns what it did and its
    held-out accuracies.

    The clips are not a fixed set: a pool of cfg.pool_clips is topped up with clips of fresh worlds between
    training steps (cfg.simulate_share of the time), the oldest of a kind making way, so the model keeps
    meeting new worlds instead of memorising what a few hundred of them look like.
    """
    from collections import deque

    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n_bench = int(round(cfg.pool_clips * cfg.benchmark_share))
    pools = {"benchmark": deque(maxlen=n_bench), "random": deque(maxlen=cfg.pool_clips - n_bench)}
    lengths = {"benchmark": cfg.benchmark_length, "random": cfg.random_length}
    recorded: list[IDMClip] = []
    if data is not None:
        recorded = clips_from_folder(data, length=cfg.random_length)
    model = InverseDynamicsModel(cfg.model)
    earlier: list[dict] = []  # the training runs the starting checkpoint went through, first run first
    if cfg.init:
        start_from = InverseDynamicsModel.from_pretrained(cfg.init)
        if start_from.cfg != cfg.model:
            raise ValueError(f"{cfg.init}: its architecture {start_from.cfg} differs from the one asked for {cfg.model}")
        model.load_state_dict(start_from.state_dict())
        before = json.loads((Path(cfg.init) / "config.json").read_text()).get("training", {})
        earlier = before.get("earlier_runs", []) + [
            {k: before.get(k) for k in ("trained_on", "steps", "minutes", "train_config", "held_out")}
        ]
    tests = {
        "random_play": simulated_clips(
            [cfg.test_seed_offset + i for i in range(cfg.test_clips)], TEST_LENGTH, "random", 0.0, progress
        ),
        "benchmark_like": simulated_clips(
            [cfg.test_seed_offset + 50_000 + i for i in range(cfg.test_clips)], TEST_LENGTH, "benchmark", 0.0, progress
        ),
    }
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-3)
    budget = cfg.minutes * 60
    counts = {"worlds": 0, "benchmark": 0, "random": 0}
    simulating = 0.0  # seconds spent simulating

    def simulate_one_world() -> None:
        nonlocal simulating
        if counts["worlds"] >= WORLDS_PER_SEED:
            raise RuntimeError(f"ran out of training worlds for seed {cfg.seed}; lower --minutes")
        began = time.monotonic()
        kind = "benchmark" if rng.random() < cfg.benchmark_share else "random"
        seed = TRAIN_SEED_BASE + WORLDS_PER_SEED * cfg.seed + counts["worlds"]
        fresh = world_clips(seed, cfg.clips_per_world, lengths[kind], kind, cfg.degrade_share, cfg.key_camera_share)
        pools[kind].extend(fresh)
        counts["worlds"] += 1
        counts[kind] += len(fresh)
        simulating += time.monotonic() - began

    start = time.monotonic()
    steps, losses = 0, []
    bar = tqdm(total=int(budget), desc="simulating + training IDM (s)", disable=not progress, unit="s")
    model.train()
    while (elapsed := time.monotonic() - start) < budget:
        have = len(pools["benchmark"]) + len(pools["random"])
        if have < cfg.warmup_clips or simulating < cfg.simulate_share * elapsed or not pools["benchmark"]:
            simulate_one_world()
            continue
        # Cosine decay on the wall-clock fraction, since we train for a time budget, not a step count.
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(cfg.lr, elapsed / budget, min_ratio=0.02)
        use_random = rng.random() >= cfg.benchmark_share and (pools["random"] or recorded)
        if use_random:
            pool = recorded if recorded and (not pools["random"] or rng.random() < 0.5) else pools["random"]
        else:
            pool = pools["benchmark"]
        x, flow, target = _batch(pool, rng, cfg.batch)
        loss = _loss(model(x, flow), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        losses.append(loss.item())
        bar.n = min(int(elapsed), bar.total)
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", steps=steps, worlds=counts["worlds"])
    bar.close()
    model.eval()
    pools.clear()  # the suite's clips need the memory
    if cfg.suite_scenes:
        tests["benchmark_suite"] = suite_clips(cfg.suite_scenes)
    held_out = {name: {"clips": len(clips), **accuracy(model, clips)} for name, clips in tests.items()}
    source = (
        f"{counts['benchmark']} benchmark-like clips of {cfg.benchmark_length} frames and {counts['random']} "
        f"random-play clips of {cfg.random_length} frames from {counts['worlds']} fresh worlds "
        f"({cfg.clips_per_world} starts each), simulated while training (at most {cfg.pool_clips} held at once)"
    )
    if recorded:
        source += f" + {len(recorded)} pieces of recorded clips under {data}"
    info = {
        "trained_on": source,
        "steps": steps,
        "minutes": cfg.minutes,
        "simulating_minutes": round(simulating / 60, 2),
        "final_loss": float(np.mean(losses[-50:])) if losses else float("nan"),
        "held_out": held_out,
        "train_config": {k: v for k, v in asdict(cfg).items() if k != "model"},
    }
    if earlier:
        info["earlier_runs"] = earlier
    model.save_pretrained(out, {"training": info})
    write_model_card(Path(out), info, sum(p.numel() for p in model.parameters()))
    return info
