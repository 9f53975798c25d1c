"""Typed, frozen configs for the world model: one per component, validated on construction.

AutoencoderConfig  the frame autoencoder (a diffusers AutoencoderTiny layout)
DiTConfig          the causal video diffusion transformer
SamplingConfig     how frames are sampled at inference (steps, context noise, guidance)
TrainConfig        one training run (stages, data, optimisation, budget); nests the three above

PRESETS names model sizes (DiT's `DiT_models` idea): data, not factory functions.
Configs travel as JSON (`to_dict` / `from_dict`); unknown keys are errors, not silently ignored.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from data.actions import KEYS

T = TypeVar("T")


def _power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def check_field_types(cfg: Any, prefix: str) -> None:
    """Every field holds what its annotation says, and every number is finite.

    JSON lets through what Python would happily compute with for a while: `"depth": 6.0` breaks deep inside
    the model, and `"shift": Infinity` or `NaN` (which json.loads accepts) turns every generated frame black.
    So a whole-number field refuses floats, a float field refuses NaN and infinities, and bools are not numbers.
    """
    for f in dataclasses.fields(cfg):
        value, name, kind = getattr(cfg, f.name), f"{prefix}.{f.name}" if prefix else f.name, str(f.type)
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if kind == "bool" and not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        if kind == "str" and not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        if kind.startswith("tuple[int") and not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError(f"{name} must hold whole numbers, got {value!r}")
        if kind.startswith("tuple[str") and not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must hold strings, got {value!r}")


AUTOENCODER_KINDS = ("tiny", "pixels")


@dataclass(frozen=True)
class PitchConfig:
    """The pitch estimator (worldmodel.pitch): four stride-2 convolutions over `image_size` RGB frames (plus a
    row-position channel), `width` channels at the first, then a small head."""

    image_size: int = 64
    width: int = 16

    def __post_init__(self) -> None:
        check_field_types(self, "pitch")
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError(f"pitch.image_size must be a multiple of 16, at least 16, got {self.image_size}")
        if self.width < 1:
            raise ValueError(f"pitch.width must be >= 1, got {self.width}")


@dataclass(frozen=True)
class AutoencoderConfig:
    """A small AutoencoderTiny: `image_size` RGB frames <-> (latent_channels, image_size/downsample, ...) latents.

    AutoencoderTiny needs the same channel count at every level, and one level per factor of 2 plus one:
    `encoder_blocks` / `decoder_blocks` hold the number of residual blocks per level (len = log2(downsample) + 1).
    kind="pixels" is no autoencoder at all: the DiT works on the frames themselves (3 channels, downsample 1).
    """

    kind: str = "tiny"
    image_size: int = 64
    latent_channels: int = 4
    downsample: int = 4
    # The encoder runs once per dataset frame (the latent cache), the decoder once per generated frame:
    # both kept cheap (~2,000 frames/s encoding, ~3-5 ms decoding on one core at 64x64).
    encoder_channels: int = 16
    decoder_channels: int = 32
    encoder_blocks: tuple[int, ...] = (0, 1, 1)
    decoder_blocks: tuple[int, ...] = (1, 1, 1)

    def __post_init__(self) -> None:
        for name in ("encoder_blocks", "decoder_blocks"):
            if not isinstance(getattr(self, name), (tuple, list)):
                raise ValueError(f"autoencoder.{name} must be a list of whole numbers, got {getattr(self, name)!r}")
            object.__setattr__(self, name, tuple(getattr(self, name)))
        check_field_types(self, "autoencoder")
        if self.kind not in AUTOENCODER_KINDS:
            raise ValueError(f"autoencoder.kind must be one of {AUTOENCODER_KINDS}, got {self.kind!r}")
        if self.kind == "pixels" and (self.latent_channels != 3 or self.downsample != 1):
            raise ValueError("autoencoder.kind 'pixels' needs latent_channels 3 and downsample 1")
        if not _power_of_two(self.downsample):
            raise ValueError(f"autoencoder.downsample must be a power of 2, got {self.downsample}")
        if self.image_size % self.downsample:
            raise ValueError(f"autoencoder.image_size {self.image_size} is not divisible by downsample {self.downsample}")
        levels = int(math.log2(self.downsample)) + 1
        for name in ("encoder_blocks", "decoder_blocks"):
            blocks = getattr(self, name)
            if len(blocks) != levels or min(blocks) < 0:
                raise ValueError(
                    f"autoencoder.{name} needs {levels} non-negative entries for downsample {self.downsample}, got {blocks}"
                )
        for name in ("latent_channels", "encoder_channels", "decoder_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"autoencoder.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def latent_size(self) -> int:
        return self.image_size // self.downsample


@dataclass(frozen=True)
class DiTConfig:
    """The causal DiT over latent frames.

    Tokens are `patch_size` x `patch_size` patches of a latent frame. Attention is full within a frame and causal
    across frames, limited to the last `window` frames (the current one included), so a key/value cache of
    `window - 1` frames reproduces the uncached model exactly, however long the play.
    """

    latent_channels: int = 4
    latent_size: int = 16
    patch_size: int = 2
    dim: int = 256
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    window: int = 4
    num_keys: int = len(KEYS)
    camera_scale: float = 10.0  # degrees per frame that map to 1.0 at the action embedder's input
    # Vertical field of view of the frames, in degrees. When > 0, each frame's residual base is the previous frame
    # turned by the frame's own mouse move (schedule.turn_view): a rotation's effect on the picture is pure
    # geometry, so the network spends its capacity on what a turn cannot explain (walking, new borders). 0 = off.
    view_fov: float = 0.0
    # With view_fov: the base also steps the camera as the keys walk it (worldmodel.egomotion), moving each part
    # of the picture by its distance, which a small convolutional head (DepthHead) reads from the previous frame's
    # latent, trained on the simulator's depth. Walking's effect on the picture is then geometry too.
    egomotion: bool = False
    depth_channels: int = 48  # width of the depth head
    # The network also sees each frame's residual base and how much of it the world memory covered (one more
    # channel, the covered share of each latent cell's pixels), through a patch embedding that starts at zero, so a
    # model trained without it starts unchanged. Without it the network cannot tell a remembered wall from the
    # repeated edge that stands in for what comes into view, and so cannot learn to paint one and keep the other.
    base_input: bool = False

    def __post_init__(self) -> None:
        check_field_types(self, "dit")
        if self.latent_size % self.patch_size:
            raise ValueError(f"dit.latent_size {self.latent_size} is not divisible by patch_size {self.patch_size}")
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(f"dit.dim {self.dim} must split into {self.heads} heads of even size")
        for name in ("latent_channels", "patch_size", "depth", "heads", "window", "num_keys"):
            if getattr(self, name) < 1:
                raise ValueError(f"dit.{name} must be >= 1, got {getattr(self, name)}")
        if self.mlp_ratio <= 0 or self.camera_scale <= 0:
            raise ValueError("dit.mlp_ratio and dit.camera_scale must be positive")
        if not 0.0 <= self.view_fov < 170.0:
            raise ValueError(f"dit.view_fov must be in [0, 170) degrees, got {self.view_fov}")
        if self.egomotion and self.view_fov <= 0:
            raise ValueError("dit.egomotion needs dit.view_fov > 0 (the camera's field of view)")
        if self.depth_channels < 1:
            raise ValueError(f"dit.depth_channels must be >= 1, got {self.depth_channels}")
        if self.base_input and not self.egomotion:
            raise ValueError("dit.base_input needs dit.egomotion (the bases it sees are the world memory's)")

    @property
    def tokens_per_frame(self) -> int:
        return (self.latent_size // self.patch_size) ** 2


@dataclass(frozen=True)
class SamplingConfig:
    """Inference: `steps` denoising steps per frame; finished frames re-enter the context at `context_sigma`."""

    # Measured on wm-default with its memory (session 12, unseen worlds): one step, the network's estimate of the
    # frame from pure noise (its mean: what it cannot know comes out smooth, not as made-up texture), beats two on
    # every measure: 8-frame rollouts +0.54 dB, revisits +1.1-1.4 dB, the 1,000-frame play's detail still >= 0.76 of
    # the simulator's, the quick suite's keyboard and mouse level, and a frame costs one network pass, not two.
    # (Session 9: 2 steps matched or beat 3 on every measure.)
    steps: int = 1
    # Measured: at 0.0-0.1 rollouts drift (contrast grows every frame); at 0.2-0.3 they stay stable (training
    # draws context levels in [0, context_sigma_max = 0.3]). With one step, 0.35 scores a little higher than 0.25
    # (rollouts +0.07 dB on 120, revisits and the long play as good): the network leans more on the base.
    context_sigma: float = 0.35
    shift: float = 1.0  # >1 spends more steps at high noise (SD3's timestep shift)
    guidance: float = 1.0  # classifier-free guidance on actions; 1.0 = off (no second pass)
    guidance_steps: int = 0  # guide only the first this many steps (where the layout is decided); 0 = all
    # The world memory (worldmodel/memory.py): every shown pixel kept as a point in world coordinates, and each
    # new view starts from what the memory shows from there. Needs a DiT with egomotion (the pose and the depth).
    memory: bool = False
    memory_points: int = 150_000  # the memory's capacity; the least recently seen points go first
    # With the memory: the frame shown keeps the memory's own pixels where it covers the view (sharp, exactly what
    # was seen); false shows the network's frame everywhere (the memory then only makes its base, and the network
    # may correct what the memory got wrong, through the autoencoder's blur).
    memory_pixels: bool = True

    def __post_init__(self) -> None:
        check_field_types(self, "sampling")
        if not 1 <= self.steps <= 50:
            raise ValueError(f"sampling.steps must be in 1..50, got {self.steps}")
        if not 0.0 <= self.context_sigma < 1.0:
            raise ValueError(f"sampling.context_sigma must be in [0, 1), got {self.context_sigma}")
        if self.shift <= 0:
            raise ValueError(f"sampling.shift must be positive, got {self.shift}")
        if self.guidance < 0:
            raise ValueError(f"sampling.guidance must be >= 0, got {self.guidance}")
        if self.guidance_steps < 0:
            raise ValueError(f"sampling.guidance_steps must be >= 0, got {self.guidance_steps}")
        if not isinstance(self.memory, bool):
            raise ValueError(f"sampling.memory must be true or false, got {self.memory!r}")
        if not isinstance(self.memory_pixels, bool):
            raise ValueError(f"sampling.memory_pixels must be true or false, got {self.memory_pixels!r}")
        if isinstance(self.memory_points, bool) or not isinstance(self.memory_points, int) or self.memory_points < 1:
            raise ValueError(f"sampling.memory_points must be a whole number >= 1, got {self.memory_points!r}")


STAGES = ("autoencoder", "world")  # the default; "pitch" (the pitch estimator, worldmodel.pitch) is asked for by name
ALL_STAGES = (*STAGES, "pitch")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. `stages` picks what runs: the autoencoder, then the world model on cached latents.

    Budgets: each stage stops at its step count or its minutes, whichever comes first, and still saves.
    """

    data: str = ""  # folder of recorded clips (data.clips.ClipWindows)
    stages: tuple[str, ...] = STAGES
    # A pipeline folder to start from: its autoencoder starts the autoencoder stage (FrameAutoencoder.start_from:
    # more latent channels allowed) or is used as it is without that stage; its dit starts the world stage.
    init_from: str = ""
    seed: int = 0
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    # autoencoder stage
    ae_steps: int = 3000
    ae_minutes: float = 10.0
    ae_batch_size: int = 32
    ae_lr: float = 1e-3
    ae_warmup_steps: int = 50
    ae_edge_weight: float = 0.5  # weight of the image-gradient loss that keeps block edges sharp
    # With init_from: weight of the squared drift of the latent channels it starts from (raw, against the starting
    # autoencoder's), so the world model trained on them still reads them and the new channels carry the detail.
    ae_anchor_weight: float = 0.0
    # world-model stage
    steps: int = 20000
    max_minutes: float = 70.0
    batch_size: int = 16
    seq_len: int = 5  # frames per training sample (>= window is fine: the attention window limits context)
    lr: float = 6e-4
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    warmup_steps: int = 300
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    action_dropout: float = 0.1  # per frame: replace the action with the null embedding (guidance on actions)
    context_prob: float = 0.5  # per frame: draw a low "context" noise level instead of a training one
    context_sigma_max: float = 0.3
    unroll_prob: float = 0.0  # per batch: replace the context by the model's own one-step predictions (anti-drift)
    depth_weight: float = 1.0  # with dit.egomotion: weight of the depth head's loss (the simulator's inverse depth)
    # With dit.base_input: the share of batches whose bases the world memory made (worldmodel.memory_bases), from
    # up to memory_clips training clips (0: all), the memory restarting every memory_restart frames.
    memory_base_prob: float = 0.0
    memory_clips: int = 0
    memory_restart: int = 48
    # pitch stage (worldmodel.train_pitch)
    pitch: PitchConfig = field(default_factory=PitchConfig)
    pitch_steps: int = 4000
    pitch_minutes: float = 10.0
    pitch_batch_size: int = 64
    pitch_lr: float = 2e-3
    # bookkeeping
    log_every: int = 25
    eval_every: int = 250
    ckpt_every: int = 500
    eval_batch: int = 16
    cache_batch: int = 64  # frames per batch when encoding the dataset into cached latents

    def __post_init__(self) -> None:
        if not isinstance(self.stages, (tuple, list)):
            raise ValueError(f"stages must be a list out of {ALL_STAGES}, got {self.stages!r}")
        object.__setattr__(self, "stages", tuple(self.stages))
        check_field_types(self, "")
        bad = [s for s in self.stages if s not in ALL_STAGES]
        if bad or not self.stages:
            raise ValueError(f"stages must be a non-empty subset of {ALL_STAGES}, got {self.stages}")
        if self.autoencoder.latent_channels != self.dit.latent_channels or self.autoencoder.latent_size != self.dit.latent_size:
            raise ValueError(
                f"dit latent ({self.dit.latent_channels}ch, {self.dit.latent_size}px) does not match the autoencoder's "
                f"({self.autoencoder.latent_channels}ch, {self.autoencoder.latent_size}px)"
            )
        for name in (
            "ae_steps", "ae_warmup_steps", "ae_batch_size", "steps", "batch_size",
            "log_every", "eval_every", "ckpt_every", "eval_batch", "cache_batch", "pitch_steps", "pitch_batch_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if "pitch" in self.stages and self.pitch.image_size != self.autoencoder.image_size:
            raise ValueError(f"pitch.image_size ({self.pitch.image_size}) must be the autoencoder's "
                             f"({self.autoencoder.image_size}): the estimator reads the frames the model shows")
        if self.seq_len < 2:
            raise ValueError(f"seq_len must be >= 2 (a context frame and a predicted one), got {self.seq_len}")
        for name in ("action_dropout", "context_prob", "unroll_prob", "min_lr_ratio", "memory_base_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 < self.context_sigma_max < 1.0:
            raise ValueError(f"context_sigma_max must be in (0, 1), got {self.context_sigma_max}")
        if self.depth_weight < 0 or self.ae_anchor_weight < 0:
            raise ValueError(f"depth_weight and ae_anchor_weight must be >= 0, got {self.depth_weight}, {self.ae_anchor_weight}")
        if self.ae_anchor_weight > 0 and not self.init_from:
            raise ValueError("ae_anchor_weight keeps the latent channels of the autoencoder in init_from: set init_from")
        if self.memory_clips < 0 or self.memory_restart < 2:
            raise ValueError(f"memory_clips must be >= 0 and memory_restart >= 2, got {self.memory_clips}, {self.memory_restart}")
        if self.memory_base_prob > 0 and not (self.dit.base_input and self.sampling.memory):
            raise ValueError("memory_base_prob > 0 needs dit.base_input and sampling.memory")
        if self.max_minutes <= 0 or self.ae_minutes <= 0 or self.lr <= 0 or self.ae_lr <= 0:
            raise ValueError("max_minutes, ae_minutes, lr and ae_lr must be positive")


# Named model sizes. "wm-default" is what ships (sized for real-time play and ~1 hour of training on 2 CPU
# cores); "wm-base" is the next size up for a GPU; "wm-tiny" is for tests.
PRESETS: dict[str, tuple[AutoencoderConfig, DiTConfig]] = {
    "wm-default": (AutoencoderConfig(), DiTConfig(dim=192, depth=6, heads=3)),
    "wm-base": (AutoencoderConfig(), DiTConfig(dim=256, depth=6, heads=4)),
    # No autoencoder: 8x8 pixel patches (64 tokens a frame), as DESIGN suggests measuring against the latent model.
    "wm-pixels": (
        AutoencoderConfig(kind="pixels", latent_channels=3, downsample=1, encoder_blocks=(0,), decoder_blocks=(0,)),
        DiTConfig(latent_channels=3, latent_size=64, patch_size=8, dim=192, depth=6, heads=3),
    ),
    "wm-tiny": (
        AutoencoderConfig(image_size=16, latent_channels=4, downsample=4, encoder_channels=8, decoder_channels=8),
        DiTConfig(latent_channels=4, latent_size=4, patch_size=2, dim=32, depth=2, heads=2, window=3),
    ),
}


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config (nested dataclasses) -> plain JSON-able dict."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type[T], values: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from a dict; nested config fields from nested dicts. Unknown keys raise ValueError."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a JSON object for {cls.__name__}, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; known: {sorted(fields)}")
    kwargs: dict[str, Any] = {}
    nested = {"autoencoder": AutoencoderConfig, "dit": DiTConfig, "sampling": SamplingConfig, "pitch": PitchConfig}
    for name, value in values.items():
        if name in nested and cls is TrainConfig:
            kwargs[name] = from_dict(nested[name], value, f"{where}.{name}")
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from err


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object from `path`, or a ValueError/FileNotFoundError that names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (not a worldmodel checkpoint folder, or an incomplete one)")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from err
    except (UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"{path}: not a JSON config ({type(err).__name__})") from err
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(values).__name__}")
    return values


def load_train_config(path: str) -> TrainConfig:
    """Read a training config JSON. A "preset" key fills autoencoder/dit from PRESETS before other keys apply."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such config file")
    values = read_json(Path(path))
    preset = values.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"{path}: unknown preset {preset!r}; known: {sorted(PRESETS)}")
        ae, dit = PRESETS[preset]
        for name in ("autoencoder", "dit"):
            if not isinstance(values.get(name, {}), dict):
                raise ValueError(f"{path}: {name!r} must be a JSON object, got {values[name]!r}")
        values["autoencoder"] = {**to_dict(ae), **values.get("autoencoder", {})}
        values["dit"] = {**to_dict(dit), **values.get("dit", {})}
    cfg = from_dict(TrainConfig, values, where=path)
    # Relative data and init_from paths are relative to the config file, so a config works from any folder.
    here = os.path.dirname(os.path.abspath(path))
    for name in ("data", "init_from"):
        value = getattr(cfg, name)
        if value and not os.path.isabs(value):
            cfg = dataclasses.replace(cfg, **{name: os.path.normpath(os.path.join(here, value))})
    return cfg
