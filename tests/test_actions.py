"""The action converters: round trips, sign conventions, file reading and its errors."""

import json

import numpy as np
import pytest

from data.actions import (
    CAMERA_DEG_PER_COUNT,
    KEYS,
    MATRIX_GAME_KEYS,
    Action,
    ActionFormatError,
    from_matrix_game,
    from_minerl,
    from_vpt_line,
    read_actions,
    to_matrix_game,
    to_minerl,
    to_vpt_line,
    write_actions,
)
from data.physics import Pose


def random_actions(n: int, seed: int = 0, keys: tuple[str, ...] = KEYS) -> list[Action]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        held = {k for k in keys if rng.random() < 0.3}
        out.append(Action(held, (float(rng.uniform(-20, 20)), float(rng.uniform(-30, 30)))))
    return out + [Action(), Action(set(keys), (180.0, -180.0))]


def test_minerl_round_trip_and_sign_convention():
    for act in random_actions(50):
        assert from_minerl(to_minerl(act)) == act
    d = to_minerl(Action({"forward", "attack"}, (5.0, -3.0)))  # look up 5, left 3
    assert d["camera"] == [-5.0, -3.0]  # MineRL: positive camera[0] looks down
    assert d["forward"] == 1 and d["attack"] == 1 and d["back"] == 0 and d["hotbar.1"] == 0


def test_minerl_reads_gameworld_style_dicts():
    # GameWorld Score's "camera_up" files hold camera [-5, 0] and VPT's extra buttons.
    d = {"ESC": 0, "forward": 0, "jump": 1, "camera": [-5, 0], "inventory": 0, "pickItem": 0}
    assert from_minerl(d) == Action({"jump"}, (5.0, 0.0))
    assert from_minerl({"camera": np.array([1.5, 2.0])}) == Action(camera=(-1.5, 2.0))


@pytest.mark.parametrize(
    "bad, match",
    [({"forward": 2}, "0 or 1"), ({"forward": "yes"}, "0 or 1"), ({"camera": [1]}, "pitch, yaw"),
     ({"camera": [float("nan"), 0]}, "finite"), ({"camera": [0, 400]}, "exceeds"), ({"camera": ["a", 0]}, "number"),
     ([1, 2], "JSON object")],
)
def test_minerl_rejects_bad_input(bad, match):
    with pytest.raises(ActionFormatError, match=match):
        from_minerl(bad)


def test_vpt_line_round_trip_exact_and_mouse_counts():
    pose = Pose(1.5, 70.0, -3.25, 90.0, 10.0)
    for act in random_actions(50, seed=1):
        line = json.loads(json.dumps(to_vpt_line(act, pose, tick=3)))
        assert from_vpt_line(line) == act
    line = to_vpt_line(Action({"forward", "sneak", "sprint", "use"}, (-3.0, 6.0)), pose)
    assert line["mouse"]["dx"] == pytest.approx(6.0 / CAMERA_DEG_PER_COUNT)
    assert line["mouse"]["dy"] == pytest.approx(20.0)  # looking down 3 degrees = mouse moved down 20 counts
    assert line["mouse"]["buttons"] == [1]
    assert set(line["keyboard"]["keys"]) == {"key.keyboard.w", "key.keyboard.left.shift", "key.keyboard.left.control"}
    assert line["yaw"] == -90.0 and line["pitch"] == -10.0  # Minecraft's angles: facing east, looking up
    assert (line["xpos"], line["ypos"], line["zpos"]) == (1.5, 70.0, -3.25)
    assert line["wm"]["pose"]["yaw"] == 90.0


def test_vpt_line_without_our_fields_reads_the_mouse_and_ignores_other_keys():
    line = {
        "mouse": {"dx": 20.0, "dy": -40.0, "buttons": [0, 2]},
        "keyboard": {"keys": ["key.keyboard.w", "key.keyboard.e", "key.keyboard.1", "key.keyboard.space"]},
        "isGuiOpen": False,
    }
    act = from_vpt_line(line)
    assert act.keys == {"forward", "jump", "attack"}
    assert act.camera == pytest.approx((6.0, 3.0))  # dy < 0: mouse moved up, look up


def test_vpt_new_keys_follow_the_previous_action():
    line = to_vpt_line(Action({"forward", "attack"}), prev=Action({"forward"}))
    assert line["keyboard"]["newKeys"] == [] and line["mouse"]["newButtons"] == [0]


@pytest.mark.parametrize(
    "bad, match",
    [({"mouse": {}}, "keyboard"), ({"mouse": {"dx": 5000.0}, "keyboard": {"keys": []}}, "exceeds"),
     ({"mouse": {"dx": "1"}, "keyboard": {"keys": []}}, "number"),
     ({"mouse": {}, "keyboard": {"keys": "key.keyboard.w"}}, "list of strings"),
     ({"mouse": {"buttons": ["left"]}, "keyboard": {"keys": []}}, "integers")],
)
def test_vpt_line_rejects_bad_input(bad, match):
    with pytest.raises(ActionFormatError, match=match):
        from_vpt_line(bad)


def test_unknown_key_names_in_an_action_are_an_error():
    with pytest.raises(ValueError, match="unknown key"):
        Action({"forward", "inventory"})


