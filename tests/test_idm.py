"""The IDM's training data and its change-only pair input (eval/idm/); the rest is in test_eval_idm.py."""

import json

import numpy as np
import pytest
import torch

from eval.idm import config, data, train
from eval.idm.model import IDMConfig, InverseDynamicsModel, frames_to_tensor


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_a_still_video_reads_the_same_in_every_world():
    # The pair network sees only the change between frames, so the look of a still scene cannot become an action.
    torch.manual_seed(0)
    model = InverseDynamicsModel(IDMConfig()).eval()
    rng = np.random.default_rng(0)
    flow = torch.zeros(1, 4, 2, 8, 8)
    outs = []
    for _ in range(2):
        frame = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        with torch.no_grad():
            outs.append(model(frames_to_tensor(np.stack([frame] * 5)), flow))
    for name in outs[0]:
        assert torch.allclose(outs[0][name], outs[1][name], atol=1e-5), name


def test_checkpoints_without_pair_input_load_as_both(tmp_path):
    model = InverseDynamicsModel(IDMConfig(pair_input="both")).eval()
    model.save_pretrained(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    del raw["config"]["pair_input"]
    (tmp_path / "config.json").write_text(json.dumps(raw))
    assert InverseDynamicsModel.from_pretrained(tmp_path).cfg.pair_input == "both"
    with pytest.raises(ValueError, match="pair_input"):
        IDMConfig(pair_input="sum")


def test_one_world_gives_clips_from_scene_like_starts():
    from data.scenes import START_PITCH

    clips = data.simulate_world(123_456, 2, 6, "benchmark")
    assert len(clips) == 2
    for frames, actions in clips:
        assert frames.shape == (6, 64, 64, 3) and len(actions) == 6
    again = data.simulate_world(123_456, 2, 6, "benchmark")
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(clips, again))  # the seed decides everything
    from data.world import World

    pose = data.scene_like_start(World.generate(5, "forest"), np.random.default_rng(1))
    assert pose.pitch == START_PITCH
    with pytest.raises(ValueError, match="player"):
        data.simulate_world(1, 1, 6, "nobody")


def test_training_seeds_stay_clear_of_the_benchmark_and_held_out_worlds():
    last = config.TRAIN_SEED_BASE + config.WORLDS_PER_SEED * 9 + config.WORLDS_PER_SEED - 1
    assert config.TRAIN_SEED_BASE > 8003 and last < config.IDMTrainConfig().test_seed_offset
    with pytest.raises(ValueError, match="seed"):
        config.IDMTrainConfig(seed=10)
    with pytest.raises(ValueError, match="simulate_share"):
        config.IDMTrainConfig(simulate_share=1.0)


def test_warm_start_needs_the_same_architecture(tmp_path):
    InverseDynamicsModel(IDMConfig(hidden=8)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="architecture"):
        train.train_idm(config.IDMTrainConfig(init=str(tmp_path)), tmp_path / "out", progress=False)
