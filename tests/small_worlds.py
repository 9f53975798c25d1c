"""Small, fast start scenes for the app tests: a 64x64x48 world instead of the full 256x64x256."""

import numpy as np

from data.game import Game


class SeedScene:
    """A start scene with the data.scenes interface (name, image(size), game(size))."""

    def __init__(self, seed: int) -> None:
        self.name, self.seed = f"seed-{seed}", seed

    def game(self, size: int) -> Game:
        return Game(self.seed, size=size, world_size=64, world_height=48)

    def image(self, size: int) -> np.ndarray:
        return self.game(size).reset()
