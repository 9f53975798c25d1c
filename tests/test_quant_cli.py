"""app/quantize.py: `worldmodel quantize` on a tiny pipeline checkpoint."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from app import quantize
from quant import Int8Linear, LutLinear, quant_config_of
from worldmodel import pipeline

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from worldmodel.autoencoder import FrameAutoencoder
    from worldmodel.config import AutoencoderConfig, DiTConfig
    from worldmodel.dit import CausalDiT

    torch.manual_seed(0)
    autoencoder = FrameAutoencoder(AutoencoderConfig(image_size=16, encoder_channels=8, decoder_channels=8))
    dit = CausalDiT(DiTConfig(latent_size=4, dim=128, depth=1, heads=2))
    path = tmp_path_factory.mktemp("ckpt") / "float"
    pipeline.WorldPipeline(autoencoder, dit).save_pretrained(path)
    return path


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    quantize.add_arguments(parser)
    return quantize.main(parser.parse_args(list(argv)))


@pytest.mark.parametrize("method,layer_type", [("int8", Int8Linear), ("lut4", LutLinear)])
def test_quantize_a_checkpoint_and_load_it_back(tiny_checkpoint, tmp_path, method, layer_type, capsys):
    out = tmp_path / method
    assert run_cli(str(tiny_checkpoint), str(out), "--method", method) == 0
    assert "% of the DiT's linear weights" in capsys.readouterr().out  # the quantized share is printed
    assert (out / "dit" / "quant_config.json").is_file()
    pipe = pipeline.WorldPipeline.from_pretrained(out)
    assert isinstance(pipe.dit.blocks[0].attn.qkv, layer_type)
    assert quant_config_of(pipe.dit) is not None
    from data.actions import Action

    frames = pipe(np.zeros((16, 16, 3), np.uint8), [Action()])
    assert frames.shape == (2, 16, 16, 3)


def test_refuses_to_overwrite_without_force(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "exists"
    out.mkdir()
    assert run_cli(str(tiny_checkpoint), str(out), "--method", "int8") == 2
    assert "--force" in capsys.readouterr().err


def test_rejects_options_of_another_method(tiny_checkpoint, tmp_path, capsys):
    assert run_cli(str(tiny_checkpoint), str(tmp_path / "x"), "--method", "int8", "--group-size", "64") == 2
    assert "lut" in capsys.readouterr().err
