"""The dataset's frames encoded once by the autoencoder, held in memory for the world-model stage.

Every clip becomes a run of latents (fp16) with the actions beside them. A training sample is a run of
`seq_len` frames z[i+1 .. i+seq_len] with the actions that produced them, keys[i .. i+seq_len-1] (actions[t]
makes frame t+1). Whole clips are held out for validation (chosen by a hash of the name, so stable).

Saved as one safetensors file whose metadata is its key: the autoencoder's fingerprint, the clip folder's
(every clip file's name, size and modification time) and the window length. A cache is reused only when all
three match, so pointing --data elsewhere or recording more clips encodes again.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from worldmodel.autoencoder import FrameAutoencoder, to_model_range


def fingerprint(autoencoder: FrameAutoencoder) -> str:
    digest = hashlib.sha1()
    for name, tensor in sorted(autoencoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def data_fingerprint(root: str | Path) -> str:
    """The clip folder as it is now: its path and every clip file's name, size and modification time (no reads)."""
    from data.clip_files import CLIP_SUFFIXES

    root = Path(root)
    digest = hashlib.sha1(str(root.resolve()).encode())
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.name.endswith(CLIP_SUFFIXES) and not path.name.startswith(".") and path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def cache_key(autoencoder: FrameAutoencoder, data: str | Path, window: int) -> dict[str, str]:
    """Everything a latent cache is made from (see the module docstring)."""
    return {"autoencoder": fingerprint(autoencoder), "data": data_fingerprint(data), "window": str(window)}


def is_validation_clip(name: str, fraction: float = 0.05) -> bool:
    return (zlib.crc32(name.encode()) % 1000) < fraction * 1000


class LatentClips:
    """latents (N, C, h, w) fp16, keys (N, 9), camera (N, 2), segment (N,) int: frames of one contiguous run.

    For a model that walks its camera (dit.egomotion) also motion (N, 4), the camera's step into each frame
    (worldmodel.egomotion, integrated over the whole clip), and inv_depth (N, h, w) fp16, each frame's true
    inverse depth pooled to the latent grid (data.replay); both None until added (add_ground_truth)."""

    def __init__(
        self,
        latents: torch.Tensor,
        keys: torch.Tensor,
        camera: torch.Tensor,
        segment: torch.Tensor,
        val: torch.Tensor,
        motion: torch.Tensor | None = None,
        inv_depth: torch.Tensor | None = None,
    ):
        self.latents, self.keys, self.camera, self.segment, self.val = latents, keys, camera, segment, val
        self.motion, self.inv_depth = motion, inv_depth

    def starts(self, seq_len: int, validation: bool) -> torch.Tensor:
        """Indices i such that frames i .. i + seq_len lie in one segment of the wanted split."""
        n = len(self.segment) - seq_len
        if n <= 0:
            return torch.zeros(0, dtype=torch.long)
        same = self.segment[:n] == self.segment[seq_len:]
        split = self.val[:n] if validation else ~self.val[:n]
        return torch.nonzero(same & split).flatten()

    def batch(self, starts: torch.Tensor, seq_len: int) -> dict[str, torch.Tensor]:
        """z (B, seq_len, C, h, w) float32, keys (B, seq_len, 9), camera (B, seq_len, 2): frame j made by action j."""
        frames = starts[:, None] + 1 + torch.arange(seq_len)[None]  # (B, L)
        z = self.latents[frames]
        # uint8 "latents" are the frames themselves (the pixel-space model): to [-1, 1]
        z = z.float() / 127.5 - 1.0 if z.dtype == torch.uint8 else z.float()
        batch = {"z": z, "keys": self.keys[frames - 1], "camera": self.camera[frames - 1]}
        if self.motion is not None and self.inv_depth is not None:
            batch["motion"] = self.motion[frames - 1]
            batch["inv_depth"] = self.inv_depth[frames].float()
        return batch

    def save(self, path: Path, key: dict[str, str]) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tensors = {
            "latents": self.latents, "keys": self.keys, "camera": self.camera, "segment": self.segment,
            "val": self.val.to(torch.uint8),
        }
        if self.motion is not None and self.inv_depth is not None:
            tensors.update(motion=self.motion, inv_depth=self.inv_depth)
        save_file(tensors, str(tmp), metadata=dict(key))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, key: dict[str, str]) -> LatentClips | None:
        """The cache at `path` when it was made from `key` (cache_key), else None."""
        if not path.is_file():
            return None
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            saved = f.metadata() or {}
            if any(saved.get(name) != value for name, value in key.items()):
                return None  # made from another autoencoder, other clips or another window length
        t = load_file(str(path))
        return cls(t["latents"], t["keys"], t["camera"], t["segment"], t["val"].bool(), t.get("motion"), t.get("inv_depth"))


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc only): the encoder's big temporaries leave holes otherwise."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@torch.no_grad()
def encode_windows(
    autoencoder: FrameAutoencoder, windows: Iterable[dict], total: int | None = None, batch_frames: int = 64, show: bool = True
) -> LatentClips:
    """Encode items of a ClipWindows(root, length, stride=length) in order; consecutive windows of one clip join up.

    Everything kept across items is copied into numpy arrays: thousands of small long-lived torch tensors
    interleaved with the encoder's large temporary buffers fragmented the heap (23 GB resident on 150k frames).
    """
    keys, camera, segment, val, pending, latents = [], [], [], [], [], []
    seg, last = -1, None

    def flush() -> None:
        if pending:
            obs = torch.cat(pending)
            if autoencoder.trainable:  # on the autoencoder's device (a GPU when training there), kept on the CPU
                z = autoencoder.encode(to_model_range(obs.to(autoencoder.latent_mean.device)))
                latents.append(z.half().cpu().numpy().copy())
            else:  # pixel space: keep the frames as uint8 (a quarter of fp16's memory)
                latents.append(obs.numpy().copy())
            pending.clear()
            if len(latents) % 50 == 0:
                release_freed_memory()

    for item in tqdm(windows, total=total, desc="encoding latents", disable=not show, dynamic_ncols=True):
        T = item["obs"].shape[0]
        if last is None or last != (item["clip"], item["start"]):
            seg += 1
        last = (item["clip"], item["start"] + T)
        pending.append(item["obs"])
        keys.append(np.array(item["keys"], dtype=np.float32))
        camera.append(np.array(item["camera"], dtype=np.float32))
        segment.append(np.full(T, seg, dtype=np.int64))
        val.append(np.full(T, is_validation_clip(item["clip"]), dtype=bool))
        if sum(len(p) for p in pending) >= batch_frames:
            flush()
    flush()
    if not latents:
        raise ValueError("no frames to encode: the dataset has no windows")
    cat = lambda parts: torch.from_numpy(np.concatenate(parts))
    return LatentClips(cat(latents), cat(keys), cat(camera), cat(segment), cat(val))


