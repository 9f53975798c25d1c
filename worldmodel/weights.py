"""A model's own folder: FOLDER/config.json (its config dataclass) + FOLDER/model.safetensors (its weights).

The autoencoder and the DiT save and load themselves through these (`save_pretrained` / `from_pretrained`), and
the pipeline composes them. No pickles: configs are JSON, weights safetensors; weights are checked to be finite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file

from data.files import atomic_path, write_text_atomic
from worldmodel.config import from_dict, read_json, to_dict
from worldmodel.finite import check_weights

Config = TypeVar("Config")


def write_json(path: Path, values: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(values, indent=2) + "\n")


def read_config(cls: type[Config], folder: Path) -> Config:
    return from_dict(cls, read_json(folder / "config.json"), str(folder / "config.json"))


def load_weights(module: torch.nn.Module, path: Path) -> None:
    """Load `path` into `module` exactly: every weight, no more, each finite."""
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
        last = str(err).splitlines()[-1].strip()
        raise ValueError(f"{path}: weights do not match the model in its config.json: {last}") from err
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not match the model in its config.json "
            f"(missing {missing[:4]}{'...' if len(missing) > 4 else ''}, unexpected {unexpected[:4]}"
            f"{'...' if len(unexpected) > 4 else ''}); a quantized checkpoint needs its quant_config.json"
        )


def save_model_folder(folder: Path, cfg: Any, module: torch.nn.Module) -> None:
    """FOLDER/config.json and FOLDER/model.safetensors, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", to_dict(cfg))
    # safetensors wants contiguous tensors; some weights are views (a transpose, a slice).
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp))
