"""WorldPipeline: save/load round trip, generation, clear errors, quantized round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import quant
from data.actions import NOOP, Action
from worldmodel.autoencoder import FrameAutoencoder
from worldmodel.config import PRESETS, SamplingConfig
from worldmodel.dit import CausalDiT
from worldmodel.pipeline import WorldPipeline

torch.set_num_threads(1)
AE_CFG, DIT_CFG = PRESETS["wm-tiny"]
ACTIONS = [Action(frozenset({"forward"}), (0.0, 4.0)), NOOP, Action(frozenset({"right"}), (-2.0, 0.0))]


def tiny_pipeline() -> WorldPipeline:
    torch.manual_seed(0)
    dit = CausalDiT(DIT_CFG)
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return WorldPipeline(FrameAutoencoder(AE_CFG), dit, SamplingConfig(steps=2, context_sigma=0.05))


def start_image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def test_call_returns_start_plus_one_frame_per_action():
    pipe = tiny_pipeline()
    frames = pipe(start_image(), ACTIONS)
    assert frames.shape == (4, 16, 16, 3) and frames.dtype == np.uint8


def test_save_load_round_trip(tmp_path):
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "ckpt")
    names = sorted(p.relative_to(tmp_path / "ckpt").as_posix() for p in (tmp_path / "ckpt").rglob("*") if p.is_file())
    assert names == [
        "autoencoder/config.json", "autoencoder/model.safetensors", "config.json", "dit/config.json", "dit/model.safetensors"
    ]
    loaded = WorldPipeline.from_pretrained(tmp_path / "ckpt")
    assert loaded.sampling == pipe.sampling and loaded.dit.cfg == pipe.dit.cfg
    assert np.array_equal(loaded(start_image(), ACTIONS, seed=5), pipe(start_image(), ACTIONS, seed=5))
    pipe.save_pretrained(tmp_path / "ckpt")  # overwriting an existing folder works
    assert not list(tmp_path.glob(".ckpt*"))  # and leaves no temporary folders behind


def test_clear_errors_for_missing_or_corrupt_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        WorldPipeline.from_pretrained(tmp_path / "nothing")
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "dit" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        WorldPipeline.from_pretrained(tmp_path / "ckpt")
    pipe.save_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "dit" / "config.json").write_text(
        json.dumps({"dim": 64, "heads": 2, "latent_size": 4, "depth": 2, "window": 3})
    )
    with pytest.raises(ValueError, match="do not match"):
        WorldPipeline.from_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "dit" / "config.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"config.json:1"):
        WorldPipeline.from_pretrained(tmp_path / "ckpt")


def test_default_path_is_the_shipped_checkpoint():
    from worldmodel.paths import DEFAULT_CHECKPOINT

    assert DEFAULT_CHECKPOINT.name == "wm-default" and DEFAULT_CHECKPOINT.parent.name == "assets"
    if not DEFAULT_CHECKPOINT.is_dir():
        with pytest.raises(FileNotFoundError, match="shipped default"):
            WorldPipeline.from_pretrained()


def test_dit_linear_layers_are_plain_nn_linear():
    pipe = tiny_pipeline()
    linears = [m for m in pipe.dit.modules() if isinstance(m, torch.nn.Linear)]
    assert all(type(m) is torch.nn.Linear for m in linears)
    assert len(linears) >= DIT_CFG.depth * 4  # qkv, proj, two MLP layers per block


def test_quantized_round_trip(tmp_path):
    pipe = tiny_pipeline()
    quant.quantize_(pipe.dit, quant.Int8Config())
    expected = pipe(start_image(), ACTIONS, seed=2)
    pipe.save_pretrained(tmp_path / "q")
    assert (tmp_path / "q" / "dit" / "quant_config.json").is_file()
    loaded = WorldPipeline.from_pretrained(tmp_path / "q")
    assert quant.quant_config_of(loaded.dit) is not None
    assert np.array_equal(loaded(start_image(), ACTIONS, seed=2), expected)
