"""What every training stage here uses: the clip dataset's factory type, the EMA update, the RNG state a checkpoint
keeps, and the budget that stops a stage at its step count or its minutes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

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


class Budget:
    """Stops a stage at its step count or its minutes (minutes carried over across resumes)."""

    def __init__(self, steps: int, minutes: float, spent_minutes: float):
        self.steps, self.minutes, self.start, self.spent = steps, minutes, time.time(), spent_minutes

    def elapsed_minutes(self) -> float:
        return self.spent + (time.time() - self.start) / 60

    def progress(self, step: int) -> float:
        return max(step / self.steps, self.elapsed_minutes() / self.minutes)
