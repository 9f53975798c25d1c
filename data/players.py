"""Scripted players: action streams for recording training data.

A player is anything with `act(game) -> Action`; it may look at `game.pose`,
`game.player` and `game.world` (to jump over a block in its way, to swim up). Each
is driven by its own seeded generator, so the same seed on the same game gives the
same actions.

- `HumanLike`: plays the way people do. Behaviour comes in segments (walk, stand,
  strafe, back up, look around, mine, build, turn away and come back), keys are held
  for many frames, the mouse moves smoothly towards a target with a little tremor,
  sprint and sneak come in bursts, and it jumps over steps, out of water, and now and then
  for no reason.
- `Chaotic`: keys change at random every few frames and the mouse turns by up to 15
  degrees a frame, independently each frame. The next action cannot be guessed from the
  past frames, so a world model trained on it must read the actions to predict the
  frames (the references found this matters; human-like play alone teaches a model to
  extrapolate motion and ignore the controls).
- `Mixed`: alternates segments of the two.
- `Replay`: plays a fixed list of actions (for benchmark sequences).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from data.actions import Action
from data.blocks import Block

if TYPE_CHECKING:
    from data.game import Game

HUMAN_MAX_TURN = 10.0  # degrees per frame, a brisk but human mouse
CHAOTIC_MAX_YAW = 15.0
CHAOTIC_MAX_PITCH = 10.0
LOOK_PITCH_RANGE = (-70.0, 60.0)  # where a human-like player keeps its gaze


class Player(Protocol):
    def act(self, game: Game) -> Action: ...


def angle_diff(target: float, current: float) -> float:
    """Signed shortest turn in degrees from `current` to `target`, in [-180, 180)."""
    return (target - current + 180.0) % 360.0 - 180.0


def _ahead(game: Game, yaw: float, forward: float, strafe: float, dist: float = 0.7) -> tuple[int, int, int]:
    """The cell at the player's feet `dist` blocks away in the direction it is moving."""
    yaw_r = math.radians(yaw)
    fx, fz = math.sin(yaw_r), -math.cos(yaw_r)
    dx, dz = forward * fx - strafe * fz, forward * fz + strafe * fx
    norm = math.hypot(dx, dz) or 1.0
    pose = game.pose
    return (
        math.floor(pose.x + dx / norm * dist),
        math.floor(pose.y + 0.01),
        math.floor(pose.z + dz / norm * dist),
    )


def obstacle(game: Game, keys: set[str]) -> str:
    """What lies in the direction of the held movement keys: "none", "step" (jumpable) or "wall"."""
    forward = float("forward" in keys) - float("back" in keys)
    strafe = float("right" in keys) - float("left" in keys)
    if forward == 0.0 and strafe == 0.0:
        return "none"
    x, y, z = _ahead(game, game.pose.yaw, forward, strafe)
    world = game.world
    if not world.is_solid(x, y, z):
        return "none"
    if world.is_solid(x, y + 1, z) or world.is_solid(x, y + 2, z):
        return "wall"
    return "step"


def shore_heading(game: Game, max_dist: int = 24) -> float | None:
    """Yaw (degrees) towards the nearest column topped by land rather than water, or None."""
    pose, world = game.pose, game.world
    best: tuple[int, float] | None = None
    for yaw in np.arange(0.0, 360.0, 22.5):
        fx, fz = math.sin(math.radians(yaw)), -math.cos(math.radians(yaw))
        for r in range(1, max_dist + 1):
            x, z = math.floor(pose.x + fx * r), math.floor(pose.z + fz * r)
            if world.get(x, world.surface_y(x, z) - 1, z) != Block.WATER:
                if best is None or r < best[0]:
                    best = (r, float(yaw))
                break
    return None if best is None else best[1]


