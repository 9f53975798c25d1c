"""First-person rendering of the voxel world: `View` and `render(world, view, width, height)`.

The pixels come from a C ray caster (data/render.c) compiled on first use with the
system C compiler and loaded through ctypes. The compiled library is cached under
$XDG_CACHE_HOME/worldmodel/native/<hash of source and flags>/render.so (or
~/.cache/...), written atomically so two processes compiling at once do not clash.
Flags are fixed (-O2 -ffp-contract=off, no -ffast-math, no -march=native) and every
sin/cos is computed here, so a frame is bit-identical across machines.

Axes (docs/ARCHITECTURE.md): x east, y up, z south; yaw 0 looks north (-z), yaw 90
looks east (+x); +pitch looks up; fov is vertical, in degrees.

Overlays that make actions visible to an inverse-dynamics model: a crosshair in the
centre, and a blocky first-person arm at the bottom right that swings down-left on
attack/use (`hand_swing`, the phase in (0, 1]) and bobs while walking (`hand_bob`).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import math
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.blocks import NUM_BLOCKS, Block
from data.textures import build_atlas, build_mipmaps
from data.world import World

SOURCE = Path(__file__).with_name("render.c")
CFLAGS = ("-O2", "-shared", "-fPIC", "-ffp-contract=off", "-std=c99")
VIEW_DISTANCE = 48.0  # blocks; fog reaches the sky colour there
HAND_FOV = 70.0  # the arm is drawn with its own fixed fov, so sprinting does not stretch it
FLAG_HAND, FLAG_CROSSHAIR = 1, 2
if Block.BEDROCK != 16:  # render.c draws below-the-world cells as block 16
    raise ImportError("data/render.c assumes Block.BEDROCK == 16; update its BEDROCK define")
MAX_COORDINATE = 1e6  # blocks; beyond this float32 cannot place the eye inside a block


@dataclass(frozen=True)
class View:
    """Where the camera is and what overlays to draw. `eye` is the eye position (x, y, z) in blocks."""

    eye: tuple[float, float, float]
    yaw: float
    pitch: float
    fov: float = 70.0
    hand_swing: float = 0.0  # 0 = arm at rest, (0, 1] = phase of a swing
    hand_bob: float = 0.0  # walking bob phase, radians
    show_hand: bool = True
    show_crosshair: bool = True
    view_distance: float = VIEW_DISTANCE

    def __post_init__(self) -> None:
        if len(self.eye) != 3:
            raise ValueError(f"View.eye must be (x, y, z), got {self.eye!r}")
        values = {"eye": self.eye, "yaw": [self.yaw], "pitch": [self.pitch], "fov": [self.fov],
                  "hand_swing": [self.hand_swing], "hand_bob": [self.hand_bob], "view_distance": [self.view_distance]}
        for name, items in values.items():
            if not all(math.isfinite(float(v)) for v in items):
                raise ValueError(f"View.{name} must be finite, got {items}")
        if not -90.0 <= self.pitch <= 90.0:
            raise ValueError(f"View.pitch must be within [-90, 90] degrees, got {self.pitch}")
        if not 1.0 <= self.fov <= 170.0:
            raise ValueError(f"View.fov must be within [1, 170] degrees, got {self.fov}")
        if not 0.0 <= self.hand_swing <= 1.0:
            raise ValueError(f"View.hand_swing must be within [0, 1], got {self.hand_swing}")
        if not 1.0 <= self.view_distance <= 512.0:
            raise ValueError(f"View.view_distance must be within [1, 512] blocks, got {self.view_distance}")


# ----------------------------------------------------------------------------- the C library


def _cache_dir() -> Path:
    """$XDG_CACHE_HOME/worldmodel/native (or ~/.cache/...); the temp folder if that cannot be written."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(root) / "worldmodel" / "native"
    try:
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"worldmodel-native-{os.getuid() if hasattr(os, 'getuid') else 0}"


