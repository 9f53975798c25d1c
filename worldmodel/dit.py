"""The causal video DiT: latent frames in, per-frame predictions out.

Tokens are patches of latent frames. Attention is full within a frame and causal across frames, limited to the
last `window` frames (a band), so that a key/value cache of the last `window - 1` frames gives exactly the same
outputs as recomputing the whole history, and the cost per frame stays flat however long the play.

Time enters attention only through RoPE on the frame index (relative, so cached keys stay valid as the window
slides); space through a fixed 2-D sin-cos embedding added to the tokens. Each frame carries its own
conditioning vector: its noise level plus the action that produced it (or a learned null action, used for the
first frame and for classifier-free guidance). adaLN-Zero injects it into every block.

The network knows nothing of noise schedules: worldmodel/schedule.py turns its output into a denoised frame.
Every weight matrix is a plain nn.Linear, which quant/ swaps for quantized layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from worldmodel.config import DiTConfig
from worldmodel.weights import load_weights, read_config, save_model_folder

# ---------------------------------------------------------------- helpers


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (B, T, N, D); shift/scale (B, T, D), one per frame: x (1 + scale) + shift, in one fused op."""
    return torch.addcmul(shift.unsqueeze(2), x, 1 + scale.unsqueeze(2))


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (as in DiT/MAE): (grid*grid, dim)."""
    half = dim // 2
    omega = 1.0 / 10000 ** (np.arange(half // 2, dtype=np.float64) / (half / 2.0))
    ys, xs = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")
    parts = []
    for coord in (ys.reshape(-1), xs.reshape(-1)):
        angles = np.outer(coord, omega)
        parts += [np.sin(angles), np.cos(angles)]
    return torch.from_numpy(np.concatenate(parts, axis=1)).float()


def rope_tables(positions: torch.Tensor, head_dim: int) -> torch.Tensor:
    """RoPE's rotations for integer frame positions (..., L): complex (..., L, head_dim / 2), one unit number per
    channel pair. Angles in float64: positions grow without end."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = positions.to(torch.float64)[..., None] * inv_freq
    return torch.polar(torch.ones_like(angles), angles).to(torch.complex64)


def apply_rope(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """x (..., L, hd) rotated pairwise, (x1, x2) -> (x1 cos - x2 sin, x1 sin + x2 cos), by rope_tables' (L, hd / 2)
    rotations (or (B, 1, L, hd / 2) ones when each game has its own positions): each pair read as one complex
    number and multiplied, one op over views (on a CPU 4x faster than two products, a sum and a flip of the
    pairs). Other dtypes than float32 take the same products written out."""
    pairs = x.unflatten(-1, (-1, 2))
    if x.dtype == torch.float32 and pairs.is_contiguous():
        return torch.view_as_real(torch.view_as_complex(pairs) * rotation).flatten(-2)
    x1, x2 = pairs.unbind(-1)
    cos, sin = rotation.real.to(x.dtype), rotation.imag.to(x.dtype)
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def frame_bands(q_pos: torch.Tensor, k_pos: torch.Tensor, window: int, tokens: int) -> list[tuple[slice, slice]]:
    """Who sees whom: a token sees the frames at most `window - 1` frames before its own, and its own. As the keys
    are in frame order, that is for each query frame a contiguous run of key tokens: its band, (query tokens, key
    tokens). One unmasked attention call per band is the causal window exactly, and on a CPU it beats one masked
    call over all frames (streaming's two-frame step by a third; training's clips break even)."""
    keys = k_pos.tolist()
    bands = []
    for i, p in enumerate(q_pos.tolist()):
        seen = [j for j, kp in enumerate(keys) if 0 <= p - kp < window]
        bands.append((slice(i * tokens, (i + 1) * tokens), slice(seen[0] * tokens, (seen[-1] + 1) * tokens)))
    return bands


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bands: list[tuple[slice, slice]]) -> torch.Tensor:
    """Scaled dot-product attention (B, H, Lq, hd), each query frame over its band of keys (frame_bands)."""
    outs = [F.scaled_dot_product_attention(q[:, :, qs], k[:, :, ks], v[:, :, ks]) for qs, ks in bands]
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