class HumanLike:
    """Persistent, smooth, purposeful play; see the module docstring."""

    # mode -> (weight, shortest, longest) segment length in frames
    MODES: dict[str, tuple[float, int, int]] = {
        "walk": (0.40, 40, 160),
        "idle": (0.07, 10, 40),
        "strafe": (0.09, 10, 40),
        "back": (0.04, 8, 25),
        "look_around": (0.10, 30, 80),
        "mine": (0.10, 20, 60),
        "build": (0.08, 15, 45),
        "turn_away": (0.12, 300, 300),
    }

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 101])
        self.mode = "idle"
        self.left = 0  # frames left in this mode
        self.keys: set[str] = set()
        self.target_yaw: float | None = None
        self.target_pitch = 0.0
        self.retarget_in = 0
        self.sprint_left = 0
        self.sneak_left = 0
        self.origin = (0.0, 0.0)  # yaw, pitch to come back to after turning away
        self.turn_phase = 0  # turn away: 0 turning, 1 looking elsewhere, 2 turning back
        self.hold = 0
        self.pillar = False  # build: jump and place under the feet
        self.use_cooldown = 0
        self.recent_xz: list[tuple[float, float]] = []
        self.water_ticks = 0

    def restart(self) -> None:
        """Forget the current segment (a Mixed player calls this when handing control back)."""
        self.left = 0
        self.target_yaw = None

    # ----- segments ------------------------------------------------------------------------
    def _start(self, game: Game) -> None:
        names = list(self.MODES)
        weights = np.array([self.MODES[n][0] for n in names])
        self.mode = names[int(self.rng.choice(len(names), p=weights / weights.sum()))]
        _, lo, hi = self.MODES[self.mode]
        self.left = int(self.rng.integers(lo, hi + 1))
        pose = game.pose
        self.target_yaw, self.target_pitch = pose.yaw, self._gaze_pitch()
        self.retarget_in = 0
        self.keys = set()
        if self.mode == "walk":
            self.keys = {"forward"}
        elif self.mode == "strafe":
            self.keys = {str(self.rng.choice(["left", "right"]))}
            if self.rng.random() < 0.4:
                self.keys.add("forward")
        elif self.mode == "back":
            self.keys = {"back"}
        elif self.mode == "mine":
            self.target_pitch = float(self.rng.choice([self.rng.uniform(-60, -30), self.rng.uniform(-15, 5)]))
        elif self.mode == "build":
            self.target_pitch = float(self.rng.uniform(-75, -45))
            self.pillar = bool(self.rng.random() < 0.3)
            if self.pillar:
                self.target_pitch = -89.0
        elif self.mode == "turn_away":
            self.origin = (pose.yaw, pose.pitch)
            self.target_yaw = pose.yaw + float(self.rng.choice([-1, 1]) * self.rng.uniform(100, 180))
            self.target_pitch = float(np.clip(pose.pitch + self.rng.normal(0, 10), *LOOK_PITCH_RANGE))
            self.turn_phase = 0
            self.left = 300  # a cap: the segment ends once the player has looked back (see _turn_away)

    def _gaze_pitch(self) -> float:
        return float(np.clip(self.rng.normal(-5.0, 10.0), -35.0, 25.0))

    # ----- the mouse -----------------------------------------------------------------------
    def _look(self, game: Game, max_turn: float = HUMAN_MAX_TURN) -> tuple[float, float]:
        pose = game.pose
        target_yaw = pose.yaw if self.target_yaw is None else self.target_yaw
        d_yaw = float(np.clip(angle_diff(target_yaw, pose.yaw) * 0.25, -max_turn, max_turn))
        d_pitch = float(np.clip((self.target_pitch - pose.pitch) * 0.25, -max_turn, max_turn))
        d_yaw += float(self.rng.normal(0.0, 0.3))  # the hand's tremor
        d_pitch += float(self.rng.normal(0.0, 0.2))
        return round(d_pitch, 3), round(d_yaw, 3)

    # ----- one frame -----------------------------------------------------------------------
    def act(self, game: Game) -> Action:
        if self.left <= 0:
            self._start(game)
        self.left -= 1
        pose = game.pose
        self.recent_xz = (self.recent_xz + [(pose.x, pose.z)])[-12:]
        self._head_for_shore(game)
        keys = set(self.keys)

        if self.mode in ("walk", "strafe", "back", "look_around"):
            self.retarget_in -= 1
            if self.retarget_in <= 0:
                spread = 70.0 if self.mode == "look_around" else 35.0
                self.target_yaw = pose.yaw + float(self.rng.normal(0.0, spread))
                self.target_pitch = (
                    float(np.clip(self.rng.normal(0, 25), *LOOK_PITCH_RANGE)) if self.mode == "look_around"
                    else self._gaze_pitch()
                )  # fmt: skip
                self.retarget_in = int(self.rng.integers(8, 25) if self.mode == "look_around" else self.rng.integers(20, 70))
        if self.mode == "walk":
            self._walk_extras(keys)
        elif self.mode == "mine":
            keys.add("attack")
            if self.rng.random() < 0.02:  # step into the hole now and then
                self.keys = {"forward"} if not self.keys else set()
        elif self.mode == "build":
            self._build(keys)
        elif self.mode == "turn_away":
            self._turn_away(pose)
        elif self.mode == "idle" and self.rng.random() < 0.01:
            self.sneak_left = int(self.rng.integers(5, 20))

        if self.sneak_left > 0:
            self.sneak_left -= 1
            keys.add("sneak")
            keys.discard("sprint")
        if self._blocked(keys, game):
            keys.add("jump")
        elif self.rng.random() < 0.01:
            keys.add("jump")
        if game.player.in_water:
            keys.add("jump")  # swim up, and climb out at the shore
        return Action(frozenset(keys), self._look(game))

    def _head_for_shore(self, game: Game) -> None:
        """People do not tread water for long: after a while in it, swim towards the nearest land."""
        self.water_ticks = self.water_ticks + 1 if game.player.in_water else 0
        if self.water_ticks % 30 != 20 or self.mode == "turn_away":
            return
        heading = shore_heading(game)
        if heading is not None:
            self.mode, self.keys = "walk", {"forward"}
            self.target_yaw, self.target_pitch = heading, 0.0
            self.retarget_in = 40
            self.left = max(self.left, 40)

    def _walk_extras(self, keys: set[str]) -> None:
        if self.sprint_left == 0 and self.sneak_left == 0 and self.rng.random() < 0.015:
            self.sprint_left = int(self.rng.integers(20, 80))
        if self.sneak_left == 0 and self.rng.random() < 0.004:
            self.sneak_left = int(self.rng.integers(10, 40))
        if self.sprint_left > 0:
            self.sprint_left -= 1
            keys.add("sprint")

    def _build(self, keys: set[str]) -> None:
        if self.pillar:
            keys.add("jump")  # jump and place under the feet: a pillar
        if self.use_cooldown > 0:
            self.use_cooldown -= 1
        else:
            keys.add("use")
            self.use_cooldown = int(self.rng.integers(3, 10))
            if not self.pillar:  # look at a neighbouring spot for the next block
                self.target_yaw = (self.target_yaw or 0.0) + float(self.rng.normal(0, 15))

    def _turn_away(self, pose) -> None:
        if self.turn_phase == 0 and abs(angle_diff(self.target_yaw, pose.yaw)) < 3.0:
            self.turn_phase, self.hold = 1, int(self.rng.integers(10, 40))
        elif self.turn_phase == 1:
            self.hold -= 1
            if self.hold <= 0:
                self.turn_phase = 2
                self.target_yaw, self.target_pitch = self.origin
        elif self.turn_phase == 2 and abs(angle_diff(self.origin[0], pose.yaw)) < 1.0:
            self.left = min(self.left, 10)  # look at what is there again for a moment, then move on

    def _blocked(self, keys: set[str], game: Game) -> bool:
        """Jump over a step; turn away from a wall or from being stuck."""
        ahead = obstacle(game, keys)
        if ahead == "step":
            return True
        stuck = (
            len(self.recent_xz) == 12
            and {"forward", "back", "left", "right"} & keys
            and math.dist(self.recent_xz[0], self.recent_xz[-1]) < 0.3
        )
        if (ahead == "wall" or stuck) and self.mode in ("walk", "strafe", "back"):
            self.target_yaw = game.pose.yaw + float(self.rng.choice([-1, 1]) * self.rng.uniform(60, 180))
            self.retarget_in = int(self.rng.integers(20, 50))
            self.recent_xz = []
            return bool(self.rng.random() < 0.5)  # sometimes try a jump anyway
        return False


