"""Streaming play: start(image) once, then step(action) -> next frame, for as long as you like.
start(image, context=(frames, actions)) also takes the frames before the image as a motion context.

The session keeps a rolling context: the keys/values of the last `window - 1` frames in a KVCache, plus the
newest finished frame ("pending"), whose keys/values are computed in the same pass as the first denoising
step of the frame after it. So each frame costs `steps` passes over one frame's tokens (the first over two)
and one decode, whatever the length of the play.

Frames re-enter the context with a little fresh noise (sampling.context_sigma), as in training, against drift.
A session runs a batch of B games at once: give (B, H, W, 3) images and B actions per step.

With sampling.memory, each game also keeps a world memory (worldmodel/memory.py) of every pixel it has shown,
placed in the world by the camera's pose (worldmodel.egomotion) and the depth head's estimate. A frame is then:
  1. the memory rendered from the new pose, on pixels; what it does not cover is the last shown frame moved
     by the step (move_view on pixels: the edge repeated where new things come into view);
  2. that picture, encoded, is the residual base the network's change is added to (sampler.sample_frame);
  3. the frame shown is the memory's pixels where it covers the view and the network's where it does not
     (never-seen places, disocclusions) and under the arm and crosshair (drawn on the screen, not the world);
  4. the new pixels join the memory, and the shown frame, encoded, joins the network's context.
So a place seen once looks the same when the player comes back, and what the memory keeps is never resampled
from frame to frame (no blur builds up). It costs a render of the memory, two encodes and a depth-head pass
a frame, flat however long the play (the memory is bounded). Attack and use drop the memory under the crosshair (a block may
break or appear there), so the network paints the new state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from data.actions import KEY_INDEX, Action, stack
from data.physics import PITCH_LIMIT, REACH
from data.render import overlay_mask
from worldmodel.autoencoder import FrameAutoencoder, to_model_range, to_uint8
from worldmodel.config import SamplingConfig
from worldmodel.dit import CausalDiT, KVCache
from worldmodel.egomotion import EgoMotion
from worldmodel.finite import NonFiniteError
from worldmodel.memory import MemoryView, WorldMemory
from worldmodel.pitch import PitchEstimator
from worldmodel.sampler import FrameInputs, base_input, latent_base, sample_frame
from worldmodel.schedule import move_view


class Session:
    def __init__(
        self,
        dit: CausalDiT,
        autoencoder: FrameAutoencoder,
        sampling: SamplingConfig,
        seed: int = 0,
        use_cache: bool = True,
        pitch: PitchEstimator | None = None,
    ):
        """use_cache=False recomputes the whole history every frame (cost grows with the play; for tests).
        pitch: reads where a start picture looks up or down, so the walk starts at that pitch (else level)."""
        self.dit = dit
        self.pitch = pitch
        self.autoencoder = autoencoder
        self.sampling = sampling
        self.use_cache = use_cache
        self.device = next(dit.parameters()).device
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.batch: int | None = None
        self.single = True
        self.pos = -1  # index of the newest frame
        if sampling.memory and not dit.cfg.egomotion:
            raise ValueError("sampling.memory needs a DiT with egomotion (a depth head and the camera's steps)")
        self.memories: list[WorldMemory] = []
        if sampling.memory:
            # The arm and crosshair, one pixel wider: the network draws them a little blurred.
            mask = torch.from_numpy(np.array(overlay_mask(self.image_size)))[None, None].float()
            self.overlay = F.max_pool2d(mask, 3, stride=1, padding=1)[0, 0].bool().numpy()
            # The crosshair is thin: what is behind it is filled in from around it and remembered. The arm hides
            # too much to guess: the memory leaves it out, and the network paints what it hid when it comes to view.
            c, r = self.image_size // 2, max(3, self.image_size // 16)
            self.hand = self.overlay.copy()
            self.hand[c - r : c + r + 1, c - r : c + r + 1] = False

    @property
    def image_size(self) -> int:
        return self.autoencoder.cfg.image_size

    def _noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        # Drawn on the CPU from the session's generator so a seed gives the same play on any device.
        return torch.randn(shape, generator=self.generator).to(self.device)

    def _latent_shape(self) -> tuple[int, int, int, int]:
        cfg = self.dit.cfg
        return (self.batch, cfg.latent_channels, cfg.latent_size, cfg.latent_size)

    @torch.no_grad()
    def start(self, image: np.ndarray, context: tuple[np.ndarray, Sequence] | None = None) -> np.ndarray:
        """Begin a play from a uint8 image (H, W, 3), or a batch (B, H, W, 3). Returns the start frame(s) as the
        model sees them (through the autoencoder; with the memory, the image itself), same layout as the input.

        context=(frames, actions) is a motion context: the K frames just before the image, uint8 (K, H, W, 3), or
        (B, K, H, W, 3) for a batch, and the K actions that led on from each (actions[k] made frames[k + 1], the
        last made the image), each one Action or B of them. The play then starts as if it had shown them: they are
        in the network's context and the walk has their motion (a player who was running is still running, so the
        first steps land where the game's do); the memory starts from the image alone, as without a context.

        With a pitch estimator (worldmodel.pitch) the walk starts at the pitch it reads from the image, not level."""
        images = self._start_images(image)
        pitch = self._start_pitch(images)
        if context is None:
            return self._begin(images, pitch)
        frames, actions = context
        frames = np.asarray(frames)
        frames = frames[None] if self.single else frames
        if frames.dtype != np.uint8 or frames.ndim != 5 or frames.shape[0] != len(images) or frames.shape[2:] != images.shape[1:]:
            raise ValueError(f"context frames must be uint8 shaped like {'(K, ' if self.single else '(B, K, '}"
                             f"{', '.join(map(str, images.shape[1:]))}), got {frames.dtype} {np.asarray(context[0]).shape}")
        if len(actions) != frames.shape[1] or not len(actions):
            raise ValueError(f"a motion context needs one action after each of its frames: {frames.shape[1]} frames, "
                             f"{len(actions)} actions")
        # The walk starts at the first context frame, at the image's pitch less the context's mouse moves since.
        actions = [self._actions(a) for a in actions]
        self._begin(frames[:, 0], pitch - np.sum([[a.camera[0] for a in step] for step in actions], axis=0))
        for k in range(1, frames.shape[1]):
            self._take(actions[k - 1], frames[:, k])
        self._take(actions[-1], images)
        if not self.sampling.memory:  # the image as the autoencoder gives it back, as _begin shows a start image
            obs = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).to(self.device)
            return self._to_numpy(self.autoencoder.decode(self.autoencoder.encode(to_model_range(obs))))
        # The memory starts again from the image alone, as a start without context: it is the truest picture
        # of the place, and in the memory the points seen first win where both saw the same surface.
        self.screen = self.shown.copy()  # the arm and crosshair as the image draws them
        self.shown_depth = self._pixel_depth(self.pending)
        self._new_memories()
        return self.shown[0] if self.single else self.shown.copy()

    def _new_memories(self) -> None:
        """Each game's memory, fresh: the scenery shown now (the arm left out) at its depth, from the walk's pose."""
        self.memories = [WorldMemory(self.image_size, self.sampling.memory_points) for _ in range(self.batch)]
        for memory, walk, frame, depth in zip(self.memories, self.walks, self.scenery, self.shown_depth):
            memory.insert(frame, depth, walk.pose(), where=~self.hand)

    def _start_images(self, image: np.ndarray) -> np.ndarray:
        """The start image(s) checked, as (B, H, W, 3); sets whether this play is a single game."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim not in (3, 4) or image.shape[-1] != 3:
            raise ValueError(f"start image must be uint8 (H, W, 3) or (B, H, W, 3), got {image.dtype} {image.shape}")
        self.single = image.ndim == 3
        images = image[None] if self.single else image
        size = self.image_size
        if images.shape[1:3] != (size, size):
            raise ValueError(f"start image is {images.shape[2]}x{images.shape[1]}; this model works at {size}x{size}")
        self.batch = images.shape[0]
        return images

    def _start_pitch(self, images: np.ndarray) -> np.ndarray:
        """Where each start image (B, H, W, 3) looks, in degrees up (B,): the pitch estimator's reading, else level."""
        if self.pitch is None:
            return np.zeros(len(images), np.float32)
        return self.pitch.estimate(images)

    def _begin(self, images: np.ndarray, pitch: np.ndarray) -> np.ndarray:
        """A fresh play from images (B, H, W, 3) that look `pitch` degrees up (B,): an empty context, the walk at
        rest at that pitch, a memory of the images (self.batch is theirs: _start_images set it)."""
        obs = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).to(self.device)  # a copy: images may be read-only
        z = self.autoencoder.encode(to_model_range(obs))  # (B, C, h, w)
        B = self.batch
        start = FrameInputs(
            x=z,
            sigma=torch.zeros(B, device=self.device),  # the start image is real: no noise
            keys=torch.zeros(B, self.dit.cfg.num_keys, device=self.device),
            camera=torch.zeros(B, 2, device=self.device),
            act_mask=torch.zeros(B, dtype=torch.bool, device=self.device),  # no action produced it
        )
        self.cache = KVCache(self.dit.cfg.window) if self.use_cache else None
        # Each game's walking state (egomotion models), at the pitch its picture looks.
        self.walks = [EgoMotion(pitch=float(np.clip(p, -PITCH_LIMIT, PITCH_LIMIT))) for p in pitch]
        self.pending = start
        self.history = [start]
        self.pos = 0
        if not self.sampling.memory:
            return self._to_numpy(self.autoencoder.decode(z))
        # The memory starts from the picture itself, at the depth the network reads from it.
        self.shown = np.array(images)
        self.screen = self.shown.copy()
        self.scenery = self._without_overlay(self.shown)
        self.context_noise = torch.zeros_like(z)  # the start frame is clean
        self.shown_depth = self._pixel_depth(start)
        self._new_memories()
        return self.shown[0] if self.single else self.shown.copy()

    @torch.no_grad()
    def step(self, act: Action | Sequence[Action]) -> np.ndarray:
        """Advance one frame: `act` (one Action, or B of them) produces the next frame. Returns uint8 frame(s)."""
        return step_together([self], [act])[0]

    def stepping_key(self) -> tuple:
        """Sessions with equal keys can be stepped together (step_together): one model, one way of sampling, and
        contexts filled alike (a cache holds at most window - 1 frames, so every play past its first frames)."""
        if self.batch is None:
            raise RuntimeError("call start(image) before step(action)")
        filled = len(self.cache) if self.cache is not None else ("alone", id(self))  # uncached: the test reference
        return (id(self.dit), id(self.autoencoder), self.sampling, str(self.device), filled)

    def _begin_step(self, act: Action | Sequence[Action]) -> _StepInputs:
        """What this session brings to a step, before the network runs: its actions, the camera's step and, with
        the memory, the base the network paints on."""
        keys_np, camera_np = stack(self._actions(act))
        keys = torch.from_numpy(keys_np).to(self.device)
        camera = torch.from_numpy(camera_np).to(self.device)
        motion = torch.from_numpy(np.stack([w.step(k, c) for w, k, c in zip(self.walks, keys_np, camera_np)]))
        views, base, covered = None, None, None
        if self.memories:
            views, remembered, covered = self._memory_picture(keys_np, camera, motion)
            base = self._memory_base(remembered, camera, motion)
        noise = self._noise(self._latent_shape())
        return _StepInputs(keys, camera, motion.to(self.device), noise, views, base, covered)

    def _end_step(self, inputs: _StepInputs, z_hat: torch.Tensor, base_in: torch.Tensor | None,
                  shown: np.ndarray) -> np.ndarray:
        """Take in the frame shown (B, H, W, 3) and its latent z_hat: the context, and with it the memory."""
        # The finished frame joins the context with a little fresh noise, the level it was trained to expect.
        s_c = self.sampling.context_sigma
        self.context_noise = self._noise(self._latent_shape())
        x_ctx = (1 - s_c) * z_hat + s_c * self.context_noise
        on = torch.ones(self.batch, dtype=torch.bool, device=self.device)
        sigma = torch.full((self.batch,), s_c, device=self.device)
        self.pending = FrameInputs(x_ctx, sigma, inputs.keys, inputs.camera, on, base_in)
        if not self.use_cache:
            self.history.append(self.pending)
        self.pos += 1
        if inputs.views is not None:
            self._remember(shown, inputs.views)
        return shown[0] if self.single else shown

    # ------------------------------------------------------------------ the world memory

    def _pixel_depth(self, frame: FrameInputs) -> np.ndarray:
        """The depth head's inverse depth of a context frame, at pixel resolution: float32 (B, H, W). Keeps the
        latent-resolution one (context_depth) for moving the context's noise."""
        self.context_depth = self.dit.depth(frame.x, frame.sigma)  # (B, h, w)
        size = self.image_size
        rho = F.interpolate(self.context_depth[:, None], size=(size, size), mode="bilinear", align_corners=False)
        return rho[:, 0].cpu().numpy()

    @torch.no_grad()
    def observe(self, act: Action | Sequence[Action], frame: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance one frame that is already known (teacher forcing): `frame` uint8 (H, W, 3), or (B, H, W, 3),
        is what `act` made. The memory and the context take it in as if the model had shown it. Returns what the
        model would have started that frame from: the memory's picture encoded (B, C, h, w) and the share of
        each latent cell the memory covered (B, h, w). This is how training sees memory-made bases
        (worldmodel.memory_bases)."""
        if not self.memories:
            raise RuntimeError("observe needs a session with the world memory (sampling.memory) started")
        frames = np.asarray(frame)
        return self._take(act, frames[None] if self.single else frames)

    def _take(self, act: Action | Sequence[Action], frames: np.ndarray) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Take in known frames (B, H, W, 3) that `act` made, as step would have shown them: the walk steps, the
        pending frame's keys and values go into the cache (the sampler's first step would have put them there),
        the frames become the pending context frame, and with the memory, they join it. Returns the memory's
        picture of them encoded and its coverage (observe), or (None, None) without the memory."""
        keys_np, camera_np = stack(self._actions(act))
        keys = torch.from_numpy(keys_np).to(self.device)
        camera = torch.from_numpy(camera_np).to(self.device)
        motion = torch.from_numpy(np.stack([w.step(k, c) for w, k, c in zip(self.walks, keys_np, camera_np)]))
        views, remembered, covered = (self._memory_picture(keys_np, camera, motion) if self.memories
                                      else (None, None, None))  # fmt: skip
        base_in = None
        if self.dit.cfg.base_input:  # what the network would have read beside this frame, made from the old context
            base = (self._memory_base(remembered, camera, motion) if remembered is not None
                    else latent_base(self.dit, self.pending, camera, motion.to(self.device)))  # fmt: skip
            base_in = base_input(base, covered)
        if self.cache is not None:
            pending = self.pending
            self.dit(*pending.stacked([]), pos0=self.pos, cache=self.cache, commit=1,
                     base_in=pending.stacked_base_in([]))  # fmt: skip
        z = self.autoencoder.encode(to_model_range(torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).to(self.device)))
        s_c = self.sampling.context_sigma
        self.context_noise = self._noise(self._latent_shape())
        x_ctx = (1 - s_c) * z + s_c * self.context_noise
        on = torch.ones(self.batch, dtype=torch.bool, device=self.device)
        self.pending = FrameInputs(x_ctx, torch.full((self.batch,), s_c, device=self.device), keys, camera, on, base_in)
        if not self.use_cache:
            self.history.append(self.pending)
        self.pos += 1
        if views is not None:
            self._remember(np.array(frames), views)
        return remembered, covered

    def _actions(self, act: Action | Sequence[Action]) -> list[Action]:
        """One action for every game of the batch: one Action for all of them, or B of them."""
        acts = [act] if isinstance(act, Action) else list(act)
        if len(acts) == 1 and self.batch > 1:
            acts = acts * self.batch
        if len(acts) != self.batch:
            raise ValueError(f"got {len(acts)} actions for a batch of {self.batch} sessions")
        return acts

    def _memory_base(self, remembered: torch.Tensor, camera: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """The residual base (B, C, h, w) from the memory's picture encoded, as the network was trained to see one:
        (1 - s) times the previous context frame moved, a context frame being (1 - s) z + s eps. The network sees
        that noise eps in its context and cancels it, so the base must carry the same noise, moved as the latent
        base would move it; only z is the memory's."""
        s = self.pending.sigma[:, None, None, None]
        noise = move_view(self.context_noise, camera, self.dit.cfg.view_fov, self.context_depth, motion.to(self.device))
        return (1 - s) * ((1 - s) * remembered + s * noise)

    def _memory_picture(
        self, keys: np.ndarray, camera: torch.Tensor, motion: torch.Tensor
    ) -> tuple[list[MemoryView], torch.Tensor, torch.Tensor]:
        """Each game's memory seen from its new pose, that picture encoded (B, C, h, w), and the share of each
        latent cell the memory covered (B, h, w)."""
        # Where the memory has nothing: the last shown frame moved by the step on pixels (the edge repeated
        # where new things come into view), as the network's base was made in training.
        scenery = to_model_range(torch.from_numpy(self.scenery).permute(0, 3, 1, 2)).to(self.device)
        depth = torch.from_numpy(self.shown_depth).to(self.device)
        moved = move_view(scenery, camera, self.dit.cfg.view_fov, depth, motion.to(self.device))
        moved = to_uint8(moved).permute(0, 2, 3, 1).cpu().numpy()
        views, pictures = [], []
        for b, (memory, walk) in enumerate(zip(self.memories, self.walks)):
            pose = walk.pose()
            if keys[b, KEY_INDEX["attack"]] > 0.5 or keys[b, KEY_INDEX["use"]] > 0.5:
                self._forget_target(memory, pose)
            view = memory.render(pose)
            picture = np.where(view.covered[..., None], view.image, moved[b])
            # The arm and crosshair stay where they are on the screen: as in the start picture (the previous frame's
            # would be the network's own drawing of them, redrawn from itself every frame, which drifts).
            picture[self.overlay] = self.screen[b][self.overlay]
            views.append(view)
            pictures.append(picture)
        z = self.autoencoder.encode(to_model_range(torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).to(self.device)))
        covered = torch.from_numpy(np.stack([v.covered & ~self.overlay for v in views])).float()[:, None]
        covered = F.avg_pool2d(covered, self.image_size // z.shape[-1])[:, 0].to(self.device)
        return views, z, covered

    def _forget_target(self, memory: WorldMemory, pose) -> None:  # a CameraPose
        """Attack or use may break or place the block under the crosshair: drop what the memory holds there, as
        wide as a block looks at that distance, so the network paints whatever is there now."""
        view = memory.render(pose, fill_cracks=False)
        c = self.image_size // 2
        rho = float(view.inv_depth[c - 1 : c + 1, c - 1 : c + 1].max())
        if rho * REACH < 1.0:
            return  # nothing within reach under the crosshair
        half = int(min(self.image_size // 4, np.ceil(0.75 * pose.focal(self.image_size) * rho) + 1))
        memory.forget(pose, half, REACH + 1.0)

    def _without_overlay(self, frames: np.ndarray) -> np.ndarray:
        """Frames (B, H, W, 3) with the arm and crosshair filled in from around them: the world behind them."""
        mask = self.overlay.astype(np.uint8)
        return np.stack([cv2.inpaint(np.ascontiguousarray(f), mask, 3, cv2.INPAINT_TELEA) for f in frames])

    def _compose(self, painted: np.ndarray, views: list[MemoryView]) -> np.ndarray:
        """The frames shown: the memory's pixels where it covers the view, the network's elsewhere and under the
        arm and crosshair."""
        if not self.sampling.memory_pixels:
            return painted
        use_memory = np.stack([v.covered & ~self.overlay for v in views])[..., None]
        return np.where(use_memory, np.stack([v.image for v in views]), painted)

    def _remember(self, shown: np.ndarray, views: list[MemoryView]) -> None:
        """Add the newly shown pixels to each memory, at the memory's own depth where it covered the view and the
        depth head's estimate elsewhere."""
        head = self._pixel_depth(self.pending)
        for b, view in enumerate(views):
            head[b] = np.where(view.covered, view.inv_depth, _aligned(head[b], view) * head[b])
        self.shown, self.scenery, self.shown_depth = shown, self._without_overlay(shown), head
        for b, (memory, walk, view) in enumerate(zip(self.memories, self.walks, views)):
            memory.insert(self.scenery[b], head[b], walk.pose(), where=~view.covered & ~self.hand)

    def _to_numpy(self, frames: torch.Tensor) -> np.ndarray:
        out = to_uint8(frames).permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 3)
        return out[0] if self.single else out


@dataclass
class _StepInputs:
    """One session's part of a step, made before the network runs (Session._begin_step)."""

    keys: torch.Tensor  # (B, num_keys)
    camera: torch.Tensor  # (B, 2)
    motion: torch.Tensor  # (B, 4)
    noise: torch.Tensor  # (B, C, h, w): where sampling starts
    views: list[MemoryView] | None  # with the memory: what it showed from the new poses
    base: torch.Tensor | None  # (B, C, h, w): the memory-made residual base
    covered: torch.Tensor | None  # (B, h, w): the share of each latent cell the memory covered


@torch.no_grad()
def step_together(sessions: list[Session], acts: list[Action | Sequence[Action]]) -> list[np.ndarray]:
    """Advance several sessions a frame each (acts[i] is what Session.step takes for sessions[i]) in one batched
    pass of the network: a server's players, stepped at the cost of little more than one. Each keeps its own
    noise, memory and context, and makes the frames it would make alone, up to float rounding (a batch's matrix
    products round differently). They must share a stepping_key; Session.step is this with one session."""
    if len(sessions) != len(acts) or not sessions:
        raise ValueError(f"got {len(acts)} actions for {len(sessions)} sessions")
    if len({s.stepping_key() for s in sessions}) != 1:
        raise ValueError("these sessions cannot be stepped together (group them by Session.stepping_key)")
    first = sessions[0]
    inputs = [s._begin_step(a) for s, a in zip(sessions, acts)]
    sizes = [s.batch for s in sessions]
    shifts = [s.pos - first.pos for s in sessions]  # each play's own frame index, relative to the first's

    def joined(name: str) -> torch.Tensor | None:
        parts = [getattr(i, name) for i in inputs]
        return None if parts[0] is None else torch.cat(parts)

    cache, pending, rope_shift = first.cache, first.pending, None
    if len(sessions) > 1:
        cache = KVCache.joined([s.cache for s in sessions])
        pending = FrameInputs.joined([s.pending for s in sessions])
        rope_shift = torch.tensor(shifts).repeat_interleave(torch.tensor(sizes))
    pos = first.pos + 1
    z_hat, base_in = sample_frame(
        first.dit,
        joined("noise"),
        joined("keys"),
        joined("camera"),
        history=first.history,
        pos=pos,
        sampling=first.sampling,
        cache=cache,
        pending=pending,
        motion=joined("motion"),
        base=joined("base"),
        covered=joined("covered"),
        rope_shift=rope_shift,
    )
    if len(sessions) > 1:
        for session, part in zip(sessions, cache.parted(sizes, shifts)):
            session.cache = part
    if not bool(torch.isfinite(z_hat).all()):  # the loaders refuse NaN settings and weights; this is the last net
        raise NonFiniteError(f"frame {pos}: the model produced NaN or infinite values; the checkpoint or its "
                             "sampling settings are broken (the frames would be black)")
    painted = to_uint8(first.autoencoder.decode(z_hat)).permute(0, 2, 3, 1).cpu().numpy()  # (sum B, H, W, 3)
    shown = np.split(painted, np.cumsum(sizes)[:-1])
    if first.memories:
        # What the player sees (the memory's pixels and the network's) is what the network remembers next.
        shown = [s._compose(frames, i.views) for s, frames, i in zip(sessions, shown, inputs)]
        z_hat = first.autoencoder.encode(
            to_model_range(torch.from_numpy(np.concatenate(shown)).permute(0, 3, 1, 2).to(first.device)))
    z_parts = z_hat.split(sizes)
    base_parts = base_in.split(sizes) if base_in is not None else [None] * len(sessions)
    return [s._end_step(i, z, b, f) for s, i, z, b, f in zip(sessions, inputs, z_parts, base_parts, shown)]


def _aligned(head: np.ndarray, view: MemoryView) -> float:
    """The scale that brings the depth head's inverse depth (H, W) in line with the memory's where both see
    the world: new points then join the remembered ones at a consistent distance, instead of floating in front
    of or behind them (the head reads each frame afresh, and its scale wanders from frame to frame)."""
    both = view.covered & (view.inv_depth > 0.02) & (head > 0.02)
    if both.sum() < 32:
        return 1.0
    return float(np.clip(np.median(view.inv_depth[both] / head[both]), 0.5, 2.0))
