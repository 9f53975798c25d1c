"""The world memory: everything the model has shown, kept as coloured points in world coordinates.

A streaming model that sees only its last few frames forgets: turn away and back, and the place is new. This
memory is a geometry cache (the idea of VMem's surfels and of the depth-warp-and-inpaint world generators):
each shown pixel becomes a point, placed in the world by the camera's pose (the keys and mouse through
worldmodel.egomotion) and the pixel's inverse depth (the DiT's depth head), and a new view starts from those
points reprojected into it. What the points cover is shown as it was, pixel for pixel, so what the memory
keeps never blurs; the network paints only what was never seen (what comes into view, disocclusions).

    memory = WorldMemory(size=64, capacity=150_000)
    memory.insert(frame, inv_depth, pose, where)   # uint8 (H, W, 3), float (H, W) in 1/blocks, CameraPose, bool (H, W)
    view = memory.render(pose)                     # view.image, view.covered, view.inv_depth

A point is shown only while the eye is within half the point's distance of where it was seen: depth read from
one 64x64 picture is rough, and the error that makes on the screen grows with how far the eye has moved. So a
turn on the spot, or coming back to where something was seen, shows it exactly; walking far from it, the
network paints it afresh from its context (and that joins the memory as seen from there).

Rendering is z-buffered splatting: a point lands between four pixel centres and gives each its share of its
colour (bilinear), so a view seen before from the same place comes back exactly and a turn by a fraction of a
pixel resamples smoothly. A point remembers how big a pixel was where it was seen (its depth over the focal
length), so a point seen from afar and approached later covers a block of up to 4x4 pixels instead of leaving
cracks; the cracks left between resampled points are filled from their nearest neighbour. The sky (inverse depth ~0)
is kept as points far away, so turning needs no
depth at all: a full circle from one place returns exactly the pixels it started from.

Bounded: at most `capacity` points (19 bytes each), stored in chunks (a 16x16-pixel tile of one frame, sky
apart) that are culled against the view as a whole, so a frame projects only the points that may be in it.
When full, the chunks seen least recently are evicted until a tenth of the capacity is free, so a play of any
length has a flat cost per frame and flat memory; what goes first is what the player has not looked at longest.
Blocks broken or placed change what is under the crosshair: `forget` drops the points there (the Session calls
it on attack/use) and the network paints the new state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from data.render import look_direction

# Farther than this a pixel is sky, kept at SKY_DISTANCE: past the game's view distance (48 blocks) the fog has
# made everything the sky's colour, and a depth head's "very far" is not precise enough to tell sky from hills.
SKY_INVERSE_DEPTH = 1.0 / 64.0
SKY_DISTANCE = 1000.0
NEAR = 0.05  # blocks: points closer than this to the eye are not drawn
# Points within 50% of the nearest depth at a pixel count as the same surface, and the oldest of them wins: depth
# read from a picture is that rough, and a place painted later must not cover what was seen there before.
SAME_SURFACE = 0.5
# A point is shown only while the eye is within this fraction of the point's distance from where it was seen
# (see above). Measured on 1,000-frame plays: at 0.2 walking is painted almost all the time and blurs; with no
# limit the rough depths mix into a speckle of points from everywhere; 0.5 keeps the detail with little speckle.
RELIABLE = 0.5
MAX_SPLAT = 4  # a point covers at most 4x4 pixels; closer than that it leaves a hole for the network


@dataclass(frozen=True)
class CameraPose:
    """Where the camera is: eye (x, y, z) in blocks (world axes: x east, y up, z south), yaw and pitch in degrees
    (yaw 0 looks north, +pitch up) and the vertical field of view in degrees (frames are square)."""

    eye: tuple[float, float, float]
    yaw: float
    pitch: float
    fov: float

    def axes(self) -> torch.Tensor:
        """(3, 3) rows: forward, right, up (as data/render.py's camera)."""
        fwd = look_direction(self.yaw, self.pitch)
        cy, sy = math.cos(math.radians(self.yaw)), math.sin(math.radians(self.yaw))
        right = (cy, 0.0, sy)
        up = (
            right[1] * fwd[2] - right[2] * fwd[1],
            right[2] * fwd[0] - right[0] * fwd[2],
            right[0] * fwd[1] - right[1] * fwd[0],
        )
        return torch.tensor([fwd, right, up], dtype=torch.float64)

    def focal(self, size: int) -> float:
        """Pixels per unit of tan(angle) for a `size`-pixel frame."""
        return (size / 2) / math.tan(math.radians(self.fov) / 2)


@dataclass
class MemoryView:
    """What the memory shows from a pose: image uint8 (H, W, 3), covered bool (H, W), inv_depth float32 (H, W)
    (0 where not covered or sky)."""

    image: np.ndarray
    covered: np.ndarray
    inv_depth: np.ndarray


TILE = 16  # an insert is stored as chunks of at most TILE x TILE pixels (sky apart), each culled as a whole


@dataclass
class Chunk:
    """Points added together from one tile of one frame: positions, colours, and the world size of a pixel
    where each was seen (its depth there over the focal length). What the memory needs to know of a chunk as a
    whole (bounding sphere, eye, when it was added and last seen) lives in WorldMemory's per-chunk tensors."""

    xyz: torch.Tensor  # (n, 3) float32
    rgb: torch.Tensor  # (n, 3) uint8
    pitch: torch.Tensor  # (n,) float32


# One row per chunk, as tensors, so culling and bookkeeping are vector operations however many chunks there are.
CHUNK_FIELDS = ("center", "radius", "eye", "focal", "farthest", "born", "last_seen", "count")


class WorldMemory:
    def __init__(self, size: int, capacity: int = 150_000):
        if size < 8:
            raise ValueError(f"memory frame size must be at least 8 pixels, got {size}")
        if capacity < 4 * size * size:
            raise ValueError(f"memory capacity {capacity} is under four frames of {size}x{size} points")
        self.size = size
        self.capacity = capacity
        self.chunks: list[Chunk] = []
        self.table: dict[str, torch.Tensor] = {
            "center": torch.zeros(0, 3), "radius": torch.zeros(0), "eye": torch.zeros(0, 3), "focal": torch.zeros(0),
            "farthest": torch.zeros(0), "born": torch.zeros(0, dtype=torch.int64),
            "last_seen": torch.zeros(0, dtype=torch.int64), "count": torch.zeros(0, dtype=torch.int64),
        }  # fmt: skip
        self.points = 0
        self.clock = 0  # counts renders and inserts: the recency that eviction goes by
        # Pixel centres in [-1, 1] (x right, y up), as the renderer casts its rays, and each pixel's tile.
        c = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
        self._u = c[None, :].expand(size, size).reshape(-1)
        self._v = (-c)[:, None].expand(size, size).reshape(-1)
        rows = torch.arange(size)[:, None].expand(size, size) // TILE
        cols = torch.arange(size)[None, :].expand(size, size) // TILE
        self._tile = (rows * ((size + TILE - 1) // TILE) + cols).reshape(-1)

    def __len__(self) -> int:
        return self.points

    # ------------------------------------------------------------------ writing

    def insert(self, frame: np.ndarray, inv_depth: np.ndarray, pose: CameraPose, where: np.ndarray | None = None) -> int:
        """Add the pixels of `frame` selected by `where` (all when None) as points. Returns how many were added."""
        self._check_frame(frame, inv_depth)
        everywhere = torch.ones(self.size * self.size, dtype=torch.bool)
        pick = everywhere if where is None else torch.from_numpy(np.asarray(where, bool).reshape(-1))
        self.clock += 1
        n = int(pick.sum())
        if n == 0:
            return 0
        rho = torch.from_numpy(np.ascontiguousarray(inv_depth, np.float32).reshape(-1))[pick]
        rho = torch.nan_to_num(rho, nan=0.0, posinf=10.0).clamp(0.0, 10.0)  # at most 10 per block: a face 0.1 away
        sky = rho < SKY_INVERSE_DEPTH
        depth = torch.where(sky, torch.full_like(rho, SKY_DISTANCE), 1.0 / rho.clamp(min=SKY_INVERSE_DEPTH))
        tan_half = math.tan(math.radians(pose.fov) / 2)
        # Each ray as (1, u, v) in (forward, right, up): depth along the view axis scales it to the point.
        ray = torch.stack([torch.ones(n), self._u[pick] * tan_half, self._v[pick] * tan_half], dim=1)
        eye, focal = torch.tensor(pose.eye, dtype=torch.float32), pose.focal(self.size)
        xyz = eye + (depth[:, None] * ray) @ pose.axes().float()
        rgb = torch.from_numpy(np.ascontiguousarray(frame).reshape(-1, 3))[pick]
        # Chunks: the points of one tile, the sky apart (it is far, and would make a tile's sphere huge).
        _, chunk = torch.unique(self._tile[pick] * 2 + sky.long(), return_inverse=True)
        order = torch.argsort(chunk, stable=True)
        xyz, rgb, depth, chunk = xyz[order], rgb[order], depth[order], chunk[order]
        count = torch.bincount(chunk)
        center = torch.zeros(len(count), 3).index_add_(0, chunk, xyz) / count[:, None]
        radius = torch.zeros(len(count)).scatter_reduce_(0, chunk, (xyz - center[chunk]).norm(dim=1), "amax")
        farthest = torch.zeros(len(count)).scatter_reduce_(0, chunk, depth, "amax")
        sizes = count.tolist()
        for pts, colours, pitch in zip(xyz.split(sizes), rgb.split(sizes), (depth / focal).split(sizes)):
            self.chunks.append(Chunk(pts, colours, pitch))
        k = len(sizes)
        rows = {
            "center": center, "radius": radius, "eye": eye.expand(k, 3), "focal": torch.full((k,), focal),
            "farthest": farthest, "born": torch.full((k,), self.clock), "last_seen": torch.full((k,), self.clock),
            "count": count,
        }  # fmt: skip
        self.table = {name: torch.cat([self.table[name], rows[name].to(self.table[name].dtype)]) for name in CHUNK_FIELDS}
        self.points += n
        if self.points > self.capacity:
            self._evict()
        return n

    def forget(self, pose: CameraPose, half_width: int, max_distance: float) -> int:
        """Drop the points within `half_width` pixels of the view's centre and `max_distance` blocks of the eye
        (a block broken or placed under the crosshair). Returns how many were dropped."""
        dropped = 0
        for i in self._visible(pose).tolist():
            chunk = self.chunks[i]
            x, y, z = self._project(chunk.xyz, pose)
            c = self.size / 2
            hit = (z > NEAR) & (z <= max_distance) & (x - c).abs().le(half_width) & (y - c).abs().le(half_width)
            if bool(hit.any()):
                keep = ~hit
                self.chunks[i] = Chunk(chunk.xyz[keep], chunk.rgb[keep], chunk.pitch[keep])
                self.table["count"][i] = int(keep.sum())
                dropped += int(hit.sum())
        self.points -= dropped
        self._keep(self.table["count"] > 0)  # the spheres of the chunks left still bound them: no need to shrink
        return dropped

    def _evict(self) -> None:
        """Drop the chunks seen least recently until a tenth of the capacity is free, so this stays rare."""
        order = torch.argsort(self.table["last_seen"], stable=True)
        freed = torch.cumsum(self.table["count"][order], 0)
        drop = order[: int(torch.searchsorted(freed, self.points - int(self.capacity * 0.9))) + 1]
        keep = torch.ones(len(self.chunks), dtype=torch.bool)
        keep[drop] = False
        self._keep(keep)

    def _keep(self, keep: torch.Tensor) -> None:
        """Keep the chunks where `keep` (K,) is True, drop the rest."""
        self.chunks = [c for c, k in zip(self.chunks, keep.tolist()) if k]
        self.table = {name: values[keep] for name, values in self.table.items()}
        self.points = int(self.table["count"].sum())

    # ------------------------------------------------------------------ reading

    def _visible(self, pose: CameraPose) -> torch.Tensor:
        """Indices of the chunks whose bounding sphere reaches into the view (frustum culling) and that were seen
        from near enough here to be shown (see RELIABLE)."""
        t = self.table
        eye = torch.tensor(pose.eye, dtype=torch.float32)
        cam = (t["center"] - eye) @ pose.axes().float().T  # (K, 3): forward, right, up
        # A little wider than the view, so points splatted over several pixels at the border are kept.
        tan = math.tan(math.radians(pose.fov) / 2) * (1 + 2 * MAX_SPLAT / self.size)
        norm = math.sqrt(1 + tan * tan)
        z, x, y = cam[:, 0], cam[:, 1], cam[:, 2]
        inside = (z + t["radius"] > NEAR) & ((t["eye"] - eye).norm(dim=1) <= RELIABLE * t["farthest"])
        for side in (x, -x, y, -y):
            inside &= (side - tan * z) / norm <= t["radius"]
        return torch.nonzero(inside).flatten()

    def _project(self, xyz: torch.Tensor, pose: CameraPose) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Points' pixel positions x (right), y (down) and depth along the view axis (x, y valid where z > NEAR)."""
        cam = (xyz - torch.tensor(pose.eye, dtype=torch.float32)) @ pose.axes().float().T
        z = cam[:, 0]
        zs = z.clamp(min=NEAR)
        f = pose.focal(self.size)
        return self.size / 2 + f * cam[:, 1] / zs, self.size / 2 - f * cam[:, 2] / zs, z

    def render(self, pose: CameraPose, fill_cracks: bool = True) -> MemoryView:
        """The memory seen from `pose`: the nearest surface at each pixel, each point splatted over the pixels it
        spans."""
        S = self.size
        self.clock += 1
        image, inv_depth = np.zeros((S, S, 3), np.uint8), np.zeros((S, S), np.float32)
        visible = self._visible(pose)
        if len(visible) == 0:
            return MemoryView(image, np.zeros((S, S), bool), inv_depth)
        t = {name: values[visible] for name, values in self.table.items()}
        self.table["last_seen"][visible] = self.clock
        chunks = [self.chunks[i] for i in visible.tolist()]
        xyz = torch.cat([c.xyz for c in chunks])
        rgb_all = torch.cat([c.rgb for c in chunks])
        pitch_all = torch.cat([c.pitch for c in chunks])
        born = t["born"].repeat_interleave(t["count"])
        x, y, z_all = self._project(xyz, pose)
        # Only points seen from near here: a point's place is as good as the depth it was read at, and the error
        # that makes on the screen grows with how far the eye has moved since, over how far the point was.
        baseline = (t["eye"] - torch.tensor(pose.eye, dtype=torch.float32)).norm(dim=1).repeat_interleave(t["count"])
        reliable = baseline <= RELIABLE * pitch_all * t["focal"].repeat_interleave(t["count"])
        on_screen = (x > -MAX_SPLAT) & (x < S + MAX_SPLAT) & (y > -MAX_SPLAT) & (y < S + MAX_SPLAT)
        idx = torch.nonzero(reliable & (z_all > NEAR) & on_screen).flatten()
        x, y, z = x[idx], y[idx], z_all[idx]
        # How many pixels the point spans here: its size where it was seen over its size here.
        pitch = pitch_all[idx]
        # Bilinear splatting covers up to about 1.5 pixels between points; beyond that a block at least as wide as
        # the gap, so walking up to a remembered wall does not break it into cracks.
        span = torch.ceil(pitch * pose.focal(S) / z - 0.3).clamp(1, MAX_SPLAT).to(torch.int64)
        pix_x, pix_y, owner, weight = [], [], [], []
        # A point one pixel wide lands between four pixel centres: its colour goes to each in proportion to how
        # near it is (bilinear splatting), so a turn by a fraction of a pixel resamples smoothly, and a view seen
        # before, from the same place, gets back exactly its own pixels (all weight on one pixel).
        one = torch.nonzero(span == 1).flatten()
        fx, fy = x[one] - 0.5, y[one] - 0.5
        x0, y0 = torch.floor(fx), torch.floor(fy)
        ax, ay = fx - x0, fy - y0
        for dx, dy, w in ((0, 0, (1 - ax) * (1 - ay)), (1, 0, ax * (1 - ay)), (0, 1, (1 - ax) * ay), (1, 1, ax * ay)):
            pix_x.append(x0.to(torch.int64) + dx)
            pix_y.append(y0.to(torch.int64) + dy)
            owner.append(idx[one])
            weight.append(w)
        # A point seen from afar and now near spans a k x k block, with its first pixel at floor(x - k/2 + 1/2).
        spans = torch.bincount(span, minlength=MAX_SPLAT + 1).tolist()
        for k in range(2, MAX_SPLAT + 1):
            if spans[k] == 0:
                continue  # most views have no near point that needs a block
            sel = torch.nonzero(span == k).flatten()
            x0 = torch.floor(x[sel] - k / 2 + 0.5).to(torch.int64)
            y0 = torch.floor(y[sel] - k / 2 + 0.5).to(torch.int64)
            for dy in range(k):
                for dx in range(k):
                    pix_x.append(x0 + dx)
                    pix_y.append(y0 + dy)
                    owner.append(idx[sel])
                    weight.append(torch.ones(len(sel)))
        px, py, who, w = torch.cat(pix_x), torch.cat(pix_y), torch.cat(owner), torch.cat(weight)
        ok = (px >= 0) & (px < S) & (py >= 0) & (py < S) & (w > 1e-3)
        pixel, who, w = (py * S + px)[ok], who[ok], w[ok]
        zz = z_all[who]
        # The nearest surface at each pixel, from the points that land squarely on it (a point's small share of
        # its neighbour pixel must not claim that pixel for the foreground).
        inf = torch.full((S * S,), float("inf"))
        square = w >= 0.25
        zbuf = inf.clone().scatter_reduce_(0, pixel[square], zz[square], "amin")
        zbuf = torch.where(torch.isfinite(zbuf), zbuf, inf.clone().scatter_reduce_(0, pixel, zz, "amin"))
        # Of the points on the nearest surface, those remembered first win: what was seen before (a true start
        # picture, say) is not painted over by what was filled in later around it.
        near = zz <= zbuf[pixel] * (1 + SAME_SURFACE)
        pixel, who, zz, w = pixel[near], who[near], zz[near], w[near]
        first = torch.full((S * S,), torch.iinfo(torch.int64).max).scatter_reduce_(0, pixel, born[who], "amin")
        win = born[who] == first[pixel]
        pixel, who, zz, w = pixel[win], who[win], zz[win], w[win]
        total = torch.zeros(S * S).index_add_(0, pixel, w)
        colour = torch.zeros(S * S, 3).index_add_(0, pixel, w[:, None] * rgb_all[who].float())
        depth = torch.zeros(S * S).index_add_(0, pixel, w * zz)
        covered = total > 0.2  # less than that is a crack between points, filled below
        safe = total.clamp(min=1e-6)
        rgb = torch.where(covered[:, None], colour / safe[:, None], torch.zeros_like(colour))
        rgb = rgb.round().clamp(0, 255).to(torch.uint8)
        zbuf = torch.where(covered, depth / safe, torch.zeros_like(depth))
        rgb, zbuf, covered = rgb.view(S, S, 3), zbuf.view(S, S), covered.view(S, S)
        if fill_cracks:
            for _ in range(2):  # twice: where two cracks cross, the second pass closes the gap
                rgb, zbuf, covered = _fill_cracks(rgb, zbuf, covered)
        rho = torch.where(covered & (zbuf < SKY_DISTANCE * 0.5), 1.0 / zbuf.clamp(min=1e-6), torch.zeros_like(zbuf))
        return MemoryView(rgb.numpy(), covered.numpy(), rho.numpy().astype(np.float32))

    def _check_frame(self, frame: np.ndarray, inv_depth: np.ndarray) -> None:
        S = self.size
        if frame.shape != (S, S, 3) or frame.dtype != np.uint8:
            raise ValueError(f"memory frames are uint8 ({S}, {S}, 3), got {frame.dtype} {frame.shape}")
        if inv_depth.shape != (S, S):
            raise ValueError(f"inverse depth must be ({S}, {S}), got {inv_depth.shape}")


def _fill_cracks(
    rgb: torch.Tensor, depth: torch.Tensor, covered: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fill uncovered pixels that have at least 4 of their 8 neighbours covered (a crack between resampled
    points, not a region never seen: the straight edge of one has 3) from the nearest such neighbour."""
    S = rgb.shape[0]
    far = torch.where(covered, depth, torch.full_like(depth, float("inf")))
    padded = F.pad(far[None, None], (1, 1, 1, 1), value=float("inf"))[0, 0]  # (S + 2, S + 2)
    # The 3 x 3 neighbourhood's depths as 9 shifted views, row by row (dy, then dx).
    around = torch.stack([padded[dy : dy + S, dx : dx + S] for dy in range(3) for dx in range(3)])  # (9, S, S)
    neighbours = torch.isfinite(around).sum(0)  # the centre is uncovered where it matters, so 8 at most
    crack = ~covered & (neighbours >= 4)
    if not bool(crack.any()):
        return rgb, depth, covered
    # Only the crack pixels look up their nearest neighbour (the first least, as argmin), colour and depth.
    ys, xs = torch.nonzero(crack, as_tuple=True)
    nearest = around[:, ys, xs].min(0).indices
    src_y, src_x = ys + nearest // 3 - 1, xs + nearest % 3 - 1  # inside the frame: an inf neighbour never wins
    rgb, depth = rgb.clone(), depth.clone()
    rgb[ys, xs] = rgb[src_y, src_x]
    depth[ys, xs] = depth[src_y, src_x]
    return rgb, depth, covered | crack
