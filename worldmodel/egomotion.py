"""How the camera moves from one frame to the next, from the keys and the mouse alone.

The game's walking physics (data/physics.py: Minecraft's acceleration, friction, jump and gravity) run here
without a world: no walls, and the ground is flat at the height the play started on. So a held key gives the
step the player would take in the open, which is what it does most of the time; where a wall stops the
player, or a jump lands on a step, the world model's network corrects the difference. The sprint's field of
view easing is followed too.

    motion = EgoMotion()
    move = motion.step(keys_row, (d_pitch, d_yaw))   # (right, up, forward, zoom) for the frame this action makes
    pose = motion.pose()                             # where the camera is now (for the world memory)

The step is given in the camera frame of the NEW frame (after the look of the same tick, as the game looks,
then moves): blocks to the right, up and forward; zoom is tan(new fov / 2) / tan(old fov / 2), how much wider
the new frame sees (above 1 while a sprint starts).
The start pitch is assumed level unless given (the start image does not say where it looks); yaw only
matters relative to the start, so it starts at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from data.actions import KEY_INDEX
from data.physics import (
    AIR_ACCEL,
    AIR_FRICTION,
    DEFAULT_SLIPPERINESS,
    FOV,
    FOV_EASING,
    GRAVITY,
    GROUND_ACCEL,
    INPUT_SCALE,
    JUMP_VELOCITY,
    PITCH_LIMIT,
    SNEAK_INPUT_SCALE,
    SPRINT_FACTOR,
    SPRINT_FOV_FACTOR,
    SPRINT_JUMP_BOOST,
    VERTICAL_DRAG,
)
from worldmodel.memory import CameraPose


@dataclass
class EgoMotion:
    """The walking state of one play: velocity (blocks/tick, world axes with yaw relative to the start),
    position (x, z from the start; height above the start's ground), look angles and field of view."""

    x: float = 0.0
    z: float = 0.0
    vx: float = 0.0
    vy: float = 0.0
    vz: float = 0.0
    height: float = 0.0
    on_ground: bool = True
    yaw: float = 0.0
    pitch: float = 0.0
    fov: float = FOV

    def step(self, keys: np.ndarray, camera: tuple[float, float]) -> np.ndarray:
        """One tick for held keys (9,) and the mouse move (d_pitch, d_yaw) degrees -> float32 (4,) motion."""
        pressed = lambda name: bool(keys[KEY_INDEX[name]] > 0.5)
        self.yaw = (self.yaw + float(camera[1])) % 360.0
        self.pitch = min(PITCH_LIMIT, max(-PITCH_LIMIT, self.pitch + float(camera[0])))

        forward = (float(pressed("forward")) - float(pressed("back"))) * INPUT_SCALE
        strafe = (float(pressed("right")) - float(pressed("left"))) * INPUT_SCALE
        sneaking = pressed("sneak")
        sprinting = pressed("sprint") and pressed("forward") and not pressed("back") and not sneaking
        if sneaking:
            forward, strafe = forward * SNEAK_INPUT_SCALE, strafe * SNEAK_INPUT_SCALE
        fx, fz = math.sin(math.radians(self.yaw)), -math.cos(math.radians(self.yaw))
        if self.on_ground:
            if pressed("jump"):
                self.vy = JUMP_VELOCITY
                if sprinting:
                    self.vx, self.vz = self.vx + fx * SPRINT_JUMP_BOOST, self.vz + fz * SPRINT_JUMP_BOOST
            accel, friction = GROUND_ACCEL, DEFAULT_SLIPPERINESS * AIR_FRICTION
        else:
            accel, friction = AIR_ACCEL, AIR_FRICTION
        if sprinting:
            accel *= SPRINT_FACTOR
        length = math.hypot(forward, strafe)
        if length >= 1e-4:
            scale = accel / max(length, 1.0)
            self.vx += (forward * fx - strafe * fz) * scale
            self.vz += (forward * fz + strafe * fx) * scale

        # Move; the flat ground stops a fall at the start height.
        dx, dz = self.vx, self.vz
        dy = max(self.vy, -self.height)
        self.height += dy
        self.x, self.z = self.x + dx, self.z + dz
        self.on_ground = self.vy < 0 and self.height <= 0.0
        if self.on_ground:
            self.vy = 0.0
        self.vx, self.vz = self.vx * friction, self.vz * friction
        self.vy = (self.vy - GRAVITY) * VERTICAL_DRAG
        target_fov = FOV * (SPRINT_FOV_FACTOR if sprinting else 1.0)
        old_fov, self.fov = self.fov, self.fov + (target_fov - self.fov) * FOV_EASING
        zoom = math.tan(math.radians(self.fov) / 2) / math.tan(math.radians(old_fov) / 2)

        # The step in the new camera's axes: right (cos yaw, 0, sin yaw), forward along the look, up = right x forward.
        cy, sy = math.cos(math.radians(self.yaw)), math.sin(math.radians(self.yaw))
        cp, sp = math.cos(math.radians(self.pitch)), math.sin(math.radians(self.pitch))
        look = (sy * cp, sp, -cy * cp)
        up = (-sy * sp, cp, cy * sp)
        right_step = dx * cy + dz * sy
        up_step = dx * up[0] + dy * up[1] + dz * up[2]
        forward_step = dx * look[0] + dy * look[1] + dz * look[2]
        return np.array([right_step, up_step, forward_step, zoom], np.float32)

    def pose(self) -> CameraPose:
        """Where the camera is now, in the play's own world frame (origin at the start's eye, yaw from the start)."""
        return CameraPose(eye=(self.x, self.height, self.z), yaw=self.yaw, pitch=self.pitch, fov=self.fov)


def clip_motion(keys: np.ndarray, camera: np.ndarray, start_pitch: float = 0.0) -> np.ndarray:
    """Motion (T, 4) for a clip's actions (T, 9) and (T, 2): row t is the step actions[t] makes, into frame t + 1."""
    motion = EgoMotion(pitch=float(start_pitch))
    steps = [motion.step(k, c) for k, c in zip(np.asarray(keys), np.asarray(camera))]
    return np.stack(steps) if steps else np.zeros((0, 4), np.float32)