class Chaotic:
    """Random keys that change every few frames and large, independent mouse moves each frame."""

    KEY_PROBS: dict[str, float] = {
        "forward": 0.4, "back": 0.15, "left": 0.2, "right": 0.2, "jump": 0.2,
        "attack": 0.15, "use": 0.08, "sprint": 0.25, "sneak": 0.1,
    }  # fmt: skip

    def __init__(self, seed: int, change_prob: float = 0.35) -> None:
        if not 0.0 < change_prob <= 1.0:
            raise ValueError(f"change_prob must be in (0, 1], got {change_prob}")
        self.rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 202])
        self.change_prob = change_prob
        self.keys: frozenset[str] = frozenset()

    def restart(self) -> None:
        pass

    def act(self, game: Game) -> Action:
        if self.rng.random() < self.change_prob:
            self.keys = frozenset(k for k, p in self.KEY_PROBS.items() if self.rng.random() < p)
        d_yaw = float(self.rng.uniform(-CHAOTIC_MAX_YAW, CHAOTIC_MAX_YAW)) if self.rng.random() < 0.8 else 0.0
        d_pitch = float(self.rng.uniform(-CHAOTIC_MAX_PITCH, CHAOTIC_MAX_PITCH)) if self.rng.random() < 0.7 else 0.0
        # Near the pitch limit a turn further would be clamped away, and an action with no effect
        # teaches the model to ignore actions: steer back towards the horizon instead.
        pitch = game.pose.pitch
        if pitch > 50.0:
            d_pitch = -abs(d_pitch)
        elif pitch < -50.0:
            d_pitch = abs(d_pitch)
        return Action(self.keys, (round(d_pitch, 3), round(d_yaw, 3)))