class TanhGELU(nn.Module):
    """GELU in its tanh form, as the model was trained. Without autograd it runs as x * sigmoid(2u),
    u = sqrt(2/pi) (x + 0.044715 x^3): the same function (1 + tanh u = 2 sigmoid(2u)), in place, which on our CPUs
    measured 3x faster than F.gelu's tanh form. Training keeps F.gelu and its fused backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return F.gelu(x, approximate="tanh")
        u = x * x
        u.mul_(2 * 0.044715 * _SQRT_2_OVER_PI).add_(2 * _SQRT_2_OVER_PI).mul_(x)
        return u.sigmoid_().mul_(x)


# ---------------------------------------------------------------- key/value cache


@dataclass
class KVCache:
    """Keys and values (after RoPE) of the last frames of the context, per block: (B, H, frames * N, hd)."""

    window: int
    keys: list[torch.Tensor | None] = field(default_factory=list)
    values: list[torch.Tensor | None] = field(default_factory=list)
    positions: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor, tokens: int) -> None:
        while len(self.keys) <= layer:
            self.keys.append(None)
            self.values.append(None)
        old_k, old_v = self.keys[layer], self.values[layer]
        k = k if old_k is None else torch.cat([old_k, k], dim=2)
        v = v if old_v is None else torch.cat([old_v, v], dim=2)
        keep = (self.window - 1) * tokens  # a new frame never looks further back than window - 1 frames
        self.keys[layer], self.values[layer] = k[:, :, -keep:], v[:, :, -keep:]

    def append_positions(self, positions: torch.Tensor) -> None:
        self.positions = torch.cat([self.positions, positions])[-(self.window - 1):]

    def __len__(self) -> int:
        return int(self.positions.numel())

    @staticmethod
    def joined(caches: list[KVCache]) -> KVCache:
        """Several plays' caches as one batch (along dim 0), to step them together. They must hold the same
        number of frames; the batch takes the first one's positions (the others differ by DiT.forward's
        rope_shift)."""
        first = caches[0]
        if any(len(c) != len(first) or len(c.keys) != len(first.keys) or c.window != first.window for c in caches):
            raise ValueError("caches holding different numbers of frames cannot be stepped together")
        keys = [torch.cat([c.keys[layer] for c in caches]) for layer in range(len(first.keys))]
        values = [torch.cat([c.values[layer] for c in caches]) for layer in range(len(first.keys))]
        return KVCache(first.window, keys, values, first.positions.clone())

    def parted(self, sizes: list[int], shifts: list[int]) -> list[KVCache]:
        """Undo joined: each play's rows (`sizes` of them, in order) with its own positions (the batch's plus
        its shift)."""
        keys = [k.split(sizes) for k in self.keys]
        values = [v.split(sizes) for v in self.values]
        return [
            KVCache(self.window, [k[i] for k in keys], [v[i] for v in values], self.positions + shift)
            for i, shift in enumerate(shifts)
        ]


# ---------------------------------------------------------------- embedders


class SigmaEmbedder(nn.Module):
    """Noise level in [0, 1] -> (D,), via sinusoidal features and an MLP (DiT's TimestepEmbedder)."""

    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=sigma.device, dtype=torch.float32) / half)
        args = (sigma.float() * 1000)[..., None] * freqs
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class ActionEmbedder(nn.Module):
    """Keys (9, multi-hot) + camera (pitch, yaw degrees) -> (D,). Masked-out actions get a learned null vector."""

    def __init__(self, num_keys: int, dim: int, camera_scale: float):
        super().__init__()
        self.camera_scale = camera_scale
        self.mlp = nn.Sequential(nn.Linear(num_keys + 4, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.null = nn.Parameter(torch.zeros(dim))

    def forward(self, keys: torch.Tensor, camera: torch.Tensor, act_mask: torch.Tensor) -> torch.Tensor:
        cam = camera / self.camera_scale
        # the camera both linearly and squashed: small turns stay distinguishable, large ones do not blow up
        feats = torch.cat([keys, cam, torch.tanh(cam)], dim=-1)
        emb = self.mlp(feats)
        return torch.where(act_mask[..., None], emb, self.null.to(emb.dtype))


# ---------------------------------------------------------------- the block


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6)  # qk-norm keeps attention logits tame in long training
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, rotation, bands, cache: KVCache | None, layer: int, queries_from: int = 0):
        """x (B, L, D) -> (B, L - queries_from, D), plus this input's keys and values (B, H, L, hd) for the cache.
        queries_from: the first token whose output is wanted (`bands` then index the queries from there): the
        tokens before it give keys and values only."""
        B, L, D = x.shape
        qkv = self.qkv(x).view(B, L, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, L, hd)
        # q and k normed and rotated together: one call each instead of two (their norms' weights side by side).
        qk_weight = torch.stack([self.q_norm.weight, self.k_norm.weight])[:, None, None, None]  # (2, 1, 1, 1, hd)
        qk = F.rms_norm(qkv[:2], (self.head_dim,), eps=self.q_norm.eps) * qk_weight
        q, k = apply_rope(qk, rotation)
        v = qkv[2]
        k_all, v_all = k, v
        if cache is not None and layer < len(cache.keys) and cache.keys[layer] is not None:
            k_all = torch.cat([cache.keys[layer], k], dim=2)
            v_all = torch.cat([cache.values[layer], v], dim=2)
        out = attend(q[:, :, queries_from:], k_all, v_all, bands)  # (B, H, L - queries_from, hd)
        return self.proj(out.transpose(1, 2).reshape(B, L - queries_from, D)), k, v