def test_matrix_game_round_trip():
    torch = pytest.importorskip("torch")
    acts = random_actions(40, seed=2, keys=MATRIX_GAME_KEYS)
    keyboard, mouse = to_matrix_game(acts)
    assert keyboard.dtype == torch.float32 and keyboard.shape == (len(acts), 6) and mouse.shape == (len(acts), 2)
    back = from_matrix_game(keyboard, mouse)
    for a, b in zip(acts, back):
        assert a.keys == b.keys and a.camera == pytest.approx(b.camera, abs=1e-4)
    # Matrix-Game's own benchmark: camera_up is mouse [+0.05, 0], i.e. 5 degrees up per frame.
    up = from_matrix_game(np.zeros((1, 6)), np.array([[0.05, 0.0]], np.float32))[0]
    assert up.camera == (5.0, 0.0)
    _, mouse = to_matrix_game([Action(camera=(5.0, -5.0))])
    assert mouse[0].tolist() == pytest.approx([0.05, -0.05])


def test_matrix_game_rejects_bad_shapes():
    with pytest.raises(ActionFormatError, match="keyboard"):
        from_matrix_game(np.zeros((3, 9)), np.zeros((3, 2)))
    with pytest.raises(ActionFormatError, match="mouse"):
        from_matrix_game(np.zeros((3, 6)), np.zeros((2, 2)))
    with pytest.raises(ActionFormatError, match="frame 1"):
        from_matrix_game(np.zeros((2, 6)), np.array([[0.0, 0.0], [np.nan, 0.0]]))


def test_write_then_read_vpt_jsonl(tmp_path):
    acts = random_actions(30, seed=3)
    poses = [Pose(i, 64, -i, i * 10.0, 0.0) for i in range(len(acts))]
    path = tmp_path / "actions.jsonl"
    write_actions(path, acts, poses)
    assert read_actions(path) == acts
    lines = path.read_text().splitlines()
    assert len(lines) == len(acts) and json.loads(lines[4])["tick"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind
    with pytest.raises(ValueError, match="poses"):
        write_actions(path, acts, poses[:-1])


def test_read_minerl_jsonl_and_json_list(tmp_path):
    acts = random_actions(10, seed=4)
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps(to_minerl(a)) for a in acts) + "\n\n")
    assert read_actions(jsonl) == acts
    listed = tmp_path / "a.json"
    listed.write_text(json.dumps([to_minerl(a) for a in acts], indent=1))
    assert read_actions(listed) == acts


@pytest.mark.parametrize(
    "text, match",
    [('{"forward": 1}\n{"forward": \n', r"a\.jsonl:2: bad JSON"),
     ('{"forward": 1}\n{"camera": [NaN, 0]}\n', r"a\.jsonl:2: NaN"),
     ('{"forward": 1}\n{"camera": [0, 720]}\n', r"a\.jsonl:2: .*exceeds"),
     ('{"forward": 1}\n\n{"forward": 0}\n', r"a\.jsonl:2: empty line"),
     ('{"forward": 1}\n{"forward": "no"}\n', r"a\.jsonl:2: .*0 or 1"),
     ('{"forward": 1}\n{"mouse": {}, "keyboard": {"keys": []}}\n', r"a\.jsonl:2: a vpt record"),
     ('{"forward": 1}\n[1, 2]\n', r"a\.jsonl:2: .*JSON object")],
)
def test_read_errors_name_the_file_and_line(tmp_path, text, match):
    path = tmp_path / "a.jsonl"
    path.write_text(text)
    with pytest.raises(ActionFormatError, match=match):
        read_actions(path)


def test_read_json_list_errors_name_the_item(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"forward": 1}, {"camera": [0, 1000]}]))
    with pytest.raises(ActionFormatError, match=r"a\.json: item 1: .*exceeds"):
        read_actions(path)


# ----- the benchmark action set ------------------------------------------------------------


def test_benchmark_has_gameworlds_76_actions_of_65_frames():
    from data.benchmark_actions import FRAMES, benchmark_actions

    seqs = benchmark_actions()
    assert len(seqs) == 76 and FRAMES == 65
    assert all(len(s) == 65 for s in seqs.values())
    singles = [n for n in seqs if n in ("forward", "back", "left", "right", "jump", "attack")]
    cameras = [n for n in seqs if n.startswith("camera_")]
    with_camera = [n for n in seqs if "_camera_" in n]
    pairs = [n for n in seqs if n not in singles + cameras + with_camera + ["empty"]]
    assert (len(singles), len(cameras), len(pairs), len(with_camera)) == (6, 8, 13, 48)
    assert seqs["empty"] == [Action()] * 65
    assert seqs["camera_ur"][0] == Action(camera=(5.0, 5.0))
    assert seqs["jump_camera_dl"][10] == Action({"jump"}, (-5.0, -5.0))
    attack = [a.pressed("attack") for a in seqs["forward_attack"]]
    assert attack[:8] == [False] * 8 and attack[8:16] == [True] * 8 and attack[16] is False
    assert all(a.pressed("forward") for a in seqs["forward_attack"])


def test_benchmark_minerl_files_match_gameworlds(tmp_path):
    from data.benchmark_actions import benchmark_actions, write_minerl_files

    paths = write_minerl_files(tmp_path)
    assert len(paths) == 76
    lines = (tmp_path / "camera_up.jsonl").read_text().splitlines()
    assert len(lines) == 65 and json.loads(lines[0])["camera"] == [-5.0, 0.0]  # MineRL: up is negative
    assert read_actions(tmp_path / "right_jump.jsonl") == benchmark_actions()["right_jump"]
