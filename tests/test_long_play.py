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
    rows = long_play_scenes_markdown({"forest_0": r}, "From forest")
    assert rows[0].startswith("From forest") and any(row.startswith("| forest_0 | ") for row in rows)


def tiny_walking_pipeline(memory: bool = True):
    import dataclasses

    import torch

    from worldmodel.autoencoder import FrameAutoencoder
    from worldmodel.config import PRESETS, SamplingConfig
    from worldmodel.dit import CausalDiT
    from worldmodel.pipeline import WorldPipeline

    torch.manual_seed(0)
    ae_cfg, dit_cfg = PRESETS["wm-tiny"]
    dit_cfg = dataclasses.replace(dit_cfg, view_fov=70.0, egomotion=True, depth_channels=8)
    return WorldPipeline(FrameAutoencoder(ae_cfg), CausalDiT(dit_cfg), SamplingConfig(steps=1, memory=memory))


def test_the_true_geometry_session_places_the_memory_by_the_simulators_poses_and_depths():
    import pytest
    import torch

    from data.actions import Action
    from data.scenes import get_scene
    from eval.measure.true_geometry import TrueGeometrySession, simulator_geometry

    pipe = tiny_walking_pipeline()
    size = pipe.image_size
    # Walking into a step up and jumping: the simulator's eye climbs, the model's flat-ground walk would not.
    acts = [Action(frozenset({"forward", "jump"}))] * 6 + [Action(camera=(5.0, 20.0))] * 3
    frames, views, depths = simulator_geometry(get_scene("hills_0").game(size), acts, size)
    assert frames.shape == (10, size, size, 3) and depths.shape == (10, size, size) and len(views) == 10
    assert max(v.eye[1] for v in views) > views[0].eye[1] + 0.5  # the jump is in the poses
    session = TrueGeometrySession(pipe.dit, pipe.autoencoder, pipe.sampling, views=views, inv_depths=depths)
    session.start(frames[0])
    for t, act in enumerate(acts, start=1):
        session.step(act)
        pose = session.walks[0].pose()
        assert pose.eye == tuple(float(e) for e in views[t].eye) and (pose.yaw, pose.pitch) == (views[t].yaw, views[t].pitch)
    # The depth the frames shown join the memory at is the simulator's, not the depth head's.
    with torch.no_grad():
        np.testing.assert_array_equal(session._pixel_depth(session.pending)[0], depths[len(acts)])
    with pytest.raises(ValueError, match="steps past"):
        session.step(acts[0])


def test_the_true_geometry_needs_the_memory_and_a_start_without_context():
    import pytest

    from data.actions import NOOP
    from eval.measure.true_geometry import TrueGeometrySession

    pipe = tiny_walking_pipeline(memory=False)
    with pytest.raises(ValueError, match="memory"):
        TrueGeometrySession(pipe.dit, pipe.autoencoder, pipe.sampling, views=[], inv_depths=np.zeros((1, 16, 16)))
    pipe = tiny_walking_pipeline()
    session = TrueGeometrySession(pipe.dit, pipe.autoencoder, pipe.sampling, views=[], inv_depths=np.zeros((3, 16, 16)))
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="context"):
        session.start(frames[0], context=(frames[:1], [NOOP]))


def test_long_play_with_the_true_geometry(tmp_path):
    r = long_play(tiny_walking_pipeline(), 100, tmp_path / "strip.png", plays=2, scene_name="plain_1", true_geometry=True)
    assert r["true_geometry"] and len(r["segments"]) == 1 and (tmp_path / "strip.png").is_file()


def test_the_simulators_steps_read_as_the_walk_gives_them_on_flat_ground():
    from data.actions import Action, stack
    from data.scenes import get_scene
    from eval.measure.true_geometry import simulator_geometry, true_motion
    from worldmodel.egomotion import EgoMotion

    acts = [Action(frozenset({"forward"}), (0.0, 5.0))] * 6 + [Action(frozenset({"forward", "sprint"}), (2.0, -3.0))] * 4
    _, views, _ = simulator_geometry(get_scene("plain_0").game(16), acts, 16)
    assert all(v.eye[1] == views[0].eye[1] for v in views)  # flat: the walk's world
    walk = EgoMotion(pitch=views[0].pitch)
    keys, camera = stack(acts)
    for t in range(len(acts)):
        np.testing.assert_allclose(true_motion(views[t], views[t + 1]), walk.step(keys[t], camera[t]), atol=1e-4)
