"""The pygame client, headless (SDL dummy driver), driven through the event queue.

The session is the real simulator (model "simulator"), so what an input should do is
checkable: forward changes the view, mouse motion turns, F12 writes a playable clip.
"""

import argparse
import json

import numpy as np
import pytest

pygame = pytest.importorskip("pygame")

from small_worlds import SeedScene  # noqa: E402 (after the skip when pygame is missing)

from app.play import KEYMAP, PlayApp, PlaySettings, add_arguments, main  # noqa: E402 (after the skip when pygame is missing)
from app.worlds import SIMULATOR, StartPoint, WorldFactory  # noqa: E402 (after the skip when pygame is missing)
from data.actions import NOOP, read_actions  # noqa: E402 (after the skip when pygame is missing)
from data.clips import decode_mp4  # noqa: E402 (after the skip when pygame is missing)


def start_point(seed: int = 3) -> StartPoint:
    scene = SeedScene(seed)
    return StartPoint(scene.name, scene.image(64), scene)


def make_app(tmp_path, side_by_side=False, seed=3):
    settings = PlaySettings(model=SIMULATOR, fps=1000, scale=2, side_by_side=side_by_side, out_dir=tmp_path)
    picks = [start_point(seed), start_point(seed + 1)]
    return PlayApp(settings, WorldFactory("cpu"), start_point(seed), picks)


def key(kind, code):
    pygame.event.post(pygame.event.Event(kind, key=code, mod=0, unicode="", scancode=0))


def diff(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    pygame.quit()


def test_forward_changes_the_view_more_than_standing_still(app):
    app.run(max_ticks=6)
    still = app.frame.copy()
    key(pygame.KEYDOWN, pygame.K_r)  # back to the start
    key(pygame.KEYDOWN, pygame.K_w)
    app.run(max_ticks=6)
    assert app.recording.actions[-1].keys == {"forward"}
    assert diff(app.frame, still) > 2.0
    key(pygame.KEYUP, pygame.K_w)
    app.run(max_ticks=1)
    assert app.recording.actions[-1].keys == frozenset()


def test_mouse_motion_turns_the_camera(app):
    app.run(max_ticks=4)
    before = app.frame.copy()
    yaw = app.session.game.pose.yaw
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, rel=(200, 0), pos=(10, 10), buttons=(0, 0, 0)))
    app.run(max_ticks=1)
    assert app.recording.actions[-1].camera == (0.0, pytest.approx(200 * app.settings.deg_per_pixel))
    assert app.session.game.pose.yaw == pytest.approx(yaw + 30.0)
    assert diff(app.frame, before) > 5.0
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, rel=(0, -100), pos=(10, 10), buttons=(0, 0, 0)))
    app.run(max_ticks=1)
    assert app.recording.actions[-1].camera == (pytest.approx(15.0), 0.0)  # mouse up looks up


def test_keys_and_buttons_map_to_actions(app):
    for code in (pygame.K_SPACE, pygame.K_LSHIFT, pygame.K_LCTRL, pygame.K_a):
        key(pygame.KEYDOWN, code)
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(5, 5)))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=3, pos=(5, 5)))
    app.run(max_ticks=1)
    assert app.recording.actions[-1].keys == {"jump", "sneak", "sprint", "left", "attack", "use"}
    overlay = "\n".join(app.overlay_lines())  # FPS, model, quant, keys held, mouse deltas
    assert "FPS" in overlay and "model simulator" in overlay and "quant fp32" in overlay
    assert "keys  attack jump left sneak sprint use" in overlay and "mouse dx" in overlay
    assert set(KEYMAP.values()) <= {"forward", "back", "left", "right", "jump", "sneak", "sprint"}


def test_escape_frees_the_pointer_and_drops_held_input(app):
    key(pygame.KEYDOWN, pygame.K_w)
    key(pygame.KEYDOWN, pygame.K_ESCAPE)
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, rel=(50, 0), pos=(10, 10), buttons=(0, 0, 0)))
    app.run(max_ticks=1)
    assert not app.captured and app.recording.actions[-1] == NOOP
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(5, 5)))
    app.run(max_ticks=1)
    assert app.captured and app.recording.actions[-1] == NOOP  # the click only took the pointer back
    key(pygame.KEYDOWN, pygame.K_ESCAPE)
    key(pygame.KEYDOWN, pygame.K_ESCAPE)
    app.run(max_ticks=5)
    assert app.quit


def test_pause_reset_and_scene_keys(app):
    first = app.frame.copy()
    key(pygame.KEYDOWN, pygame.K_p)
    app.run(max_ticks=3)
    assert app.paused and app.steps == 0
    key(pygame.KEYDOWN, pygame.K_p)
    key(pygame.KEYDOWN, pygame.K_w)
    app.run(max_ticks=5)
    assert app.steps == 5 and diff(app.frame, first) > 1.0
    key(pygame.KEYDOWN, pygame.K_r)
    app.handle_events()
    assert np.array_equal(app.frame, first) and len(app.recording.frames) == 1
    key(pygame.KEYDOWN, pygame.K_2)
    app.handle_events()
    assert app.start.name == "seed-4" and not np.array_equal(app.frame, first)