class DiTBlock(nn.Module):
    """Pre-norm transformer block with adaLN-Zero: shift, scale and gate per frame from the conditioning vector."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), TanhGELU(), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c, rotation, bands, cache, layer, frames_from: int = 0):
        """x (B, T, N, D); c (B, T, D). Returns x and this block's (k, v) for the cache. frames_from > 0: only
        the frames from there on come out (the earlier ones give their keys and values, nothing else)."""
        B, T, N, D = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)  # 6 x (B, T, D)
        h = modulate(self.norm1(x), shift1, scale1).reshape(B, T * N, D)
        h, k, v = self.attn(h, rotation, bands, cache, layer, queries_from=frames_from * N)
        if frames_from:
            x, gate1, shift2, scale2, gate2 = (part[:, frames_from:] for part in (x, gate1, shift2, scale2, gate2))
        x = torch.addcmul(x, gate1.unsqueeze(2), h.view(B, T - frames_from, N, D))  # x + gate * h, fused
        h = self.mlp(modulate(self.norm2(x), shift2, scale2))
        return torch.addcmul(x, gate2.unsqueeze(2), h), k, v


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


# ---------------------------------------------------------------- the model


class DepthHead(nn.Module):
    """Inverse depth (1/blocks) of each latent cell, read from one noisy latent frame: a few dilated 3x3
    convolutions (receptive field: the whole 16x16 latent), so fog, texture size and the ground's slope can
    all tell the distance. Output in [0, MAX_INVERSE_DEPTH]; it starts near 0 (everything far: no step)."""

    MAX_INVERSE_DEPTH = 2.0  # nothing nearer than half a block moves the picture further

    def __init__(self, latent_channels: int, channels: int):
        super().__init__()
        dilations = (1, 2, 4, 8, 1)
        layers: list[nn.Module] = [nn.Conv2d(latent_channels + 1, channels, 3, padding=1), nn.SiLU()]
        for d in dilations:
            layers += [nn.Conv2d(channels, channels, 3, padding=d, dilation=d), nn.SiLU()]
        layers.append(nn.Conv2d(channels, 1, 1))
        self.net = nn.Sequential(*layers)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.constant_(self.net[-1].bias, -4.0)
        self.net.to(memory_format=torch.channels_last)  # oneDNN's fast path for the (dilated) convolutions

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """x (..., C, h, w), sigma (...) -> inverse depth (..., h, w)."""
        lead, (C, h, w) = x.shape[:-3], x.shape[-3:]
        flat = x.reshape(-1, C, h, w)
        level = sigma.reshape(-1, 1, 1, 1).to(x.dtype).expand(-1, 1, h, w)
        out = self.net(torch.cat([flat, level], dim=1).contiguous(memory_format=torch.channels_last))
        return (self.MAX_INVERSE_DEPTH * torch.sigmoid(out)).reshape(*lead, h, w)


def widen_latent_channels(state: dict[str, torch.Tensor], channels: int, patch_size: int) -> dict[str, torch.Tensor]:
    """A DiT's weights for `channels` latent channels from those of one with fewer (an autoencoder given more
    channels for detail, FrameAutoencoder.start_from): the old channels are read and predicted as before, the new
    ones are read with zero weights and predicted as no change from the residual base. So the wider model starts
    out as the old one, carrying the new channels from its base (the memory's picture, the last frame moved)."""
    p2 = patch_size * patch_size
    old = state["x_embed.weight"].shape[1] // p2
    if channels < old:
        raise ValueError(f"cannot narrow a DiT from {old} to {channels} latent channels")
    out = dict(state)

    def widened(t: torch.Tensor, dim: int, groups: int) -> torch.Tensor:
        """t with its `dim` axis, `groups` blocks of old channels then one of the rest, spread to the new count."""
        shape = list(t.shape)
        per = shape[dim] // groups  # p*p entries per channel in a patch vector, 1 in a convolution's channels
        parts = t.split([old * per, shape[dim] - old * per], dim=dim)
        pad_shape = shape.copy()
        pad_shape[dim] = (channels - old) * per
        return torch.cat([parts[0], t.new_zeros(pad_shape), parts[1]], dim=dim)

    out["x_embed.weight"] = widened(state["x_embed.weight"], 1, old)
    out["final.linear.weight"] = widened(state["final.linear.weight"], 0, old)
    out["final.linear.bias"] = widened(state["final.linear.bias"], 0, old)
    if "depth.net.0.weight" in state:  # reads the latent channels and then the noise level
        out["depth.net.0.weight"] = widened(state["depth.net.0.weight"], 1, old + 1)
    if "base_embed.weight" in state:  # the base's channels and then the memory's coverage, per patch
        out["base_embed.weight"] = widened(state["base_embed.weight"], 1, old + 1)
    return out


class CausalDiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        p, C, D = cfg.patch_size, cfg.latent_channels, cfg.dim
        self.grid = cfg.latent_size // p
        self.patch_dim = C * p * p
        self.x_embed = nn.Linear(self.patch_dim, D)
        self.register_buffer("pos_embed", sincos_2d(D, self.grid), persistent=False)  # (N, D)
        self.sigma_embed = SigmaEmbedder(D)
        self.action_embed = ActionEmbedder(cfg.num_keys, D, cfg.camera_scale)
        self.blocks = nn.ModuleList(DiTBlock(D, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.final = FinalLayer(D, self.patch_dim)
        self._init_weights()
        self.depth = DepthHead(C, cfg.depth_channels) if cfg.egomotion else None
        # The residual base and the memory's coverage (C + 1 channels), zero at the start (see DiTConfig.base_input).
        self.base_embed = nn.Linear((C + 1) * p * p, D) if cfg.base_input else None
        if self.base_embed is not None:
            nn.init.zeros_(self.base_embed.weight)
            nn.init.zeros_(self.base_embed.bias)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.sigma_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.sigma_embed.mlp[2].weight, std=0.02)
        # adaLN-Zero: every block starts as the identity and the output as zero, so the untrained model
        # predicts "no change from the previous frame" (schedule.py adds the output to that frame).
        for block in self.blocks:
            nn.init.zeros_(block.ada[-1].weight)
            nn.init.zeros_(block.ada[-1].bias)
        nn.init.zeros_(self.final.ada[-1].weight)
        nn.init.zeros_(self.final.ada[-1].bias)
        nn.init.zeros_(self.final.linear.weight)
        nn.init.zeros_(self.final.linear.bias)

    def save_pretrained(self, folder: str | Path) -> None:
        """FOLDER/config.json + FOLDER/model.safetensors (a quantized DiT's quant config is the pipeline's to add)."""
        save_model_folder(Path(folder), self.cfg, self)

    @classmethod
    def from_pretrained(cls, folder: str | Path, prepare: Callable[[CausalDiT], None] | None = None) -> CausalDiT:
        """The DiT saved in FOLDER. `prepare` reshapes the fresh model before its weights load (a quantized
        checkpoint's layers are swapped for quantized ones first: quant.prepare_quantized_)."""
        folder = Path(folder)
        dit = cls(read_config(DiTConfig, folder))
        if prepare is not None:
            prepare(dit)
        load_weights(dit, folder / "model.safetensors")
        return dit.eval()

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C, h, w) -> (B, T, N, C*p*p)."""
        B, T, C, H, W = x.shape
        p, g = self.cfg.patch_size, self.grid
        x = x.reshape(B, T, C, g, p, g, p).permute(0, 1, 3, 5, 2, 4, 6)
        return x.reshape(B, T, g * g, C * p * p)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, N, C*p*p) -> (B, T, C, h, w)."""
        B, T, N, _ = x.shape
        p, g, C = self.cfg.patch_size, self.grid, self.cfg.latent_channels
        x = x.reshape(B, T, g, g, C, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return x.reshape(B, T, C, g * p, g * p)

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        keys: torch.Tensor,
        camera: torch.Tensor,
        act_mask: torch.Tensor,
        pos0: int = 0,
        cache: KVCache | None = None,
        commit: int = 0,
        with_depth: bool = False,
        base_in: torch.Tensor | None = None,
        rope_shift: torch.Tensor | None = None,
        predict_committed: bool = True,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Predict, for every frame, the network output F (see schedule.py for what it means).

        x (B, T, C, h, w) noisy latents; sigma (B, T) their noise levels in [0, 1]; keys (B, T, num_keys) and
        camera (B, T, 2) degrees: the action that produced each frame; act_mask (B, T) bool, False = null action.
        pos0: the absolute index of frame 0 (frame positions are pos0 .. pos0 + T - 1).
        cache: context frames seen before (their keys/values); the first `commit` frames of x are appended to it.
        base_in (B, T, C + 1, h, w): each frame's residual base and the memory's coverage (dit.base_input; zeros
        when absent: no base, nothing remembered).
        rope_shift (B,) integers: added to each game's frame positions, for RoPE only. Games stepped together from
        different points of their plays (worldmodel.session.step_together) share pos0 and the cache's layout;
        RoPE, the only place absolute positions enter, still rotates each at its own.
        predict_committed=False: predict only the frames after the `commit` ones (the sampler's step needs its
        new frame alone): the committed frames then skip the last block's attention output and MLP and the final
        layer, about 4% of a streaming frame.
        Returns (B, T, C, h, w), or (B, T - commit, ...) without the committed frames' predictions; with_depth=True
        (a model with a depth head) also each frame's inverse depth (B, T, h, w), computed in the same call so that
        DistributedDataParallel sees every weight used.
        """
        B, T = x.shape[:2]
        N, cfg = self.grid * self.grid, self.cfg
        if commit and cache is None:
            raise ValueError("commit > 0 needs a cache to write into")
        tokens = self.x_embed(self.patchify(x)) + self.pos_embed  # (B, T, N, D)
        if self.base_embed is not None:
            if base_in is None:
                base_in = x.new_zeros(B, T, x.shape[2] + 1, *x.shape[3:])
            tokens = tokens + self.base_embed(self.patchify(base_in))
        c = self.sigma_embed(sigma) + self.action_embed(keys, camera, act_mask)  # (B, T, D)

        q_pos = torch.arange(pos0, pos0 + T)
        past_pos = cache.positions if cache is not None else torch.zeros(0, dtype=torch.long)
        if past_pos.numel() and int(past_pos[-1]) != pos0 - 1:
            raise ValueError(f"cache ends at frame {int(past_pos[-1])} but the input starts at frame {pos0}")
        k_pos = torch.cat([past_pos, q_pos])
        bands = frame_bands(q_pos, k_pos, cfg.window, N)
        rope_pos = q_pos.repeat_interleave(N)
        if rope_shift is not None:
            rope_pos = (rope_pos[None] + rope_shift.cpu()[:, None])[:, None]  # (B, 1, L): broadcast over heads
        rotation = rope_tables(rope_pos, cfg.dim // cfg.heads).to(x.device)

        skip = 0 if predict_committed else commit  # frames whose predictions are not wanted
        h = tokens
        for layer, block in enumerate(self.blocks):
            last = layer == len(self.blocks) - 1
            if last and skip:
                bands = frame_bands(q_pos[skip:], k_pos, cfg.window, N)  # the kept frames' queries, from token 0
            h, k, v = block(h, c, rotation, bands, cache, layer, frames_from=skip if last else 0)
            if commit:
                cache.append(layer, k[:, :, : commit * N], v[:, :, : commit * N], N)
        if commit:
            cache.append_positions(q_pos[:commit])
        out = self.unpatchify(self.final(h, c[:, skip:]))  # (B, T - skip, C, h, w)
        if with_depth:
            if self.depth is None:
                raise ValueError("with_depth=True needs a model with a depth head (dit.egomotion)")
            return out, self.depth(x, sigma)
        return out
