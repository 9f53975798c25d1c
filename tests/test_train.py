"""Training: config parsing, a tiny end-to-end run, resume after a kill, two-process DDP."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from worldmodel.action_probe import mirror_actions
from worldmodel.config import PRESETS, TrainConfig, load_train_config, to_dict
from worldmodel.lr_schedule import warmup_cosine
from worldmodel.train import run

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent


class FakeWindows:
    """ClipWindows stand-in: clips of a striped texture that the camera yaw scrolls sideways."""

    def __init__(self, root: str, length: int, stride: int, clips: int = 3, frames: int = 24, size: int = 16):
        rng = np.random.default_rng(0)
        self.length = length
        self.items = []
        for c in range(clips):
            yaw = rng.choice([-2.0, 0.0, 2.0], size=frames).astype(np.float32)
            base = rng.integers(0, 255, (size, size * 4, 3)).astype(np.uint8)
            offset = np.concatenate([[0], np.cumsum(yaw[:-1])]).astype(int)  # action t moves frame t+1
            obs = np.stack([np.roll(base, -o, axis=1)[:, :size] for o in offset])
            keys = np.zeros((frames, 9), np.float32)
            camera = np.stack([np.zeros(frames, np.float32), yaw], axis=1)
            for start in range(0, frames - length + 1, stride):
                self.items.append({
                    "obs": torch.from_numpy(obs[start:start + length]).permute(0, 3, 1, 2).contiguous(),
                    "keys": torch.from_numpy(keys[start:start + length]),
                    "camera": torch.from_numpy(camera[start:start + length]),
                    "clip": f"clip{c}",
                    "start": start,
                })

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def fake_windows(root: str, length: int, stride: int) -> FakeWindows:
    return FakeWindows(root, length, stride)


def tiny_config(**overrides) -> TrainConfig:
    ae, dit = PRESETS["wm-tiny"]
    values = dict(data="fake", autoencoder=ae, dit=dit, ae_steps=6, ae_batch_size=4, steps=6, batch_size=2, seq_len=3,
                  warmup_steps=2, log_every=2, eval_every=3, ckpt_every=3, eval_batch=2, max_minutes=5.0, ae_minutes=5.0)
    values.update(overrides)
    return TrainConfig(**values)


def test_config_round_trip_and_errors(tmp_path):
    cfg = tiny_config(data=str(tmp_path / "clips"))
    path = tmp_path / "c.json"
    path.write_text(json.dumps(to_dict(cfg)))
    assert load_train_config(str(path)) == cfg
    path.write_text(json.dumps({"preset": "wm-tiny", "data": "x", "bogus": 1}))
    with pytest.raises(ValueError, match="bogus"):
        load_train_config(str(path))
    path.write_text("{\n  \"data\": ,\n}")
    with pytest.raises(ValueError, match=r"c.json:2"):
        load_train_config(str(path))
    with pytest.raises(ValueError, match="seq_len"):
        tiny_config(seq_len=1)
    with pytest.raises(ValueError, match="init_from"):
        tiny_config(ae_anchor_weight=1.0)


def test_shipped_default_config_parses():
    cfg = load_train_config(str(REPO / "worldmodel" / "configs" / "default.json"))
    assert cfg.autoencoder.image_size == 64 and cfg.stages == ("autoencoder", "world")


@pytest.mark.parametrize("path", sorted((REPO / "worldmodel" / "configs").glob("*.json")), ids=lambda p: p.name)
def test_every_config_in_the_repository_parses(path):
    cfg = load_train_config(str(path))
    assert cfg.autoencoder.latent_channels == cfg.dit.latent_channels


def test_lr_schedule_warms_up_and_decays():
    assert warmup_cosine(1.0, 0.0, 0.1, step=0, warmup=10) == pytest.approx(0.1)
    assert warmup_cosine(1.0, 0.0, 0.1, step=10, warmup=10) == pytest.approx(1.0)
    assert warmup_cosine(1.0, 0.5, 0.1, step=30, warmup=10) == pytest.approx(0.55)
    assert warmup_cosine(1.0, 1.0, 0.1, step=50, warmup=10) == pytest.approx(0.1)


def test_mirror_actions_swaps_left_right_and_negates_camera():
    keys = torch.zeros(1, 9)
    keys[0, 2] = 1  # left
    k, c = mirror_actions(keys, torch.tensor([[1.0, -2.0]]))
    assert k[0, 3] == 1 and k[0, 2] == 0 and c.tolist() == [[-1.0, 2.0]]


@pytest.mark.slow  # ~5 s on an idle machine (imports diffusers and matplotlib), 15-20 s on a busy one
def test_tiny_run_end_to_end_then_resume(tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    run(tiny_config(), out, windows=fake_windows)
    for name in ("pipeline/config.json", "pipeline/dit/model.safetensors", "loss.png", "log.jsonl", "ckpt_world/state.json"):
        assert (out / name).exists(), name
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("eval_mirror" in r for r in rows)
    assert json.loads((out / "ckpt_world" / "state.json").read_text())["step"] == 6
    # resume with a larger budget continues from step 6, not 0
    run(tiny_config(steps=9), out, resume=True, windows=fake_windows)
    assert json.loads((out / "ckpt_world" / "state.json").read_text())["step"] == 9
    from worldmodel.pipeline import WorldPipeline

    pipe = WorldPipeline.from_pretrained(out / "pipeline")
    frames = pipe(np.zeros((16, 16, 3), np.uint8), [__import__("data.actions").actions.NOOP] * 2)
    assert frames.shape == (3, 16, 16, 3)


def test_a_sharper_autoencoder_and_its_world_model_start_from_a_trained_pipeline(tmp_path):
    """More latent channels for detail: the autoencoder stage starts from a pipeline's autoencoder, then a world
    stage in the same folder reads that autoencoder and starts its DiT from the pipeline's, widened."""
    torch.set_num_threads(1)
    from worldmodel.pipeline import WorldPipeline

    first = tmp_path / "first"
    run(tiny_config(), first, windows=fake_windows)
    ae_cfg, dit_cfg = PRESETS["wm-tiny"]
    C = ae_cfg.latent_channels
    wider = tiny_config(init_from=str(first / "pipeline"), ae_steps=1, steps=1, ae_lr=1e-12, lr=1e-12,
                        ae_anchor_weight=1.0, autoencoder=dataclasses.replace(ae_cfg, latent_channels=2 * C),
                        dit=dataclasses.replace(dit_cfg, latent_channels=2 * C))
    out = tmp_path / "wider"
    run(dataclasses.replace(wider, stages=("autoencoder",)), out, windows=fake_windows)
    run(dataclasses.replace(wider, stages=("world",)), out, resume=True, windows=fake_windows)
    old, new = WorldPipeline.from_pretrained(first / "pipeline"), WorldPipeline.from_pretrained(out / "pipeline")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert new.autoencoder.cfg.latent_channels == 2 * C
    assert torch.allclose(new.autoencoder(x), old.autoencoder(x), atol=1e-5)  # no learning rate: where it started
    p2 = dit_cfg.patch_size**2
    embed_old, embed_new = old.dit.x_embed.weight, new.dit.x_embed.weight
    assert torch.allclose(embed_new[:, : C * p2], embed_old, atol=1e-5) and embed_new[:, C * p2 :].abs().max() < 1e-5


