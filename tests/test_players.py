"""Scripted players: deterministic, varied, human-like or unpredictable, within mouse limits."""

import math

import numpy as np
import pytest

from data.actions import KEYS, Action
from data.game import Game
from data.players import PLAYERS, Chaotic, HumanLike, Mixed, Replay, angle_diff, make_player

TICKS = 1500


def play(name: str, seed: int, ticks: int = TICKS, biome: str = "plain") -> tuple[list[Action], list]:
    """Run a player on physics only (no rendering, to stay fast)."""
    game = Game(seed, biome)
    player = make_player(name, seed)
    acts, poses = [], []
    for _ in range(ticks):
        act = player.act(game)
        game.player.step(game.world, act)
        acts.append(act)
        poses.append(game.pose)
    return acts, poses


def key_change_rate(acts: list[Action]) -> float:
    return sum(a.keys != b.keys for a, b in zip(acts, acts[1:])) / (len(acts) - 1)


@pytest.fixture(scope="module")
def human():
    return play("human", 0)


@pytest.fixture(scope="module")
def chaotic():
    return play("chaotic", 0)


def test_same_seed_same_actions_and_different_seeds_differ():
    a, _ = play("mixed", 5, ticks=300)
    b, _ = play("mixed", 5, ticks=300)
    c, _ = play("mixed", 6, ticks=300)
    assert a == b and a != c


def test_human_like_play_is_persistent_smooth_and_goes_places(human):
    acts, poses = human
    assert key_change_rate(acts) < 0.15  # keys are held for many frames
    camera = np.array([a.camera for a in acts])
    assert np.abs(camera).max() <= 11.0
    assert np.abs(np.diff(camera, axis=0)).mean() < 1.5  # the mouse moves smoothly
    path = sum(math.dist((p.x, p.z), (q.x, q.z)) for p, q in zip(poses, poses[1:]))
    assert path > 100 and math.dist((poses[0].x, poses[0].z), (poses[-1].x, poses[-1].z)) > 10
    assert max(p.y for p in poses) - min(p.y for p in poses) > 0.9  # it climbed or jumped something


def test_human_like_uses_every_key():
    acts, _ = play("human", 1, ticks=4000, biome="forest")
    used = {k for a in acts for k in a.keys}
    assert used == set(KEYS)


def test_human_like_turns_away_and_comes_back(human):
    _, poses = human
    yaws = np.array([p.yaw for p in poses])
    found = False
    for t0 in range(0, len(yaws) - 150, 5):
        window = yaws[t0 : t0 + 150]
        away = np.abs([angle_diff(y, yaws[t0]) for y in window])
        if away.max() > 100:
            turned = int(np.argmax(away))
            if (away[turned:] < 5).any():
                found = True
                break
    assert found


def test_chaotic_play_changes_keys_often_and_turns_hard(chaotic):
    acts, poses = chaotic
    assert key_change_rate(acts) > 0.25
    camera = np.array([a.camera for a in acts])
    assert np.abs(camera[:, 1]).max() <= 15.0 and np.abs(camera[:, 0]).max() <= 10.0
    assert np.abs(camera[:, 1]).mean() > 4.0
    # Successive mouse moves are independent: no correlation to exploit.
    assert abs(np.corrcoef(camera[:-1, 1], camera[1:, 1])[0, 1]) < 0.1
    assert max(abs(p.pitch) for p in poses) < 70  # kept away from the clamp, where turns would do nothing


def test_mixed_switches_between_styles():
    acts, _ = play("mixed", 2, ticks=2000)
    rates = [key_change_rate(acts[i : i + 100]) for i in range(0, 2000, 100)]
    assert min(rates) < 0.1 and max(rates) > 0.2


def test_make_player_and_replay():
    assert set(PLAYERS) == {"human", "chaotic", "mixed"}
    assert isinstance(make_player("human", 1), HumanLike)
    assert isinstance(make_player("chaotic", 1), Chaotic)
    assert isinstance(make_player("mixed", 1), Mixed)
    with pytest.raises(ValueError, match="unknown player"):
        make_player("pro", 1)
    replay = Replay([Action({"jump"})])
    assert replay.act(None) == Action({"jump"}) and replay.act(None) == Action()
