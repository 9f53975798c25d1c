"""worldmodel/bench.py and worldmodel/frame_profile.py on a tiny untrained pipeline: the interleaved rounds' rows,
and a profile whose parts add up to the frame and that leaves the model and session as it found them."""

from __future__ import annotations

import pytest
import torch

from data.actions import Action
from worldmodel import bench
from worldmodel.frame_profile import LINEARS, PARTS, REST, profile_frames

torch.set_num_threads(1)


def tiny_pipeline(method: str = "fp32"):
    from worldmodel.autoencoder import FrameAutoencoder
    from worldmodel.config import PRESETS, AutoencoderConfig
    from worldmodel.dit import CausalDiT
    from worldmodel.pipeline import WorldPipeline

    torch.manual_seed(0)
    ae_cfg, dit_cfg = PRESETS["wm-default"]
    autoencoder = FrameAutoencoder(AutoencoderConfig(**{**ae_cfg.__dict__, "encoder_channels": 8, "decoder_channels": 8}))
    dit = CausalDiT(dit_cfg.__class__(**{**dit_cfg.__dict__, "dim": 64, "depth": 1, "heads": 2}))
    pipe = WorldPipeline(autoencoder, dit)
    return pipe if method == "fp32" else pipe.quantize(method)


def test_profile_parts_add_up_and_leave_nothing_behind():
    pipe = tiny_pipeline()
    session = pipe.new_session(seed=0)
    session.start(torch.zeros(pipe.image_size, pipe.image_size, 3, dtype=torch.uint8).numpy())
    acts = [Action(frozenset({"forward"}), (0.0, 2.0))] * 3
    parts = profile_frames(pipe, session, acts)
    assert list(parts) == PARTS and all(v >= 0 for v in parts.values())
    assert parts[LINEARS] > 0 and parts[REST] > 0
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in pipe.dit.modules())
    assert "encode" not in vars(pipe.autoencoder) and all("render" not in vars(m) for m in session.memories)
    import worldmodel.schedule
    import worldmodel.session

    assert worldmodel.session.move_view is worldmodel.schedule.move_view


def test_stream_bench_rows(monkeypatch):
    monkeypatch.setattr(bench, "_pipeline", tiny_pipeline)
    monkeypatch.setattr(bench, "QUICK_METHODS", ["fp32", "int8"])
    rows = bench.run(quick=True)
    whole = [r for r in rows if r["part"] == "whole frame"]
    assert [r["method"] for r in whole] == ["fp32", "int8"]
    assert whole[0]["speed_vs_fp32"] == 1.0 and whole[1]["speed_vs_fp32"] > 0
    assert whole[0]["quantized_share"] == 0.0 and whole[1]["quantized_share"] == 1.0
    assert all(r["cpu"] for r in rows)
    for method in ("fp32", "int8"):
        shares = [r["share"] for r in rows if r["method"] == method and r["part"] != "whole frame"]
        assert len(shares) == len(PARTS) and sum(shares) == pytest.approx(1.0)