def _ddp_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    ema = run(tiny_config(steps=3, ae_steps=2), Path(out), windows=fake_windows)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, os.path.join(out, f"rank{rank}.safetensors"))


@pytest.mark.slow  # two fresh processes import torch and diffusers: ~30 s on this shared machine
def test_two_process_ddp_step_leaves_identical_weights(tmp_path):
    import socket

    from safetensors.torch import load_file

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    a, b = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and training moved them: the zero-initialised output layer is no longer zero
    assert a["final.linear.weight"].abs().sum() > 0


def test_unroll_replaces_the_middle_frames_by_model_predictions():
    from worldmodel.dit import CausalDiT
    from worldmodel.train_world import self_conditioned_context

    cfg = tiny_config(seq_len=4)
    torch.manual_seed(0)
    dit = CausalDiT(cfg.dit)
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    z = torch.randn(2, 4, 4, 4, 4)
    b = {"z": z, "eps": torch.randn_like(z), "keys": torch.zeros(2, 4, 9), "camera": torch.zeros(2, 4, 2),
         "act_mask": torch.ones(2, 4, dtype=torch.bool)}
    new = self_conditioned_context(dit, b, cfg)
    assert torch.equal(new[:, 0], z[:, 0]) and torch.equal(new[:, -1], z[:, -1])  # the start and the target stay true
    assert not torch.allclose(new[:, 1:-1], z[:, 1:-1])


