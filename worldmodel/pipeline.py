"""WorldPipeline: the autoencoder + the causal DiT + sampling settings, loaded and saved as a folder.

    PATH/config.json                 {"format": "worldmodel-pipeline", "version": 1, "sampling": {...}}
    PATH/autoencoder/config.json     AutoencoderConfig
    PATH/autoencoder/model.safetensors
    PATH/dit/config.json             DiTConfig
    PATH/dit/model.safetensors
    PATH/dit/quant_config.json       only for a quantized DiT (quant.config_to_dict)
    PATH/pitch/config.json           PitchConfig, optional: the start picture's pitch (worldmodel.pitch);
    PATH/pitch/model.safetensors     without it a play starts level

No pickles anywhere: configs are JSON, weights safetensors. The autoencoder, the DiT and the pitch estimator save and
load their own folders (worldmodel/weights.py); the pipeline composes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from data.actions import Action
from data.files import atomic_folder
from worldmodel.autoencoder import FrameAutoencoder
from worldmodel.config import SamplingConfig, from_dict, read_json, to_dict
from worldmodel.dit import CausalDiT
from worldmodel.paths import DEFAULT_CHECKPOINT
from worldmodel.pitch import PitchEstimator
from worldmodel.session import Session
from worldmodel.weights import write_json

FORMAT = "worldmodel-pipeline"
VERSION = 1
TOP_LEVEL_KEYS = frozenset({"format", "version", "sampling"})  # of PATH/config.json; others are refused


def _quant():
    """The quant package's entry points, or None while it is not there."""
    try:
        import quant

        needed = ("quantize_", "quant_config_of", "config_to_dict", "config_from_dict", "prepare_quantized_")
        return quant if all(hasattr(quant, name) for name in needed) else None
    except ImportError:
        return None


class WorldPipeline:
    def __init__(self, autoencoder: FrameAutoencoder, dit: CausalDiT, sampling: SamplingConfig | None = None,
                 pitch: PitchEstimator | None = None):
        sampling = SamplingConfig() if sampling is None else sampling
        if autoencoder.cfg.latent_channels != dit.cfg.latent_channels or autoencoder.cfg.latent_size != dit.cfg.latent_size:
            raise ValueError("the autoencoder's latents do not match the DiT's input")
        if sampling.memory and not dit.cfg.egomotion:
            raise ValueError("sampling.memory needs a DiT with egomotion (its depth head places what the memory keeps)")
        self.autoencoder = autoencoder.eval()
        self.dit = dit.eval()
        self.sampling = sampling
        if pitch is not None and pitch.cfg.image_size != autoencoder.cfg.image_size:
            raise ValueError(f"the pitch estimator reads {pitch.cfg.image_size}px frames, the model makes "
                             f"{autoencoder.cfg.image_size}px ones")
        self.pitch = pitch.eval() if pitch is not None else None

    @property
    def device(self) -> torch.device:
        return next(self.dit.parameters()).device

    @property
    def image_size(self) -> int:
        return self.autoencoder.cfg.image_size

    def to(self, device: str | torch.device) -> WorldPipeline:
        self.autoencoder.to(device)
        self.dit.to(device)
        if self.pitch is not None:
            self.pitch.to(device)
        return self

    # ------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str = "cpu", quant: str | None = None) -> WorldPipeline:
        """Load a pipeline folder (None: the shipped default). quant="int8"|"lut4"|...: quantize a float DiT after loading."""
        root = Path(path) if path is not None else DEFAULT_CHECKPOINT
        if not root.is_dir():
            hint = " (the shipped default is not there: train one with `worldmodel train`)" if path is None else ""
            raise FileNotFoundError(f"{root}: no such checkpoint folder{hint}")
        top = read_json(root / "config.json")
        if top.get("format") != FORMAT:
            raise ValueError(f"{root / 'config.json'}: not a {FORMAT} config")
        unknown = sorted(set(top) - TOP_LEVEL_KEYS)
        if unknown:
            raise ValueError(f"{root / 'config.json'}: unknown key(s) {unknown}; known: {sorted(TOP_LEVEL_KEYS)}")
        version = top.get("version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValueError(f"{root / 'config.json'}: version must be a whole number, got {version!r}")
        if version > VERSION:
            raise ValueError(f"{root / 'config.json'}: version {top.get('version')} is newer than this code ({VERSION})")
        sampling = from_dict(SamplingConfig, top.get("sampling", {}), str(root / "config.json"))
        autoencoder = FrameAutoencoder.from_pretrained(root / "autoencoder")
        prepare = None
        quant_path = root / "dit" / "quant_config.json"
        if quant_path.is_file():
            q = _quant()
            if q is None:
                raise RuntimeError(f"{quant_path}: this checkpoint is quantized, but the quant package is not available")
            qcfg = q.config_from_dict(read_json(quant_path))
            prepare = lambda dit: q.prepare_quantized_(dit, qcfg)
        dit = CausalDiT.from_pretrained(root / "dit", prepare=prepare)
        pitch = PitchEstimator.from_pretrained(root / "pitch") if (root / "pitch").is_dir() else None
        pipe = cls(autoencoder, dit, sampling, pitch).to(device)
        if quant is not None:
            pipe.quantize(quant)
        return pipe

    def quantize(self, method: str) -> WorldPipeline:
        """Quantize the DiT's linear layers in place with a named quant method."""
        q = _quant()
        if q is None:
            raise RuntimeError("quantization needs the quant package (quant.quantize_), which is not available")
        if q.quant_config_of(self.dit) is not None:
            raise ValueError("the DiT is already quantized")
        if not hasattr(q, "config_for"):
            raise RuntimeError("quant has no config_for(name); cannot map a method name to a config")
        q.quantize_(self.dit, q.config_for(method))
        return self

    def save_pretrained(self, path: str | Path) -> None:
        """Write the folder atomically: a reader sees the old folder or the whole new one (data.files.atomic_folder)."""
        with atomic_folder(path) as tmp:
            write_json(tmp / "config.json", {"format": FORMAT, "version": VERSION, "sampling": to_dict(self.sampling)})
            self.autoencoder.save_pretrained(tmp / "autoencoder")
            self.dit.save_pretrained(tmp / "dit")
            if self.pitch is not None:
                self.pitch.save_pretrained(tmp / "pitch")
            q = _quant()
            qcfg = q.quant_config_of(self.dit) if q is not None else None
            if qcfg is not None:
                write_json(tmp / "dit" / "quant_config.json", q.config_to_dict(qcfg))

    # ------------------------------------------------------------ generation

    def new_session(self, seed: int = 0, sampling: SamplingConfig | None = None, use_cache: bool = True) -> Session:
        return Session(self.dit, self.autoencoder, sampling or self.sampling, seed=seed, use_cache=use_cache,
                       pitch=self.pitch)

    def __call__(self, image: np.ndarray, actions: list[Action], seed: int = 0) -> np.ndarray:
        """Generate len(actions) frames after `image` (uint8 (H, W, 3)): returns uint8 (T + 1, H, W, 3), frame 0 the start."""
        session = self.new_session(seed=seed)
        frames = [session.start(image)]
        frames += [session.step(act) for act in actions]
        return np.stack(frames)
