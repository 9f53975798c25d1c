"""Memory-made residual bases for training: what the world memory would have offered each training frame.

At play, a frame starts from the world memory rendered from the new pose (worldmodel/session.py). A network
trained only on bases moved from the previous frame never learns what such a base is: where it is a remembered
wall to keep, where the repeated edge that stands in for what comes into view, where the pose the keys give
has drifted from the game's. So we make those bases for the training clips, teacher-forced: a Session with the
memory walks each clip with its recorded actions and takes in the true frames (Session.observe), so every frame
gets the picture the memory would have shown from there (encoded) and the share of each latent cell it covered.
The memory restarts every `restart_every` frames, so training sees young memories (a play's first frames,
little covered) as well as old ones.

They are cached beside the latents (memory_bases.safetensors), row for row, with the fingerprints of what made
them (the latents, the autoencoder, the depth head and the settings): a cache made from anything else is made
again. Training then mixes them in (schedule.memory_residual_base).
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from data.actions import Action
from data.clips import ClipWindows
from worldmodel.autoencoder import FrameAutoencoder
from worldmodel.config import SamplingConfig
from worldmodel.dit import CausalDiT
from worldmodel.latents import LatentClips


@dataclass
class MemoryBases:
    """Row-aligned with a LatentClips: remembered (N, C, h, w) fp16, the memory's picture of frame i encoded;
    covered (N, h, w) fp16, the share of each latent cell it covered; made (N,) bool, rows that have them."""

    remembered: torch.Tensor
    covered: torch.Tensor
    made: torch.Tensor

    def sample(self, starts: torch.Tensor, seq_len: int) -> dict[str, torch.Tensor]:
        """For the frames LatentClips.batch(starts, seq_len) gives: remembered (B, seq_len, C, h, w), covered
        (B, seq_len, h, w) and use (B, seq_len) bool, which frames take the memory's base: every frame but the
        first that has one."""
        frames = starts[:, None] + 1 + torch.arange(seq_len)[None]
        use = self.made[frames].clone()
        use[:, 0] = False  # the first frame of a sample has no frame before it (its base is zero)
        return {"remembered": self.remembered[frames].float(), "covered": self.covered[frames].float(), "use": use}


def fingerprint(clips: LatentClips, dit: CausalDiT, autoencoder_fp: str, settings: dict) -> str:
    """What a cache of memory bases was made from: the latents (their size and a sample of them), the
    autoencoder, the depth head and the settings."""
    digest = hashlib.sha1(autoencoder_fp.encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(str(tuple(clips.latents.shape)).encode())
    digest.update(clips.latents[:: max(1, len(clips.latents) // 64)].float().numpy().tobytes())
    for name, tensor in sorted(dit.depth.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def load(path: Path, fp: str) -> MemoryBases | None:
    if not path.is_file():
        return None
    with safe_open(str(path), "pt") as f:
        if (f.metadata() or {}).get("made_from") != fp:
            return None
    t = load_file(str(path))
    return MemoryBases(t["remembered"], t["covered"], t["made"].bool())


def save(path: Path, bases: MemoryBases, fp: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tensors = {"remembered": bases.remembered, "covered": bases.covered, "made": bases.made.to(torch.uint8)}
    save_file(tensors, str(tmp), metadata={"made_from": fp})
    tmp.replace(path)


@torch.no_grad()
def make_memory_bases(
    clips: LatentClips,
    windows: ClipWindows,
    dit: CausalDiT,
    autoencoder: FrameAutoencoder,
    sampling: SamplingConfig,
    restart_every: int = 48,
    max_clips: int = 0,
    games: int = 16,
    show: bool = True,
) -> MemoryBases:
    """Walk the training clips (up to max_clips of them; 0: all) with a memory Session, `games` clips at once,
    and return the memory's bases for the latent cache's rows. Validation clips are left out (rows not made)."""
    from worldmodel.latents import is_validation_clip
    from worldmodel.session import Session

    length = windows.length
    if len(windows) * length != len(clips.latents):
        raise ValueError(f"the latent cache has {len(clips.latents)} frames, the clips give {len(windows) * length}")
    C, h, w = clips.latents.shape[1:]
    remembered = torch.zeros(len(clips.latents), C, h, w, dtype=torch.float16)
    covered = torch.zeros(len(clips.latents), h, w, dtype=torch.float16)
    made = torch.zeros(len(clips.latents), dtype=torch.bool)
    rows: dict[int, list[tuple[int, int]]] = {}
    for item, (clip, start) in enumerate(windows.index.tolist()):
        rows.setdefault(clip, []).append((item, start))
    chosen = [c for c in sorted(rows) if not is_validation_clip(windows.names[c])]
    chosen = chosen[:max_clips] if max_clips else chosen
    # Clips of one length walk together (one Session, a batch of games).
    by_length: dict[int, list[int]] = {}
    for c in chosen:
        by_length.setdefault(len(windows.keys[c]), []).append(c)  # one action per frame
    groups = [cs[i : i + games] for _, cs in sorted(by_length.items()) for i in range(0, len(cs), games)]
    session = Session(dit.eval(), autoencoder.eval(), sampling, seed=0)
    total = sum(len(windows.keys[g[0]]) * len(g) for g in groups)
    bar = tqdm(total=total, desc="memory bases", disable=not show, unit="frame", dynamic_ncols=True)
    for group in groups:
        frames = np.stack([np.asarray(windows.clip_frames(c)) for c in group])  # (G, T, H, W, 3)
        pictures = torch.zeros(len(group), frames.shape[1], C, h, w)
        shares = torch.zeros(len(group), frames.shape[1], h, w)
        for t in range(frames.shape[1]):
            if t % restart_every == 0:
                session.start(frames[:, t])  # a young memory: the frame itself is its base's whole source
                continue
            acts = [Action.from_vectors(windows.keys[c][t - 1], windows.camera[c][t - 1]) for c in group]
            picture, share = session.observe(acts, frames[:, t])
            pictures[:, t], shares[:, t] = picture.cpu(), share.cpu()
            bar.update(len(group))
        for g, c in enumerate(group):
            for item, start in rows[c]:
                for j in range(length):
                    if (start + j) % restart_every == 0:
                        continue  # a restart: no memory before it
                    row = item * length + j
                    remembered[row], covered[row], made[row] = pictures[g, start + j].half(), shares[g, start + j].half(), True
    bar.close()
    print(f"memory bases: {int(made.sum())} of {len(made)} latent frames, {len(chosen)} clips", file=sys.stderr)
    return MemoryBases(remembered, covered, made)