def test_egomotion_run_on_recorded_clips_replays_depth_and_starts_from_a_model_without_a_head(tmp_path):
    from data.record import RecordConfig, record

    record(RecordConfig(frames=60, clip_frames=30, size=16, seed=2), tmp_path / "clips", workers=1, progress=False)
    first = tmp_path / "plain"
    run(tiny_config(data=str(tmp_path / "clips"), steps=2, dit=dataclasses.replace(PRESETS["wm-tiny"][1], view_fov=70.0)), first)
    walk_cfg = dataclasses.replace(PRESETS["wm-tiny"][1], view_fov=70.0, egomotion=True, depth_channels=8)
    out = tmp_path / "walk"
    run(tiny_config(data=str(tmp_path / "clips"), stages=("world",), init_from=str(first / "pipeline"), dit=walk_cfg), out)
    from safetensors import safe_open

    with safe_open(str(out / "latents.safetensors"), "pt") as f:
        assert {"motion", "inv_depth"} <= set(f.keys())
        assert f.get_tensor("inv_depth").shape[1:] == (4, 4) and float(f.get_tensor("inv_depth").float().max()) > 0
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("eval_depth_l1" in r for r in rows)
    from data.actions import Action
    from worldmodel.pipeline import WorldPipeline

    pipe = WorldPipeline.from_pretrained(out / "pipeline")
    assert pipe.dit.cfg.egomotion and pipe.dit.depth is not None
    assert pipe(np.zeros((16, 16, 3), np.uint8), [Action({"forward"})] * 2).shape == (3, 16, 16, 3)


def test_memory_base_run_makes_the_memory_bases_once_and_starts_from_the_model_it_continues(tmp_path):
    from safetensors import safe_open

    from data.actions import Action
    from data.record import RecordConfig, record
    from worldmodel.config import SamplingConfig
    from worldmodel.pipeline import WorldPipeline

    record(RecordConfig(frames=60, clip_frames=30, size=16, seed=2), tmp_path / "clips", workers=1, progress=False)
    walk_cfg = dataclasses.replace(PRESETS["wm-tiny"][1], view_fov=70.0, egomotion=True, depth_channels=8)
    first = tmp_path / "walk"
    run(tiny_config(data=str(tmp_path / "clips"), steps=2, dit=walk_cfg), first)
    memory_cfg = tiny_config(data=str(tmp_path / "clips"), stages=("world",), init_from=str(first / "pipeline"), steps=2,
                             dit=dataclasses.replace(walk_cfg, base_input=True), sampling=SamplingConfig(memory=True),
                             memory_base_prob=1.0, memory_restart=8)  # fmt: skip
    out = tmp_path / "memory"
    run(memory_cfg, out)
    with safe_open(str(out / "memory_bases.safetensors"), "pt") as f:
        made = f.get_tensor("made").bool()
        covered = f.get_tensor("covered").float()
    assert made.any() and not made.all()  # frames at a restart have no memory before them
    assert float(covered[made].mean()) > 0.3  # a memory of the frames just before covers much of the view
    stamp = (out / "memory_bases.safetensors").stat().st_mtime_ns
    run(memory_cfg, out, resume=True)  # the same cache serves a resumed run
    assert (out / "memory_bases.safetensors").stat().st_mtime_ns == stamp

    pipe = WorldPipeline.from_pretrained(out / "pipeline")
    assert pipe.dit.cfg.base_input and pipe.sampling.memory
    frames = pipe(np.zeros((16, 16, 3), np.uint8), [Action({"forward"}), Action(camera=(0.0, 5.0))] * 2)
    assert frames.shape == (5, 16, 16, 3)


def test_a_zero_base_input_leaves_the_model_unchanged():
    walk_cfg = dataclasses.replace(PRESETS["wm-tiny"][1], view_fov=70.0, egomotion=True, depth_channels=8)
    from worldmodel.dit import CausalDiT

    torch.manual_seed(0)
    plain = CausalDiT(walk_cfg)
    reading = CausalDiT(dataclasses.replace(walk_cfg, base_input=True))
    reading.load_state_dict(plain.state_dict(), strict=False)
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.05)  # adaLN-zero would make any input give zero
    reading.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 3, walk_cfg.latent_channels, walk_cfg.latent_size, walk_cfg.latent_size)
    args = (x, torch.rand(2, 3), torch.zeros(2, 3, 9), torch.zeros(2, 3, 2), torch.ones(2, 3, dtype=torch.bool))
    base_in = torch.randn(2, 3, walk_cfg.latent_channels + 1, walk_cfg.latent_size, walk_cfg.latent_size)
    assert torch.allclose(plain(*args), reading(*args, base_in=base_in))
    torch.nn.init.normal_(reading.base_embed.weight, std=0.05)
    assert not torch.allclose(plain(*args), reading(*args, base_in=base_in))