class Mixed:
    """Segments of human-like and chaotic play, 40 to 200 frames each."""

    def __init__(self, seed: int, chaotic_share: float = 0.4) -> None:
        if not 0.0 <= chaotic_share <= 1.0:
            raise ValueError(f"chaotic_share must be in [0, 1], got {chaotic_share}")
        self.rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 303])
        self.players: dict[str, HumanLike | Chaotic] = {"human": HumanLike(seed), "chaotic": Chaotic(seed)}
        self.chaotic_share = chaotic_share
        self.current = "human"
        self.left = 0

    def act(self, game: Game) -> Action:
        if self.left <= 0:
            self.current = "chaotic" if self.rng.random() < self.chaotic_share else "human"
            self.players[self.current].restart()
            self.left = int(self.rng.integers(40, 201))
        self.left -= 1
        return self.players[self.current].act(game)


class Replay:
    """Plays a fixed list of actions, then no-ops."""

    def __init__(self, actions: list[Action]) -> None:
        self.actions = list(actions)
        self.t = 0

    def act(self, game: Game) -> Action:
        act = self.actions[self.t] if self.t < len(self.actions) else Action()
        self.t += 1
        return act


PLAYERS: dict[str, Callable[[int], Player]] = {"human": HumanLike, "chaotic": Chaotic, "mixed": Mixed}


def make_player(name: str, seed: int) -> Player:
    """A scripted player by name (see PLAYERS)."""
    if name not in PLAYERS:
        raise ValueError(f"unknown player {name!r}; choose one of {', '.join(PLAYERS)}")
    return PLAYERS[name](seed)


def long_play_actions(n: int) -> list[Action]:
    """A scripted loop of 20-frame segments: walk, turn while walking, look around, jump, back up."""
    segments = [
        Action(frozenset({"forward"})),
        Action(frozenset({"forward"}), (0.0, 5.0)),
        Action(camera=(0.0, -8.0)),
        Action(),
        Action(frozenset({"forward", "jump"})),
        Action(camera=(3.0, 0.0)),
        Action(camera=(-3.0, 4.0)),
        Action(frozenset({"back"})),
        Action(frozenset({"left"})),
        Action(frozenset({"forward", "sprint"}), (0.0, -3.0)),
    ]
    return [segments[(t // 20) % len(segments)] for t in range(n)]