def _pooled_inverse_depth(job: tuple[str, int, int]) -> np.ndarray:
    """In a worker: one clip replayed for its inverse depth, pooled to the latent grid (T, h, w) fp16 (a
    sixteenth of the pixels crosses back to the parent)."""
    from data.replay import replay_inverse_depth

    path, h, w = job
    torch.set_num_threads(1)
    depth = torch.from_numpy(replay_inverse_depth(path))
    return F.adaptive_avg_pool2d(depth[:, None], (h, w))[:, 0].half().numpy()


def add_ground_truth(clips: LatentClips, windows: Any, show: bool = True, workers: int | None = None) -> None:
    """Fill clips.motion and clips.inv_depth for latents encoded from `windows` (the ClipWindows whose items,
    in order, made the cache: item i's frames are rows i * length ...). Each clip is replayed in the game once
    (data.replay) for its depth, `workers` clips at a time (default: one per core; the replay is the game's
    renderer, a few minutes of one core for 150,000 frames), and its motion integrated from its first frame."""
    from concurrent.futures import ProcessPoolExecutor

    from worldmodel.egomotion import clip_motion

    length = windows.length
    if len(windows) * length != len(clips.latents):
        raise ValueError(f"the latent cache has {len(clips.latents)} frames, the clips give {len(windows) * length}: "
                         "delete latents.safetensors to encode again")  # fmt: skip
    h, w = clips.latents.shape[-2:]
    motion = torch.zeros(len(clips.latents), 4)
    inv_depth = torch.zeros(len(clips.latents), h, w, dtype=torch.float16)
    by_clip: dict[int, list[tuple[int, int]]] = {}
    for item, (clip, start) in enumerate(windows.index.tolist()):
        by_clip.setdefault(clip, []).append((item, start))
    jobs = [(str(windows.root / windows.names[clip]), h, w) for clip in by_clip]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    # spawn, not fork: the parent may hold a GPU context or torch's thread pool, which a fork does not survive.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 1 else None
    try:
        pooled_depths = pool.map(_pooled_inverse_depth, jobs) if pool else map(_pooled_inverse_depth, jobs)
        bar = tqdm(zip(by_clip.items(), pooled_depths), total=len(jobs), desc="replaying clips for depth",
                   disable=not show, dynamic_ncols=True)  # fmt: skip
        for (clip, items), pooled in bar:
            steps = torch.from_numpy(clip_motion(windows.keys[clip], windows.camera[clip]))
            for item, start in items:
                rows = slice(item * length, (item + 1) * length)
                motion[rows] = steps[start : start + length]
                inv_depth[rows] = torch.from_numpy(pooled[start : start + length])
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    clips.motion, clips.inv_depth = motion, inv_depth