def test_a_killed_and_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path, monkeypatch):
    import worldmodel.train_world as train

    whole = run(tiny_config(steps=6, ckpt_every=3), tmp_path / "whole", windows=fake_windows)
    calls = {"n": 0}
    real_update = train.ema_update

    def killed_after_step_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # killed between checkpoints: step 4's work is lost
        real_update(*args, **kwargs)

    monkeypatch.setattr(train, "ema_update", killed_after_step_3)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_config(steps=6, ckpt_every=3), tmp_path / "resumed", windows=fake_windows)
    monkeypatch.setattr(train, "ema_update", real_update)
    resumed = run(tiny_config(steps=6, ckpt_every=3), tmp_path / "resumed", resume=True, windows=fake_windows)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


# --- an earlier run is never overwritten; a diverged run stops; the cache follows the data --------------

def test_a_folder_that_holds_a_run_is_refused_without_resume_or_force(tmp_path):
    from worldmodel.run_folder import RunFolderInUse, check_run_folder, clear_for_fresh_run

    out = tmp_path / "run"
    (out / "ckpt_world").mkdir(parents=True)
    (out / "log.jsonl").write_text('{"stage": "world", "step": 500}\n')
    for stages in (("autoencoder", "world"), ("world",)):
        with pytest.raises(RunFolderInUse, match="holds an earlier run.*--resume.*--force"):
            check_run_folder(out, stages, resume=False, force=False)
    check_run_folder(out, ("world",), resume=True, force=False)
    check_run_folder(out, ("world",), resume=False, force=True)
    # The autoencoder stage alone, then the world stage into the same folder: the intended two-step use.
    ae_only = tmp_path / "ae"
    (ae_only / "autoencoder").mkdir(parents=True)
    (ae_only / "log.jsonl").write_text("{}\n")
    check_run_folder(ae_only, ("world",), resume=False, force=False)
    clear_for_fresh_run(ae_only, ("world",))
    assert (ae_only / "log.jsonl").exists() and (ae_only / "autoencoder").exists()
    clear_for_fresh_run(out, ("autoencoder", "world"))
    assert not (out / "log.jsonl").exists() and not (out / "ckpt_world").exists()


def test_train_command_refuses_to_overwrite_a_run(tmp_path, capsys):
    from app.cli import main

    config = tmp_path / "c.json"
    config.write_text(json.dumps({"preset": "wm-tiny", "data": "clips"}))
    (tmp_path / "clips").mkdir()
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.jsonl").write_text('{"stage": "world", "step": 500}\n')
    assert main(["train", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "holds an earlier run (log.jsonl)" in err
    assert (out / "log.jsonl").read_text() == '{"stage": "world", "step": 500}\n'  # untouched


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import worldmodel.train_autoencoder as train
    from worldmodel.finite import NonFiniteError

    real_loss, calls = train.reconstruction_loss, [0]

    def diverging(pred, target, edge_weight):
        calls[0] += 1
        loss, parts = real_loss(pred, target, edge_weight)
        return (loss * float("nan"), parts) if calls[0] == 5 else (loss, parts)

    monkeypatch.setattr(train, "reconstruction_loss", diverging)
    monkeypatch.setattr(train, "plot_losses", lambda out: None)  # matplotlib costs seconds, and is not the point
    out = tmp_path / "run"
    with pytest.raises(NonFiniteError, match="autoencoder training stopped at step 5: the loss is nan"):
        run(tiny_config(stages=("autoencoder",), ae_steps=8, ckpt_every=2), out, windows=fake_windows)
    from worldmodel.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(out / "ckpt_ae")
    assert meta["step"] == 4 and all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point())


def test_the_latent_cache_follows_the_data_folder(tmp_path):
    from worldmodel.autoencoder import FrameAutoencoder
    from worldmodel.distributed import Dist
    from worldmodel.train_world import build_latents

    ae = FrameAutoencoder(PRESETS["wm-tiny"][0]).eval()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "clip_000000.jsonl").write_text(name)
    count = lambda root, length, stride: FakeWindows(root, length, stride, clips=3 if root.endswith("a") else 1)
    out = tmp_path / "run"
    out.mkdir()
    first = build_latents(tiny_config(data=str(tmp_path / "a")), out, ae, Dist(), count)
    assert len(first.latents) == 3 * 24
    assert len(build_latents(tiny_config(data=str(tmp_path / "b")), out, ae, Dist(), count).latents) == 24
    # more clips recorded into the same folder: encoded again too
    (tmp_path / "b" / "clip_000001.jsonl").write_text("b")
    count_more = lambda root, length, stride: FakeWindows(root, length, stride, clips=2)
    assert len(build_latents(tiny_config(data=str(tmp_path / "b")), out, ae, Dist(), count_more).latents) == 2 * 24
