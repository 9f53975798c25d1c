"""The long play's layout error: where sky and ground sit, row by row, against the simulator's frame."""

import numpy as np

from eval.measure.long_play import layout_error, long_play


def test_layout_error_sees_sky_where_ground_should_be_but_not_a_turn():
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[:30] = (120, 170, 250)  # sky
    frame[30:] = (60, 150, 40)  # grass
    frame[30:, 20:28] = (90, 60, 30)  # a tree trunk
    assert layout_error(frame, frame) == 0.0
    turned = np.roll(frame, 17, axis=1)  # a turn moves things sideways: the rows keep their colours
    assert layout_error(turned, frame) < 1.0
    upside_down = frame[::-1]
    assert layout_error(upside_down, frame) > 40.0


def test_long_play_from_another_scene_reports_edges_and_layout(tmp_path):
    import torch

    from eval.measure.report import long_play_scenes_markdown
    from worldmodel.autoencoder import FrameAutoencoder
    from worldmodel.config import PRESETS, SamplingConfig
    from worldmodel.dit import CausalDiT
    from worldmodel.pipeline import WorldPipeline

    torch.manual_seed(0)
    ae_cfg, dit_cfg = PRESETS["wm-tiny"]
    pipe = WorldPipeline(FrameAutoencoder(ae_cfg), CausalDiT(dit_cfg), SamplingConfig(steps=1))
    r = long_play(pipe, 200, tmp_path / "strip.png", plays=2, scene_name="forest_0")
    assert r["start_scene"] == "forest_0" and len(r["segments"]) == 2 and (tmp_path / "strip.png").is_file()
    for g in r["segments"]:
        assert g["layout_error"] >= 0.0 and g["layout_error_frozen_start"] >= 0.0
    rows = long_play_scenes_markdown({"forest_0": r})
    assert any(row.startswith("| forest_0 | ") for row in rows)
