"""The player: Minecraft-like movement, collision, mouse look and block interaction.

One call to `Player.step(world, act)` is one game tick (20 per second, one per frame).
The numbers follow Minecraft's Java edition, so that speeds, jump heights and the
feel of the controls match what world models trained on Minecraft expect:

- Horizontal: each tick the input (forward/back, left/right, each scaled by 0.98 as
  Minecraft does, and by 0.3 while sneaking) is turned into an acceleration of 0.1
  blocks/tick on the ground (x1.3 sprinting) or 0.02 in the air; after moving, velocity
  is multiplied by the friction 0.6 * 0.91 = 0.546 (ice: 0.98 * 0.91) on the ground or 0.91
  in the air. Terminal speeds: walk 0.2159 blocks/tick = 4.317 m/s, sprint 5.612 m/s,
  sneak 1.295 m/s. Two directions at once are normalized to length 1 (so 4.405 m/s, 2% faster than
  straight, exactly as in Minecraft).
- Vertical: a jump sets the vertical velocity to 0.42 (sprint-jumping also adds 0.2 forward);
  after moving, vy = (vy - 0.08) * 0.98. The peak of a jump is 1.252 blocks, enough to jump
  onto a 1-block step but not onto a 2-block wall. Falls reach at most 3.92 blocks/tick.
- Water (any water cell overlapping the body): accelerations 0.02, drag 0.8 on all axes,
  sinking at 0.02/tick^2 (terminal ~1.6 m/s); holding jump swims up (+0.04/tick), and
  swimming against a ledge at most about a block above the feet hops out onto it (vy = 0.42;
  Minecraft's 0.3 is not enough here because our swimmer floats with its feet at the surface).
- Collision: an axis-aligned box 0.6 wide and 1.8 tall against SOLID blocks, resolved one
  axis at a time (y, then x, then z), so the player slides along walls, falls off edges and
  never walks through a block. There is no automatic step-up: 1-block steps need a jump.
  Unlike Minecraft, sneaking does NOT stop the player at edges (kept simple; you fall off).
- Look: yaw += camera yaw, pitch += camera pitch; pitch is clamped to [-89, 89] degrees
  (not 90: at exactly +-90 the view direction and "up" are parallel and yaw is undefined).
  Yaw is kept in [0, 360).
- Sprint only while forward is held (and neither back nor sneak); sprint ends when forward
  is released. The field of view eases from 70 to 70 * 1.15 while sprinting (half the
  remaining gap per tick, like Minecraft's FOV easing).
- Eye height 1.62 blocks, eased to 1.27 while sneaking.
- Attack breaks the BREAKABLE block under the crosshair within 4.5 blocks (found with the
  renderer's ray cast) on the tick it is pressed, and again with every new swing (every 5
  ticks) while held. Use places PLACED_BLOCK in the empty cell in front of the face that was
  hit, unless that cell overlaps the player; on press and every 4 ticks while held. Every
  press starts a hand swing (shown on the next 5 frames), even when nothing is hit, and
  holding attack keeps swinging with no frame at rest.
- The hand bobs with distance walked on the ground (Minecraft's view-bobbing phase:
  pi radians per block, one left-right cycle every 2 blocks); the phase is 0 when not walking.

Everything is deterministic: no randomness, no wall-clock time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from data.actions import Action
from data.blocks import BREAKABLE, PLACED_BLOCK, SOLID, Block
from data.render import View, raycast_block
from data.world import World

# Body and eyes (blocks).
HALF_WIDTH = 0.3
HEIGHT = 1.8
EYE_HEIGHT = 1.62
SNEAK_EYE_HEIGHT = 1.27
EYE_EASING = 0.5  # fraction of the remaining gap closed per tick

# Horizontal movement (blocks/tick, Minecraft's values).
INPUT_SCALE = 0.98
SNEAK_INPUT_SCALE = 0.3
GROUND_ACCEL = 0.1
AIR_ACCEL = 0.02
WATER_ACCEL = 0.02
SPRINT_FACTOR = 1.3
AIR_FRICTION = 0.91
DEFAULT_SLIPPERINESS = 0.6
ICE_SLIPPERINESS = 0.98
WATER_DRAG = 0.8

# Vertical movement.
JUMP_VELOCITY = 0.42
SPRINT_JUMP_BOOST = 0.2
GRAVITY = 0.08
VERTICAL_DRAG = 0.98
WATER_GRAVITY = 0.02
WATER_SWIM_UP = 0.04
WATER_LEDGE_BOOST = JUMP_VELOCITY  # Minecraft uses 0.3; our floating body sits lower, so a full jump
WATER_LEDGE_LIFT = 1.3  # the ledge must leave room for the body this far above the feet

# Look and field of view.
PITCH_LIMIT = 89.0
FOV = 70.0
SPRINT_FOV_FACTOR = 1.15
FOV_EASING = 0.5

# Interaction.
REACH = 4.5
SWING_TICKS = 6  # a swing shows on the 5 frames after the press (progress 1/6 .. 5/6)
ATTACK_REPEAT_TICKS = SWING_TICKS - 1  # held attack: the next swing starts as the last one ends
USE_REPEAT_TICKS = 4

# Tiny gap used when deciding which cells a box overlaps, so that a box resting exactly
# on a face (y == 64.0) does not count as inside the block below.
EPS = 1e-7


@dataclass(frozen=True)
class Pose:
    """Where the player stands: feet position (blocks) and view angles (degrees)."""

    x: float
    y: float
    z: float
    yaw: float = 0.0
    pitch: float = 0.0

    def __post_init__(self) -> None:
        for name in ("x", "y", "z", "yaw", "pitch"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"pose {name} is {value}; it must be finite")
            object.__setattr__(self, name, value)
        if abs(self.pitch) > 90.0:
            raise ValueError(f"pose pitch {self.pitch} is outside [-90, 90] degrees")

    def to_dict(self) -> dict[str, float]:
        return {"x": self.x, "y": self.y, "z": self.z, "yaw": self.yaw, "pitch": self.pitch}

    @classmethod
    def from_dict(cls, d: dict) -> Pose:
        return cls(d["x"], d["y"], d["z"], d.get("yaw", 0.0), d.get("pitch", 0.0))


@dataclass(frozen=True)
class StepInfo:
    """What one tick changed in the world. Cells are integer (x, y, z) with x and z wrapped."""

    broken: tuple[int, int, int] | None = None
    broken_block: int | None = None
    placed: tuple[int, int, int] | None = None
    swing_started: bool = False


def _cells(lo: float, hi: float) -> range:
    """Integer cells overlapped by the open interval (lo, hi)."""
    return range(math.floor(lo + EPS), math.floor(hi - EPS) + 1)


def _forward_vector(yaw_deg: float) -> tuple[float, float]:
    """Unit (dx, dz) the player faces at this yaw: yaw 0 is north (-z), 90 is east (+x)."""
    yaw = math.radians(yaw_deg)
    return math.sin(yaw), -math.cos(yaw)


class Player:
    """The simulated player. `step` advances one tick; `view` says what the camera sees."""

    def __init__(self, pose: Pose, world: World | None = None) -> None:
        """Start at `pose`; given the world, the player knows at once whether it stands on ground."""
        self.x, self.y, self.z = pose.x, pose.y, pose.z
        self.yaw = pose.yaw % 360.0
        self.pitch = float(np.clip(pose.pitch, -PITCH_LIMIT, PITCH_LIMIT))
        self.vx = self.vy = self.vz = 0.0
        self.on_ground = False
        self.in_water = False
        self.sneaking = False
        self.sprinting = False
        self.eye_height = EYE_HEIGHT
        self.fov = FOV
        self.swing_tick = -1  # ticks into the current hand swing; -1 when the hand rests
        self.walk_distance = 0.0  # metres walked on the ground; drives the hand bob
        self.walking = False  # moving on the ground this tick (the hand bobs)
        self.tick = 0
        self._attack_held_ticks = 0
        self._use_held_ticks = 0
        if world is not None:
            self.on_ground = self._sweep(world, 1, -1e-3) != -1e-3

    # ----- state -----------------------------------------------------------------------
    @property
    def pose(self) -> Pose:
        return Pose(self.x, self.y, self.z, self.yaw, self.pitch)

    @property
    def eye(self) -> tuple[float, float, float]:
        return (self.x, self.y + self.eye_height, self.z)

    @property
    def hand_swing(self) -> float:
        """Progress of the hand swing, 1/6 .. 5/6 over the five frames after a press; 0 at rest."""
        return 0.0 if self.swing_tick <= 0 else self.swing_tick / SWING_TICKS

    @property
    def hand_bob(self) -> float:
        """The walking bob phase in radians for the renderer: pi per block walked; 0 when not walking."""
        return (self.walk_distance * math.pi) % (2 * math.pi) if self.walking else 0.0

    def view(self, wrap: int | None = None) -> View:
        """The camera: eye, angles, field of view, hand animation. `wrap` = world size folds x, z into it."""
        x, y, z = self.eye
        if wrap is not None:
            x, z = x % wrap, z % wrap
        return View(
            eye=(x, y, z),
            yaw=self.yaw,
            pitch=self.pitch,
            fov=self.fov,
            hand_swing=self.hand_swing,
            hand_bob=self.hand_bob,
        )

    def state_dict(self) -> dict[str, float | bool | int]:
        """Everything a recording needs to describe this tick beyond the pose."""
        return {
            "vx": self.vx,
            "vy": self.vy,
            "vz": self.vz,
            "on_ground": self.on_ground,
            "in_water": self.in_water,
            "sneaking": self.sneaking,
            "sprinting": self.sprinting,
            "eye_height": self.eye_height,
            "fov": self.fov,
            "hand_swing": self.hand_swing,
            "hand_bob": self.hand_bob,
        }

    # ----- one tick --------------------------------------------------------------------
    def step(self, world: World, act: Action) -> StepInfo:
        """Advance one tick: look, then interact, then move. Returns what changed in the world."""
        self.tick += 1
        self._look(act)
        info = self._interact(world, act)
        self._move(world, act)
        self._animate(act)
        return info

    def _look(self, act: Action) -> None:
        d_pitch, d_yaw = act.camera
        self.yaw = (self.yaw + d_yaw) % 360.0
        self.pitch = min(PITCH_LIMIT, max(-PITCH_LIMIT, self.pitch + d_pitch))

    def _interact(self, world: World, act: Action) -> StepInfo:
        attack, use = act.pressed("attack"), act.pressed("use")
        self._attack_held_ticks = self._attack_held_ticks + 1 if attack else 0
        self._use_held_ticks = self._use_held_ticks + 1 if use else 0
        # Act on the press, then once per swing (attack) or every USE_REPEAT_TICKS (use) while held.
        do_attack = attack and (self._attack_held_ticks - 1) % ATTACK_REPEAT_TICKS == 0
        do_use = use and not do_attack and (self._use_held_ticks - 1) % USE_REPEAT_TICKS == 0
        if not (do_attack or do_use):
            return StepInfo()
        self.swing_tick = 0  # the hand swings even when the crosshair is on the sky
        hit = raycast_block(world, self.eye, self.yaw, self.pitch, REACH)
        if hit is None:
            return StepInfo(swing_started=True)
        cell, adjacent = hit
        if do_attack:
            block = int(world.get(*cell))
            if not BREAKABLE[block]:
                return StepInfo(swing_started=True)
            world.set(*cell, Block.AIR)
            return StepInfo(broken=tuple(int(c) for c in cell), broken_block=block, swing_started=True)
        if adjacent is None or not 0 <= adjacent[1] < world.height:
            return StepInfo(swing_started=True)
        if SOLID[int(world.get(*adjacent))] or self._overlaps_cell(adjacent, world.size):
            return StepInfo(swing_started=True)
        world.set(*adjacent, PLACED_BLOCK)
        return StepInfo(placed=tuple(int(c) for c in adjacent), swing_started=True)

    def _overlaps_cell(self, cell: tuple[int, int, int], size: int) -> bool:
        """Whether the player's box overlaps the cell (x and z compared on the torus)."""
        cx, cy, cz = cell

        def near(c: int, p: float) -> float:  # the copy of cell c closest to position p
            return c + size * round((p - c - 0.5) / size)

        x0 = near(cx, self.x)
        z0 = near(cz, self.z)
        return (
            self.x - HALF_WIDTH < x0 + 1 - EPS and self.x + HALF_WIDTH > x0 + EPS
            and self.y < cy + 1 - EPS and self.y + HEIGHT > cy + EPS
            and self.z - HALF_WIDTH < z0 + 1 - EPS and self.z + HALF_WIDTH > z0 + EPS
        )

    def _move(self, world: World, act: Action) -> None:
        forward = float(act.pressed("forward")) - float(act.pressed("back"))
        strafe = float(act.pressed("right")) - float(act.pressed("left"))
        self.sneaking = act.pressed("sneak")
        self.sprinting = (
            act.pressed("sprint") and act.pressed("forward") and not act.pressed("back") and not self.sneaking
        )
        forward *= INPUT_SCALE
        strafe *= INPUT_SCALE
        if self.sneaking:
            forward *= SNEAK_INPUT_SCALE
            strafe *= SNEAK_INPUT_SCALE

        self.in_water = self._touches_water(world)
        fx, fz = _forward_vector(self.yaw)
        if self.in_water:
            if act.pressed("jump"):
                self.vy += WATER_SWIM_UP
            accel, friction = WATER_ACCEL, WATER_DRAG
        elif self.on_ground:
            if act.pressed("jump"):
                self.vy = JUMP_VELOCITY
                if self.sprinting:
                    self.vx += fx * SPRINT_JUMP_BOOST
                    self.vz += fz * SPRINT_JUMP_BOOST
            slip = self._slipperiness(world) * AIR_FRICTION
            # Minecraft scales ground acceleration so that walking speed does not depend on
            # the surface: 0.16277 = 0.546^3, so on ordinary ground the factor is 1.
            accel, friction = GROUND_ACCEL * (0.16277136 / slip**3), slip
        else:
            accel, friction = AIR_ACCEL, AIR_FRICTION
        if self.sprinting:
            accel *= SPRINT_FACTOR

        # Turn the input into an acceleration along the facing direction (normalized when longer than 1).
        length = math.hypot(forward, strafe)
        if length >= 1e-4:
            scale = accel / max(length, 1.0)
            rx, rz = -fz, fx  # right of facing: yaw 0 faces -z, so right is +x
            self.vx += (forward * fx + strafe * rx) * scale
            self.vz += (forward * fz + strafe * rz) * scale

        # Move axis by axis; a blocked axis loses its velocity.
        wanted = (self.vx, self.vy, self.vz)
        moved_y = self._sweep(world, 1, self.vy)
        self.y += moved_y
        moved_x = self._sweep(world, 0, self.vx)
        self.x += moved_x
        moved_z = self._sweep(world, 2, self.vz)
        self.z += moved_z
        blocked_x = moved_x != wanted[0]
        blocked_z = moved_z != wanted[2]
        self.on_ground = wanted[1] < 0 and moved_y != wanted[1]
        if moved_y != wanted[1]:
            self.vy = 0.0
        if blocked_x:
            self.vx = 0.0
        if blocked_z:
            self.vz = 0.0
        if blocked_x or blocked_z:
            self.sprinting = False
        if self.on_ground:
            self.walk_distance += math.hypot(moved_x, moved_z)

        # Forces after the move, as in Minecraft's travel().
        if self.in_water:
            self.vx *= friction
            self.vz *= friction
            self.vy = self.vy * WATER_DRAG - WATER_GRAVITY
            # Swimming into a ledge with room above it (at most a jump high) hops out onto it.
            nudge_x = math.copysign(0.1, wanted[0]) if blocked_x else 0.0
            nudge_z = math.copysign(0.1, wanted[2]) if blocked_z else 0.0
            if (blocked_x or blocked_z) and self._box_free(world, nudge_x, WATER_LEDGE_LIFT, nudge_z):
                self.vy = max(self.vy, WATER_LEDGE_BOOST)
        else:
            self.vx *= friction
            self.vz *= friction
            self.vy = (self.vy - GRAVITY) * VERTICAL_DRAG

    def _animate(self, act: Action) -> None:
        if self.swing_tick >= 0:
            self.swing_tick += 1
            if self.swing_tick >= SWING_TICKS:
                self.swing_tick = -1
        target_eye = SNEAK_EYE_HEIGHT if self.sneaking else EYE_HEIGHT
        self.eye_height += (target_eye - self.eye_height) * EYE_EASING
        target_fov = FOV * SPRINT_FOV_FACTOR if self.sprinting else FOV
        self.fov += (target_fov - self.fov) * FOV_EASING
        self.walking = self.on_ground and math.hypot(self.vx, self.vz) > 0.01

    # ----- collision helpers -----------------------------------------------------------
    def _box(self) -> tuple[list[float], list[float]]:
        lo = [self.x - HALF_WIDTH, self.y, self.z - HALF_WIDTH]
        hi = [self.x + HALF_WIDTH, self.y + HEIGHT, self.z + HALF_WIDTH]
        return lo, hi

    def _sweep(self, world: World, axis: int, delta: float) -> float:
        """How far the box can move along `axis` (0 x, 1 y, 2 z) towards `delta` before a solid cell."""
        if delta == 0.0:
            return 0.0
        lo, hi = self._box()
        a, b = [i for i in range(3) if i != axis]
        cross = [(i, j) for i in _cells(lo[a], hi[a]) for j in _cells(lo[b], hi[b])]
        if delta > 0:
            start = math.floor(hi[axis] - EPS) + 1
            cells = range(start, math.floor(hi[axis] + delta - EPS) + 1)
        else:
            start = math.floor(lo[axis] + EPS) - 1
            cells = range(start, math.floor(lo[axis] + delta + EPS) - 1, -1)
        for c in cells:
            for i, j in cross:
                idx = [0, 0, 0]
                idx[axis], idx[a], idx[b] = c, i, j
                if world.is_solid(*idx):
                    return (c - hi[axis]) if delta > 0 else (c + 1 - lo[axis])
        return delta

    def _touches_water(self, world: World) -> bool:
        lo, hi = self._box()
        for x in _cells(lo[0], hi[0]):
            for y in _cells(lo[1], lo[1] + 0.4):  # feet and lower body, as Minecraft's check
                for z in _cells(lo[2], hi[2]):
                    if world.get(x, y, z) == Block.WATER:
                        return True
        return False

    def _box_free(self, world: World, dx: float, dy: float, dz: float) -> bool:
        """Whether the box moved by (dx, dy, dz) overlaps no solid cell (a ledge to climb onto)."""
        lo, hi = self._box()
        for x in _cells(lo[0] + dx, hi[0] + dx):
            for y in _cells(lo[1] + dy, hi[1] + dy):
                for z in _cells(lo[2] + dz, hi[2] + dz):
                    if world.is_solid(x, y, z):
                        return False
        return True

    def _slipperiness(self, world: World) -> float:
        below = world.get(math.floor(self.x), math.floor(self.y - 0.5), math.floor(self.z))
        return ICE_SLIPPERINESS if below == Block.ICE else DEFAULT_SLIPPERINESS
