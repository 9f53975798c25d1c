"""WorldPipeline: the autoencoder + the causal DiT + sampling settings, loaded and saved as a folder.

    PATH/config.json                 {"format": "worldmodel-pipeline", "version": 1, "sampling": {...}}
    PATH/autoencoder/config.json     AutoencoderConfig
    PATH/autoencoder/model.safetensors
    PATH/dit/config.json             DiTConfig
    PATH/dit/model.safetensors
    PATH/dit/quant_config.json       only for a quantized DiT (quant.config_to_dict)

No pickles anywhere: configs are JSON, weights safetensors.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from data.actions import Action
from worldmodel.autoencoder import FrameAutoencoder
from worldmodel.config import AutoencoderConfig, DiTConfig, SamplingConfig, from_dict, to_dict
from worldmodel.dit import CausalDiT
from worldmodel.finite import check_weights
from worldmodel.paths import DEFAULT_CHECKPOINT
from worldmodel.session import Session

FORMAT = "worldmodel-pipeline"
VERSION = 1
TOP_LEVEL_KEYS = frozenset({"format", "version", "sampling"})  # of PATH/config.json; others are refused


def _read_json(path: Path) -> dict[str, Any]:
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


def _load_weights(module: torch.nn.Module, path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing weights")
    try:
        state = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for truncated/corrupt files
        raise ValueError(f"{path}: cannot read safetensors ({err}); the file is corrupt or truncated") from err
    check_weights(state, str(path))
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(f"{path}: weights do not match the model in its config.json: {str(err).splitlines()[-1].strip()}") from err
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not match the model in its config.json "
            f"(missing {missing[:4]}{'...' if len(missing) > 4 else ''}, unexpected {unexpected[:4]}"
            f"{'...' if len(unexpected) > 4 else ''}); a quantized checkpoint needs its quant_config.json"
        )


def _quant():
    """The quant package's entry points, or None while it is not there."""
    try:
        import quant

        needed = ("quantize_", "quant_config_of", "config_to_dict", "config_from_dict", "prepare_quantized_")
        return quant if all(hasattr(quant, name) for name in needed) else None
    except ImportError:
        return None


def write_json_atomic(path: Path, values: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(values, indent=2) + "\n")
    os.replace(tmp, path)


class WorldPipeline:
    def __init__(self, autoencoder: FrameAutoencoder, dit: CausalDiT, sampling: SamplingConfig = SamplingConfig()):
        if autoencoder.cfg.latent_channels != dit.cfg.latent_channels or autoencoder.cfg.latent_size != dit.cfg.latent_size:
            raise ValueError("the autoencoder's latents do not match the DiT's input")
        if sampling.memory and not dit.cfg.egomotion:
            raise ValueError("sampling.memory needs a DiT with egomotion (its depth head places what the memory keeps)")
        self.autoencoder = autoencoder.eval()
        self.dit = dit.eval()
        self.sampling = sampling

    @property
    def device(self) -> torch.device:
        return next(self.dit.parameters()).device

    @property
    def image_size(self) -> int:
        return self.autoencoder.cfg.image_size

    def to(self, device: str | torch.device) -> "WorldPipeline":
        self.autoencoder.to(device)
        self.dit.to(device)
        return self

    # ------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str = "cpu", quant: str | None = None) -> "WorldPipeline":
        """Load a pipeline folder (None: the shipped default). quant="int8"|"lut4"|...: quantize a float DiT after loading."""
        root = Path(path) if path is not None else DEFAULT_CHECKPOINT
        if not root.is_dir():
            hint = " (the shipped default is not there: train one with `worldmodel train`)" if path is None else ""
            raise FileNotFoundError(f"{root}: no such checkpoint folder{hint}")
        top = _read_json(root / "config.json")
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
        ae_cfg = from_dict(AutoencoderConfig, _read_json(root / "autoencoder" / "config.json"), str(root / "autoencoder" / "config.json"))
        dit_cfg = from_dict(DiTConfig, _read_json(root / "dit" / "config.json"), str(root / "dit" / "config.json"))
        autoencoder = FrameAutoencoder(ae_cfg)
        _load_weights(autoencoder, root / "autoencoder" / "model.safetensors")
        dit = CausalDiT(dit_cfg)
        quant_path = root / "dit" / "quant_config.json"
        if quant_path.is_file():
            q = _quant()
            if q is None:
                raise RuntimeError(f"{quant_path}: this checkpoint is quantized, but the quant package is not available")
            q.prepare_quantized_(dit, q.config_from_dict(_read_json(quant_path)))
        _load_weights(dit, root / "dit" / "model.safetensors")
        pipe = cls(autoencoder, dit, sampling).to(device)
        if quant is not None:
            pipe.quantize(quant)
        return pipe

    def quantize(self, method: str) -> "WorldPipeline":
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
        """Write the folder atomically: into a temporary sibling, then renamed over `path`."""
        root = Path(path)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
        try:
            (tmp / "autoencoder").mkdir()
            (tmp / "dit").mkdir()
            write_json_atomic(tmp / "config.json", {"format": FORMAT, "version": VERSION, "sampling": to_dict(self.sampling)})
            write_json_atomic(tmp / "autoencoder" / "config.json", to_dict(self.autoencoder.cfg))
            save_file(_contiguous(self.autoencoder.state_dict()), str(tmp / "autoencoder" / "model.safetensors"))
            write_json_atomic(tmp / "dit" / "config.json", to_dict(self.dit.cfg))
            save_file(_contiguous(self.dit.state_dict()), str(tmp / "dit" / "model.safetensors"))
            q = _quant()
            qcfg = q.quant_config_of(self.dit) if q is not None else None
            if qcfg is not None:
                write_json_atomic(tmp / "dit" / "quant_config.json", q.config_to_dict(qcfg))
            if root.exists():
                old = root.with_name(f".{root.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(root, old)
                os.replace(tmp, root)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # ------------------------------------------------------------ generation

    def new_session(self, seed: int = 0, sampling: SamplingConfig | None = None, use_cache: bool = True) -> Session:
        return Session(self.dit, self.autoencoder, sampling or self.sampling, seed=seed, use_cache=use_cache)

    def __call__(self, image: np.ndarray, actions: list[Action], seed: int = 0) -> np.ndarray:
        """Generate len(actions) frames after `image` (uint8 (H, W, 3)): returns uint8 (T + 1, H, W, 3), frame 0 the start."""
        session = self.new_session(seed=seed)
        frames = [session.start(image)]
        frames += [session.step(act) for act in actions]
        return np.stack(frames)


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; a clone per tensor is cheap at this size.
    return {name: t.detach().contiguous().clone() for name, t in state.items()}
