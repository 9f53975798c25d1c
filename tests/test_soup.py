"""`worldmodel soup`: the DiT's weights averaged between a fine-tune and its start, the rest of the start kept."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from app.cli import main as cli
from worldmodel.autoencoder import FrameAutoencoder
from worldmodel.config import PRESETS, SamplingConfig
from worldmodel.dit import CausalDiT
from worldmodel.pipeline import WorldPipeline
from worldmodel.soup import soup_dits, soup_pipelines

torch.set_num_threads(1)
AE_CFG, TINY = PRESETS["wm-tiny"]
DIT_CFG = dataclasses.replace(TINY, egomotion=True, view_fov=70.0)  # the base input needs the world memory's depth


def randomised(cfg, seed: int) -> CausalDiT:
    torch.manual_seed(seed)
    dit = CausalDiT(cfg)
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return dit.eval()


def start_and_tuned() -> tuple[CausalDiT, CausalDiT]:
    """A start DiT and a 'fine-tune' of it that gained the base input (a weight the start does not have)."""
    return randomised(DIT_CFG, 0), randomised(dataclasses.replace(DIT_CFG, base_input=True), 1)


def test_soup_mixes_every_weight_and_counts_new_ones_as_zero():
    start, tuned = start_and_tuned()
    soup = soup_dits(start, tuned, 0.25)
    assert soup.cfg == tuned.cfg
    a, b, s = start.state_dict(), tuned.state_dict(), soup.state_dict()
    for name in b:
        expected = 0.25 * b[name] + (0.75 * a[name] if name in a else 0.0)
        assert torch.allclose(s[name], expected, atol=1e-6), name
    assert any(name not in a for name in b)  # the base input's weights were there to test


def test_soup_ends_are_the_two_models():
    start, tuned = start_and_tuned()
    one = soup_dits(start, tuned, 1.0).state_dict()
    assert all(torch.equal(one[k], v) for k, v in tuned.state_dict().items())
    zero = soup_dits(start, tuned, 0.0).state_dict()
    assert all(torch.equal(zero[k], v) for k, v in start.state_dict().items())
    assert all(float(zero[k].abs().max()) == 0.0 for k in zero if k not in start.state_dict())


def test_soup_refuses_other_models_and_bad_alpha():
    start, tuned = start_and_tuned()
    with pytest.raises(ValueError, match="within"):
        soup_dits(start, tuned, 1.5)
    other = randomised(dataclasses.replace(DIT_CFG, dim=DIT_CFG.dim * 2), 2)
    with pytest.raises(ValueError, match="differ"):
        soup_dits(start, other, 0.5)


def test_soup_command_writes_a_pipeline_with_the_starts_other_parts(tmp_path):
    start, tuned = start_and_tuned()
    ae = FrameAutoencoder(AE_CFG)
    WorldPipeline(ae, start, SamplingConfig(steps=1, context_sigma=0.3)).save_pretrained(tmp_path / "start")
    WorldPipeline(ae, tuned, SamplingConfig(steps=2, context_sigma=0.1)).save_pretrained(tmp_path / "tuned")
    args = ["soup", "--start", str(tmp_path / "start"), "--tuned", str(tmp_path / "tuned"), "--alpha", "0.5"]
    assert cli([*args, "--out", str(tmp_path / "soup")]) == 0
    soup = WorldPipeline.from_pretrained(tmp_path / "soup")
    assert soup.sampling == SamplingConfig(steps=1, context_sigma=0.3)  # the start's
    assert soup.dit.cfg.base_input
    frames = soup(np.zeros((16, 16, 3), np.uint8), [], seed=0)
    assert frames.shape == (1, 16, 16, 3)
    # An existing output is not replaced without --force.
    assert cli([*args, "--out", str(tmp_path / "soup")]) == 2
    assert cli([*args, "--out", str(tmp_path / "soup"), "--force"]) == 0


def test_soup_refuses_pipelines_with_different_autoencoders(tmp_path):
    start, tuned = start_and_tuned()
    torch.manual_seed(3)
    WorldPipeline(FrameAutoencoder(AE_CFG), start).save_pretrained(tmp_path / "start")
    other_ae = FrameAutoencoder(AE_CFG)
    with torch.no_grad():
        next(other_ae.parameters()).add_(1.0)
    WorldPipeline(other_ae, tuned).save_pretrained(tmp_path / "tuned")
    with pytest.raises(ValueError, match="different autoencoders"):
        soup_pipelines(tmp_path / "start", tmp_path / "tuned", 0.5, tmp_path / "soup")
    assert not (tmp_path / "soup").exists()