def test_f12_saves_a_playable_mp4_and_its_actions(app, tmp_path):
    key(pygame.KEYDOWN, pygame.K_w)
    app.run(max_ticks=5)
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, rel=(40, 0), pos=(10, 10), buttons=(0, 0, 0)))
    app.run(max_ticks=3)
    key(pygame.KEYDOWN, pygame.K_F12)
    key(pygame.KEYDOWN, pygame.K_F12)  # a second save never overwrites the first
    app.handle_events()
    videos = sorted(tmp_path.glob("play-*.mp4"))
    logs = sorted(tmp_path.glob("play-*.jsonl"))
    assert len(videos) == 2 and len(logs) == 2
    frames, fps = decode_mp4(videos[0])
    actions = read_actions(logs[0])
    assert frames.shape == (9, 64, 64, 3) and fps == pytest.approx(20)
    assert len(actions) == len(frames)  # one action line per frame, the last a no-op pad
    assert [a.keys for a in actions[:8]] == [frozenset({"forward"})] * 8
    assert actions[5].camera[1] == pytest.approx(6.0) and actions[-1] == NOOP
    shown = np.stack(list(app.recording.frames))
    # H.264 at 64x64 is lossy, but each decoded frame is still nearest to the frame it encodes.
    assert diff(frames[-1], shown[-1]) < 10.0 and diff(frames[-1], shown[-1]) < diff(frames[-1], shown[0])
    assert all(json.loads(line)["wm"]["keys"] == ["forward"] for line in logs[0].read_text().splitlines()[:8])


def test_side_by_side_runs_the_simulator_on_the_same_actions(tmp_path):
    app = make_app(tmp_path, side_by_side=True)
    try:
        key(pygame.KEYDOWN, pygame.K_w)
        pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, rel=(30, 10), pos=(10, 10), buttons=(0, 0, 0)))
        app.run(max_ticks=4)
        # The "model" here is the simulator too, so both panels must agree exactly.
        assert np.array_equal(app.frame, app.reference_frame)
        assert app.screen.get_width() == 2 * 64 * 2 + 8
        key(pygame.KEYDOWN, pygame.K_F12)
        app.handle_events()
        assert len(list(tmp_path.glob("play-*.sim.mp4"))) == 1
    finally:
        pygame.quit()


def test_the_model_loads_before_the_window_opens(tmp_path, monkeypatch):
    """Opening a window loads GL, after which importing triton crashes (app/display.py):
    the model and its libraries must be in before the window; the simulator alone imports none of them."""
    imported = []
    monkeypatch.setattr("app.display.import_model_stack", lambda: imported.append(pygame.display.get_surface()))
    factory = WorldFactory("cpu")
    windows = []

    def loading(model, quant, start, seed):
        windows.append(pygame.display.get_surface())
        return factory(SIMULATOR, quant, start, seed)  # stands in for a model; opening it is what matters

    start = start_point()
    try:
        PlayApp(PlaySettings(model="some-checkpoint", fps=1000, scale=2, out_dir=tmp_path), loading, start, [start])
        assert windows and all(w is None for w in windows) and imported == [None]
        pygame.quit()
        PlayApp(PlaySettings(model=SIMULATOR, fps=1000, scale=2, out_dir=tmp_path), factory, start, [start])
        assert imported == [None]
    finally:
        pygame.quit()


def test_q_switches_the_quant_method_and_restarts(tmp_path):
    factory = WorldFactory("cpu")
    asked = []

    def loading(model, quant, start, seed):
        asked.append(quant)
        return factory(SIMULATOR, quant, start, seed)  # stands in for the model in each quant method

    start = start_point()
    try:
        app = PlayApp(PlaySettings(model="some-checkpoint", fps=1000, scale=2, out_dir=tmp_path), loading, start, [start])
        for _ in range(3):
            app.tick()
        first = app.session
        asked.clear()
        key(pygame.KEYDOWN, pygame.K_q)
        app.tick()
        assert app.settings.quant == "int8" and asked == ["int8"] and app.session is not first
        assert "int8" in pygame.display.get_caption()[0]
        for expected in ("lut4", "lut3", "fp32"):
            key(pygame.KEYDOWN, pygame.K_q)
            app.tick()
            assert app.settings.quant == expected
    finally:
        pygame.quit()


def test_bad_image_gets_a_clear_message(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert main(parser.parse_args(["--model", SIMULATOR, "--image", str(bad), "--out", str(tmp_path)])) == 2
    assert "notes.png: not an image" in capsys.readouterr().err


def test_settings_are_checked():
    with pytest.raises(ValueError, match="quant"):
        PlaySettings(quant="int2")
    with pytest.raises(ValueError, match="deg_per_pixel"):
        PlaySettings(deg_per_pixel=0)


@pytest.mark.slow
def test_mouse_motion_turns_the_shipped_model_the_right_way(tmp_path):
    """The same event path, driving the shipped model: the turn read back from its frames follows the mouse."""
    from data.scenes import get_scene
    from eval.pose import camera_turn
    from worldmodel.paths import DEFAULT_CHECKPOINT

    if not (DEFAULT_CHECKPOINT / "config.json").is_file():
        pytest.skip(f"{DEFAULT_CHECKPOINT}: no shipped default checkpoint")
    scene = get_scene("forest_0")
    start = StartPoint(scene.name, scene.image(64), scene)
    app = PlayApp(PlaySettings(fps=1000, scale=2, out_dir=tmp_path), WorldFactory("cpu"), start, [start])
    try:
        turns = {}
        for name, dx in (("right", 40), ("left", -40)):  # 6 degrees of yaw a frame
            key(pygame.KEYDOWN, pygame.K_r)
            app.run(max_ticks=1)
            yaws = []
            for _ in range(4):
                before = app.frame.copy()
                pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, rel=(dx, 0), pos=(10, 10), buttons=(0, 0, 0)))
                app.run(max_ticks=1)
                assert app.recording.actions[-1].camera == (0.0, pytest.approx(dx * app.settings.deg_per_pixel))
                yaws.append(camera_turn(before, app.frame)[1])
            turns[name] = float(np.nanmean(yaws))
        assert turns["right"] > 2.0 and turns["left"] < -2.0, turns
    finally:
        pygame.quit()
