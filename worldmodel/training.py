"""What every training stage here uses: the clip dataset's factory type, the EMA update, the RNG state a checkpoint
keeps, saving and resuming a stage's checkpoint, and the budget that stops a stage at its step count or its minutes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from worldmodel.checkpoint import load_checkpoint, optimizer_from_flat, optimizer_to_flat, prefixed, save_checkpoint, unprefixed

# A factory for the clip dataset: (root, length, stride) -> a ClipWindows-like Dataset (worldmodel.training_clips
# makes the real one; tests pass their own).
WindowsFactory = Callable[[str, int, int], Any]


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - decay)


def rng_tensors(generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"rng.torch": torch.get_rng_state(), "rng.data": generator.get_state()}


def restore_rng(tensors: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.data"])


def save_progress(ckpt_dir: Path, modules: dict[str, torch.nn.Module], opt: torch.optim.Optimizer,
                  generator: torch.Generator, step: int, minutes: float) -> None:
    """A stage's checkpoint: each module's weights under its name, the optimizer, the RNG, the step and minutes."""
    flat, meta = optimizer_to_flat(opt)
    weights = {k: v for name, module in modules.items() for k, v in prefixed(name, module.state_dict()).items()}
    save_checkpoint(ckpt_dir, {**weights, **flat, **rng_tensors(generator)}, {**meta, "step": step, "minutes": minutes})


def resume_progress(ckpt_dir: Path, modules: dict[str, torch.nn.Module], opt: torch.optim.Optimizer,
                    generator: torch.Generator) -> tuple[int, float]:
    """Load what save_progress wrote back into the modules, optimizer and RNG: (step, minutes spent), or (0, 0.0)
    when there is no checkpoint yet."""
    loaded = load_checkpoint(ckpt_dir)
    if loaded is None:
        return 0, 0.0
    tensors, meta = loaded
    for name, module in modules.items():
        module.load_state_dict(unprefixed(name, tensors))
    optimizer_from_flat(opt, tensors, meta)
    restore_rng(tensors, generator)
    return meta["step"], meta["minutes"]


class Budget:
    """Stops a stage at its step count or its minutes (minutes carried over across resumes)."""

    def __init__(self, steps: int, minutes: float, spent_minutes: float):
        self.steps, self.minutes, self.start, self.spent = steps, minutes, time.time(), spent_minutes

    def elapsed_minutes(self) -> float:
        return self.spent + (time.time() - self.start) / 60

    def progress(self, step: int) -> float:
        return max(step / self.steps, self.elapsed_minutes() / self.minutes)
