"""What one IDM training run does (eval/idm/train.py), and which worlds it may use."""

from __future__ import annotations

from dataclasses import dataclass, field

from eval.idm.data import KEY_CAMERA_SHARE
from eval.idm.model import IDMConfig

TEST_LENGTH = 65  # held-out clips are as long as the benchmark's videos
TRAIN_SEED_BASE = 10_000  # training worlds: 10_000 + 90_000 * seed + i, clear of the scenes' 1000-8003
WORLDS_PER_SEED = 90_000  # seed 9 ends below the held-out worlds (1,000,000)


@dataclass(frozen=True)
class IDMTrainConfig:
    """One IDM training run (`python -m eval.idm train`); the flags are in eval/idm/cli.py."""

    minutes: float = 20.0  # wall-clock budget for simulating and training together
    random_length: int = 33  # random play: short clips
    benchmark_length: int = 65  # benchmark-like: whole benchmark-length clips, so the GRU learns to carry context
    batch: int = 8  # whole clips of one kind per batch
    lr: float = 3e-3
    seed: int = 0  # 0..9: which block of training worlds, and the initialisation
    pool_clips: int = 1200  # clips held at once; fresh ones push out the oldest of their kind
    clips_per_world: int = 4  # each from its own spawn point and heading (a world costs as much as 4 clips)
    simulate_share: float = 0.45  # of the wall time spent simulating fresh clips, between training steps
    warmup_clips: int = 160  # simulated before the first step
    benchmark_share: float = 0.85  # of the clips (and of the batches), held actions like the benchmark's
    degrade_share: float = 0.5  # of the clips, blurred and/or noisy
    key_camera_share: float = KEY_CAMERA_SHARE  # of the benchmark-like clips, a key held while the camera turns
    # A trained IDM folder to start from (same architecture), or "" for a fresh initialisation; its own
    # training (a chain of runs) is recorded in the new checkpoint's config.json and model card.
    init: str = ""
    test_clips: int = 40
    test_seed_offset: int = 1_000_000  # held-out worlds: seeds never used for training
    suite_scenes: int = 8  # after training, also score the benchmark itself (scenes x 76 actions); 0: skip
    model: IDMConfig = field(default_factory=IDMConfig)

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")
        if min(self.random_length, self.benchmark_length) < 4:
            raise ValueError("random_length and benchmark_length must be at least 4 frames")
        if self.pool_clips < 2 * self.clips_per_world or self.clips_per_world < 1:
            raise ValueError("pool_clips must hold at least two worlds' clips, and clips_per_world must be positive")
        if self.test_clips < 1 or self.batch < 1 or self.warmup_clips < 1:
            raise ValueError("test_clips, batch and warmup_clips must be positive")
        if not 0 < self.benchmark_share < 1 or not 0 <= self.degrade_share <= 1:
            raise ValueError("benchmark_share must be within (0, 1) and degrade_share within [0, 1]")
        if not 0 <= self.key_camera_share <= 1:
            raise ValueError(f"key_camera_share must be within [0, 1], got {self.key_camera_share}")
        if not 0 < self.simulate_share < 1:
            raise ValueError(f"simulate_share must be within (0, 1), got {self.simulate_share}")
        if not 0 <= self.suite_scenes <= 32:
            raise ValueError(f"suite_scenes must be 0..32, got {self.suite_scenes}")
        if not 0 <= self.seed < 10:
            raise ValueError(f"seed must be 0..9 (training worlds stay below the held-out seeds), got {self.seed}")
