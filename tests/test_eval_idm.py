"""The inverse dynamics model: shapes, checkpoint round trip, the training players, and the shipped model."""

import json

import numpy as np
import pytest
import torch

from eval import labels
from eval.idm import card, config, data, train
from eval.idm.model import DEFAULT_PATH, IDMConfig, InverseDynamicsModel, embed_frames, predict


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_model_shapes_and_embedding_is_non_negative():
    model = InverseDynamicsModel(IDMConfig()).eval()
    frames = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    pred = predict(model, frames)
    assert pred.fb.shape == (4,) and pred.keys.shape == (4, len(labels.BINARY_KEYS)) and pred.camera.shape == (4, 2)
    emb = embed_frames(model, frames)
    assert emb.shape == (5, 32 * 16) and emb.min() >= 0
    assert len(pred.to_actions()) == 4
    with pytest.raises(ValueError, match="2 frames"):
        predict(model, frames[:1])


def test_frames_of_another_size_are_resized():
    model = InverseDynamicsModel(IDMConfig()).eval()
    assert predict(model, np.zeros((3, 96, 96, 3), np.uint8)).fb.shape == (2,)


def test_config_is_validated():
    with pytest.raises(ValueError, match="size"):
        IDMConfig(size=32)
    with pytest.raises(ValueError, match="length"):
        config.IDMTrainConfig(random_length=2)
    with pytest.raises(ValueError, match="benchmark_share"):
        config.IDMTrainConfig(benchmark_share=1.0)


def test_save_and_load_round_trip(tmp_path):
    model = InverseDynamicsModel(IDMConfig()).eval()
    model.save_pretrained(tmp_path, {"training": {"note": "test"}})
    loaded = InverseDynamicsModel.from_pretrained(tmp_path)
    frames = np.random.default_rng(1).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    assert np.array_equal(predict(model, frames).fb, predict(loaded, frames).fb)
    assert json.loads((tmp_path / "config.json").read_text())["training"]["note"] == "test"
    with pytest.raises(FileNotFoundError, match="train one"):
        InverseDynamicsModel.from_pretrained(tmp_path / "missing")


def test_random_player_keeps_the_view_off_the_pitch_limits():
    acts = data.random_actions(np.random.default_rng(3), 2000)
    pitch = np.cumsum([a.camera[0] for a in acts])
    assert data.PITCH_RANGE[0] <= pitch.min() and pitch.max() <= data.PITCH_RANGE[1]
    assert len({a.keys for a in acts}) > 20  # many key combinations


def test_benchmark_like_player_holds_one_action():
    acts = data.benchmark_like_actions(np.random.default_rng(5), 65)
    assert len({a.camera for a in acts}) == 1
    assert len({a.keys - {"attack"} for a in acts}) == 1


def test_shipped_idm_reads_true_clips():
    if not (DEFAULT_PATH / "model.safetensors").is_file():
        pytest.skip("no trained IDM in assets/idm")
    model = InverseDynamicsModel.from_pretrained()
    first = config.IDMTrainConfig().test_seed_offset + 50_900  # unseen worlds, benchmark-like held actions
    clips = data.simulated_clips(list(range(first, first + 3)), 65, "benchmark", progress=False)
    scores = train.accuracy(model, clips)
    assert scores["keyboard"] > 0.85 and scores["mouse"] > 0.9


def test_key_camera_share_sets_how_many_clips_hold_a_key_while_turning():
    def key_and_turn(share: float, seed: int) -> bool:
        acts = data.benchmark_like_actions(np.random.default_rng(seed), 16, share)  # attack is held on 8 of the 16
        return any(a.keys for a in acts) and acts[0].camera != (0.0, 0.0)

    assert all(key_and_turn(1.0, s) for s in range(30))
    assert not any(key_and_turn(0.0, s) for s in range(30))
    with pytest.raises(ValueError, match="key_camera_share"):
        config.IDMTrainConfig(key_camera_share=1.5)


def test_retrain_command_lists_a_chain_of_runs():
    first = {"trained_on": "a", "steps": 1, "minutes": 20.0, "train_config": {"minutes": 20.0, "seed": 0}}
    second = {"trained_on": "b", "steps": 2, "minutes": 30.0, "train_config": {"minutes": 30.0, "seed": 1, "lr": 1e-3}}
    assert card.retrain_command(first["train_config"], "assets/idm") == "python -m eval.idm train --out assets/idm --threads 1"
    _, commands = card._training_lines({**second, "earlier_runs": [first]})
    assert "--out runs/idm-stage1 --threads 1" in commands
    assert "--minutes 30 --lr 0.001 --seed 1 --init runs/idm-stage1" in commands