def _compile() -> Path:
    """Compile render.c once per source/flags/platform; return the path of the shared library."""
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join(CFLAGS).encode() + platform.machine().encode()).hexdigest()[:16]
    target = _cache_dir() / key / "render.so"
    if target.exists():
        return target
    wanted = os.environ.get("CC")
    compiler = shutil.which(wanted) if wanted else (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang"))
    if compiler is None:
        raise RuntimeError(
            f"the renderer needs a C compiler to build {SOURCE}, and "
            + (f"CC={wanted!r} was not found" if wanted else "none was found (cc, gcc, clang)")
            + "; install one (e.g. `apt-get install gcc`) or point CC at it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        result = subprocess.run([compiler, *CFLAGS, "-o", tmp, str(SOURCE), "-lm"], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"compiling {SOURCE} with {compiler} failed:\n{result.stderr}")
        os.replace(tmp, target)  # atomic: a concurrent compile just replaces it with the same bytes
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


_LIB: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        lib = ctypes.CDLL(str(_compile()))
        p, i, f = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
        lib.wm_render.argtypes = [p, i, i, p, i, p, i, i, p, i, p, p, i, i, i, p, p]
        lib.wm_render.restype = i
        lib.wm_raycast.argtypes = [p, i, i, i, p, f, p]
        lib.wm_raycast.restype = i
        _LIB = lib
    return _LIB


_ATLAS: np.ndarray | None = None


def _atlas() -> np.ndarray:
    """The texture atlas and its mip levels, flattened one after another (the layout render.c reads)."""
    global _ATLAS
    if _ATLAS is None:
        _ATLAS = np.ascontiguousarray(np.concatenate([level.ravel() for level in build_mipmaps(build_atlas())]))
    return _ATLAS


CLOUD_CELLS = 24  # cloud cells across the world (about 11 blocks each in a 256-block world)
_CLOUDS: np.ndarray | None = None


def _clouds() -> np.ndarray:
    """uint8 (CLOUD_CELLS, CLOUD_CELLS) cloud map, the same for every world: 1 where a cloud is."""
    global _CLOUDS
    if _CLOUDS is None:
        from data.terrain import periodic_noise

        field = periodic_noise(np.random.default_rng(2024), CLOUD_CELLS, 6)
        _CLOUDS = np.ascontiguousarray((field > 0.62).astype(np.uint8))
    return _CLOUDS


# ----------------------------------------------------------------------------- camera and hand


def look_direction(yaw: float, pitch: float) -> tuple[float, float, float]:
    """Unit vector the camera looks along: yaw 0 is north (-z), yaw 90 east (+x), +pitch up."""
    cy, sy = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    cp, sp = math.cos(math.radians(pitch)), math.sin(math.radians(pitch))
    return (sy * cp, sp, -cy * cp)


def _camera(view: View) -> np.ndarray:
    """float32 [eye, forward, right, up, tan(fov/2), view distance] for wm_render."""
    fwd = look_direction(view.yaw, view.pitch)
    cy, sy = math.cos(math.radians(view.yaw)), math.sin(math.radians(view.yaw))
    right = (cy, 0.0, sy)
    up = (  # right x forward
        right[1] * fwd[2] - right[2] * fwd[1],
        right[2] * fwd[0] - right[0] * fwd[2],
        right[0] * fwd[1] - right[1] * fwd[0],
    )
    tan_half = math.tan(math.radians(view.fov) / 2)
    return np.array([*view.eye, *fwd, *right, *up, tan_half, view.view_distance], np.float32)


def _normalise(v: tuple[float, float, float]) -> tuple[float, float, float]:
    n = math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
    return (v[0] / n, v[1] / n, v[2] / n)


def _cross(a, b) -> tuple[float, float, float]:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


# Arm at rest, in camera space (x right, y up, z forward): where the fist is, and which
# way the arm runs from the fist back to the shoulder (off the bottom-right corner).
FIST_REST = (0.28, -0.30, 0.70)
ARM_REST = (0.28, -0.62, -0.45)
FIST_SWING = (-0.30, -0.16, 0.06)  # how far the fist travels at the peak of a swing (down-left)
ARM_SWING = (0.55, -0.25, -0.55)  # the arm's direction at the peak of a swing
ARM_HALF_WIDTH, ARM_LENGTH = 0.1, 0.95


def _hand(view: View, rows: int) -> np.ndarray:
    """float32 [rotation (3x3, columns = arm axes), fist, focal, half width, length] for wm_render."""
    # 0 at rest, 1 at the peak of the swing. As in Minecraft, the sideways part runs on
    # sqrt(progress): a fast strike and a slower return, so no two phases look alike.
    k = math.sin(math.pi * view.hand_swing)
    k_fast = math.sin(math.pi * math.sqrt(view.hand_swing))
    # Sideways once per stride, down at every step; phase 0 is the arm at rest.
    bob_x = 0.03 * math.sin(view.hand_bob)
    bob_y = -0.035 * abs(math.sin(view.hand_bob))
    fist = (
        FIST_REST[0] + k_fast * FIST_SWING[0] + bob_x,
        FIST_REST[1] + k * FIST_SWING[1] + bob_y,
        FIST_REST[2] + k * FIST_SWING[2],
    )
    rest, peak = _normalise(ARM_REST), _normalise(ARM_SWING)
    along = _normalise(tuple(r + k * (p - r) for r, p in zip(rest, peak)))
    side = _normalise(_cross((0.0, 1.0, 0.0), along))
    lift = _cross(along, side)
    rotation = [side[0], lift[0], along[0], side[1], lift[1], along[1], side[2], lift[2], along[2]]
    focal = (rows / 2) / math.tan(math.radians(HAND_FOV) / 2)
    return np.array([*rotation, *fist, focal, ARM_HALF_WIDTH, ARM_LENGTH], np.float32)


# ----------------------------------------------------------------------------- public API


def _check_blocks(world: World) -> None:
    """The C code trusts the array's shape and type; a mismatch would read out of bounds, so check here."""
    blocks, shape = world.blocks, (world.size, world.height, world.size)
    if not (blocks.flags.c_contiguous and blocks.dtype == np.uint8 and blocks.shape == shape):
        raise ValueError(f"world.blocks must be a C-contiguous uint8 array {shape}, got {blocks.dtype} {blocks.shape}")


def render(world: World, view: View, width: int, height: int | None = None) -> np.ndarray:
    """The first-person frame seen from `view`: uint8 (height, width, 3) RGB; height defaults to width."""
    return _render(world, view, width, width if height is None else height, None)


def render_with_depth(world: World, view: View, width: int, height: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The frame (as `render` draws it, byte for byte) and its inverse depth: float32 (height, width), 1 / the
    distance along the view axis in blocks to the surface each pixel shows; 0 for the sky and the arm (they do
    not move when the camera steps). The training data's ground truth for how far things are."""
    height = width if height is None else height
    inv_depth = np.empty((height, width), np.float32)
    return _render(world, view, width, height, inv_depth), inv_depth


@functools.lru_cache(maxsize=8)
def overlay_mask(width: int, height: int | None = None) -> np.ndarray:
    """bool (height, width): the pixels the arm (at any phase of its swing and walking bob) or the crosshair may
    cover. They are drawn on the screen, not in the world, so whatever reprojects the world (the world model's
    memory) must leave them out. Found by drawing the overlays over an empty sky and comparing (~0.3 s, cached)."""
    height = width if height is None else height
    sky = World(np.zeros((16, 64, 16), np.uint8))
    eye = (8.0, 32.0, 8.0)
    bare = render(sky, View(eye=eye, yaw=0.0, pitch=0.0, show_hand=False, show_crosshair=False), width, height)
    mask = np.zeros((height, width), bool)
    for swing in np.linspace(0.0, 1.0, 7):
        for bob in np.linspace(0.0, 2 * math.pi, 9):
            drawn = render(sky, View(eye=eye, yaw=0.0, pitch=0.0, hand_swing=float(swing), hand_bob=float(bob)), width, height)
            mask |= (drawn != bare).any(axis=-1)
    mask.flags.writeable = False
    return mask


def _render(world: World, view: View, width: int, height: int, inv_depth: np.ndarray | None) -> np.ndarray:
    if width < 8 or height < 8:
        raise ValueError(f"frame must be at least 8x8 pixels, got {width}x{height}")
    _check_blocks(world)
    tile_top, tiles = world.tile_top, world.size // world.tile
    if not (tile_top.flags.c_contiguous and tile_top.dtype == np.int32 and tile_top.shape == (tiles, tiles)):
        raise ValueError(f"world.tile_top must be C-contiguous int32 {(tiles, tiles)}; call world.refresh_render_bounds()")
    if max(abs(c) for c in view.eye) > MAX_COORDINATE:
        raise ValueError(f"View.eye {view.eye} is too far out; wrap x and z into the world first")
    out = np.empty((height, width, 3), np.uint8)
    cam = _camera(view)
    hand = _hand(view, height)
    flags = (FLAG_HAND if view.show_hand else 0) | (FLAG_CROSSHAIR if view.show_crosshair else 0)
    code = _lib().wm_render(
        world.blocks.ctypes.data, world.size, world.height,
        tile_top.ctypes.data, world.tile.bit_length() - 1,
        _atlas().ctypes.data, NUM_BLOCKS, int(Block.WATER),
        _clouds().ctypes.data, CLOUD_CELLS,
        cam.ctypes.data, hand.ctypes.data, flags,
        width, height, out.ctypes.data, None if inv_depth is None else inv_depth.ctypes.data,
    )  # fmt: skip
    if code != 0:
        raise RuntimeError(f"wm_render failed with code {code}")
    return out


def raycast_block(
    world: World, eye: tuple[float, float, float], yaw: float, pitch: float, reach: float
) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
    """The first solid block along the look direction within `reach` blocks, and the cell before it.

    Returns ((x, y, z) of the hit block, (x, y, z) of the empty cell the ray came from,
    where `use` places a block), both wrapped into the world, or None if nothing is in reach.
    Water is not a target: the ray passes through it.
    """
    _check_blocks(world)
    if not all(math.isfinite(c) and abs(c) <= MAX_COORDINATE for c in (*eye, yaw, pitch, reach)) or reach < 0:
        raise ValueError(f"raycast_block needs a finite eye within {MAX_COORDINATE:g} blocks and reach >= 0, "
                         f"got eye {eye}, reach {reach}")  # fmt: skip
    ray = np.array([*eye, *look_direction(yaw, pitch)], np.float32)
    out = np.zeros(6, np.int32)
    hit = _lib().wm_raycast(world.blocks.ctypes.data, world.size, world.height, int(Block.WATER), ray.ctypes.data,
                            float(reach), out.ctypes.data)  # fmt: skip
    if not hit:
        return None
    x, y, z, ax, ay, az = (int(v) for v in out)
    return (x, y, z), (ax, ay, az)
