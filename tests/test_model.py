"""The causal DiT, the autoencoder and the flow-matching loss, on tiny configs."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from worldmodel.config import PRESETS, AutoencoderConfig, DiTConfig, SamplingConfig
from worldmodel.dit import CausalDiT, KVCache, apply_rope, rope_tables, widen_latent_channels
from worldmodel.sampler import sigma_schedule
from worldmodel.schedule import flow_loss, move_view, residual_base, sample_train_sigmas, turn_view

AE_CFG, DIT_CFG = PRESETS["wm-tiny"]
torch.set_num_threads(1)


def random_dit(cfg: DiTConfig = DIT_CFG, seed: int = 0) -> CausalDiT:
    """A tiny DiT with its zero-initialised layers perturbed, so every input matters to the output."""
    torch.manual_seed(seed)
    model = CausalDiT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def inputs(B: int, T: int, cfg: DiTConfig = DIT_CFG, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, cfg.latent_channels, cfg.latent_size, cfg.latent_size, generator=g)
    sigma = torch.rand(B, T, generator=g)
    keys = (torch.rand(B, T, cfg.num_keys, generator=g) > 0.5).float()
    camera = torch.randn(B, T, 2, generator=g) * 5
    act_mask = torch.ones(B, T, dtype=torch.bool)
    return x, sigma, keys, camera, act_mask


def test_config_validation_errors():
    with pytest.raises(ValueError, match="heads"):
        DiTConfig(dim=30, heads=4)
    with pytest.raises(ValueError, match="patch_size"):
        DiTConfig(latent_size=15, patch_size=2)
    with pytest.raises(ValueError, match="decoder_blocks"):
        AutoencoderConfig(downsample=4, decoder_blocks=(1, 1))
    with pytest.raises(ValueError, match="steps"):
        SamplingConfig(steps=0)
    with pytest.raises(ValueError, match="memory must be true or false"):
        SamplingConfig(memory="yes")
    for bad in (1.5, float("nan"), 0):
        with pytest.raises(ValueError, match="memory_points"):
            SamplingConfig(memory_points=bad)


def test_output_shape_and_zero_init():
    torch.manual_seed(0)
    model = CausalDiT(DIT_CFG)
    x = inputs(2, 3)
    out = model(*x)
    assert out.shape == x[0].shape
    # adaLN-Zero + zero final layer: an untrained model predicts no change at all
    assert out.abs().max() == 0


def test_a_dit_widened_to_more_latent_channels_starts_as_the_one_it_came_from():
    torch.manual_seed(0)
    cfg = dataclasses.replace(DIT_CFG, view_fov=70.0, egomotion=True, depth_channels=8, base_input=True)
    old = CausalDiT(cfg).eval()
    for param in old.parameters():  # trained-looking weights: nothing zero by initialisation
        param.data.normal_(0, 0.1)
    wide_cfg = dataclasses.replace(cfg, latent_channels=2 * cfg.latent_channels)
    wide = CausalDiT(wide_cfg).eval()
    wide.load_state_dict(widen_latent_channels(old.state_dict(), wide_cfg.latent_channels, cfg.patch_size))
    x, sigma, keys, camera, act_mask = inputs(2, 3, cfg)
    extra = torch.randn_like(x)  # whatever the new channels hold
    C = cfg.latent_channels
    base = torch.randn(2, 3, C + 1, cfg.latent_size, cfg.latent_size)
    wide_base = torch.cat([base[:, :, :C], torch.randn_like(base[:, :, :C]), base[:, :, C:]], dim=2)
    out_old, depth_old = old(x, sigma, keys, camera, act_mask, base_in=base, with_depth=True)
    out, depth = wide(torch.cat([x, extra], dim=2), sigma, keys, camera, act_mask, base_in=wide_base, with_depth=True)
    torch.testing.assert_close(out[:, :, :C], out_old)
    assert out[:, :, C:].abs().max() == 0  # the new channels: no change from the base
    torch.testing.assert_close(depth, depth_old)
    with pytest.raises(ValueError, match="narrow"):
        widen_latent_channels(wide.state_dict(), C, cfg.patch_size)


def test_patchify_round_trip():
    model = random_dit()
    x = inputs(2, 3)[0]
    assert torch.equal(model.unpatchify(model.patchify(x)), x)


def test_causal_later_frames_and_actions_never_change_earlier_outputs():
    model = random_dit()
    x, sigma, keys, camera, mask = inputs(1, 4)
    ref = model(x, sigma, keys, camera, mask)
    x2, keys2, camera2, sigma2, mask2 = x.clone(), keys.clone(), camera.clone(), sigma.clone(), mask.clone()
    x2[:, 2:] += 1.0
    keys2[:, 2:] = 1 - keys2[:, 2:]
    camera2[:, 2:] *= -1
    sigma2[:, 2:] = 0.5
    mask2[:, 3] = False
    out = model(x2, sigma2, keys2, camera2, mask2)
    assert torch.allclose(out[:, :2], ref[:, :2], atol=1e-6)
    assert not torch.allclose(out[:, 2:], ref[:, 2:], atol=1e-4)


def test_actions_change_the_output_of_their_frame():
    model = random_dit()
    x, sigma, keys, camera, mask = inputs(1, 2)
    ref = model(x, sigma, keys, camera, mask)
    camera2 = camera.clone()
    camera2[:, 1, 1] += 10
    assert not torch.allclose(model(x, sigma, keys, camera2, mask)[:, 1], ref[:, 1], atol=1e-4)
    mask2 = mask.clone()
    mask2[:, 1] = False  # the null action is a different condition
    assert not torch.allclose(model(x, sigma, keys, camera, mask2)[:, 1], ref[:, 1], atol=1e-4)


def test_attention_window_limits_how_far_back_a_frame_sees():
    import dataclasses

    cfg = dataclasses.replace(DIT_CFG, depth=1)  # one layer: the reach is exactly window - 1 frames
    model = random_dit(cfg)
    x, sigma, keys, camera, mask = inputs(1, 5, cfg)
    ref = model(x, sigma, keys, camera, mask)
    x2 = x.clone()
    x2[:, 0] += 3.0
    out = model(x2, sigma, keys, camera, mask)
    assert not torch.allclose(out[:, cfg.window - 1], ref[:, cfg.window - 1], atol=1e-4)
    assert torch.allclose(out[:, cfg.window :], ref[:, cfg.window :], atol=1e-6)


def test_kv_cache_matches_full_forward_far_beyond_the_window():
    model = random_dit()
    T = 9  # three times the window
    x, sigma, keys, camera, mask = inputs(2, T)
    full = model(x, sigma, keys, camera, mask)
    cache = KVCache(DIT_CFG.window)
    for t in range(T):
        out = model(
            x[:, t : t + 1], sigma[:, t : t + 1], keys[:, t : t + 1], camera[:, t : t + 1], mask[:, t : t + 1],
            pos0=t, cache=cache, commit=1,
        )
        assert torch.allclose(out[:, 0], full[:, t], atol=1e-5), t
    assert len(cache) == DIT_CFG.window - 1


def test_kv_cache_two_frames_at_once_with_commit_of_the_first():
    model = random_dit()
    x, sigma, keys, camera, mask = inputs(1, 4)
    full = model(x, sigma, keys, camera, mask)
    cache = KVCache(DIT_CFG.window)
    model(x[:, :2], sigma[:, :2], keys[:, :2], camera[:, :2], mask[:, :2], pos0=0, cache=cache, commit=2)
    out = model(x[:, 2:], sigma[:, 2:], keys[:, 2:], camera[:, 2:], mask[:, 2:], pos0=2, cache=cache, commit=1)
    assert torch.allclose(out, full[:, 2:], atol=1e-5)
    with pytest.raises(ValueError, match="cache ends"):
        model(x[:, :1], sigma[:, :1], keys[:, :1], camera[:, :1], mask[:, :1], pos0=7, cache=cache)


def test_a_step_that_commits_a_frame_can_skip_predicting_it():
    """predict_committed=False: the same prediction for the new frame, and the same cache, as predicting both."""
    model = random_dit()
    x, sigma, keys, camera, mask = inputs(2, 3)
    caches = [KVCache(DIT_CFG.window), KVCache(DIT_CFG.window)]
    for cache in caches:
        model(x[:, :1], sigma[:, :1], keys[:, :1], camera[:, :1], mask[:, :1], pos0=0, cache=cache, commit=1)
    both = model(x[:, 1:], sigma[:, 1:], keys[:, 1:], camera[:, 1:], mask[:, 1:], pos0=1, cache=caches[0], commit=1)
    new_only = model(x[:, 1:], sigma[:, 1:], keys[:, 1:], camera[:, 1:], mask[:, 1:], pos0=1, cache=caches[1],
                     commit=1, predict_committed=False)
    assert new_only.shape == both[:, 1:].shape
    assert torch.allclose(new_only, both[:, 1:], atol=1e-5)
    for k0, k1 in zip(caches[0].keys + caches[0].values, caches[1].keys + caches[1].values):
        assert torch.equal(k0, k1)


def test_rope_positions_are_relative():
    """Shifting every position by the same amount leaves the outputs unchanged (a cache stays valid forever)."""
    model = random_dit()
    x = inputs(1, 3)
    a = model(*x, pos0=0)
    b = model(*x, pos0=1_000_000)
    assert torch.allclose(a, b, atol=1e-4)


def test_residual_base_and_loss():
    z = torch.randn(2, 3, 4, 4, 4)
    sigma = torch.tensor([[0.0, 0.5, 1.0], [0.2, 0.2, 0.2]])
    base = residual_base(z, sigma)
    assert torch.equal(base[:, 0], torch.zeros_like(base[:, 0]))
    assert torch.allclose(base[0, 1], z[0, 0]) and torch.allclose(base[0, 2], 0.5 * z[0, 1])
    s = sample_train_sigmas(64, 5, 0.5, 0.3, torch.Generator().manual_seed(0))
    assert s.min() >= 0 and s.max() <= 1 and (s < 0.3).float().mean() > 0.4
    torch.manual_seed(0)
    model = CausalDiT(DIT_CFG)
    loss, per_frame = flow_loss(model, z, *inputs(2, 3)[2:], sigma, torch.randn_like(z))
    assert per_frame.shape == (2, 3) and torch.isfinite(loss)


def test_turn_view_shifts_the_picture_the_way_the_camera_turns():
    frames = torch.randn(2, 3, 8, 8)
    assert torch.allclose(turn_view(frames, torch.zeros(2, 2), fov=90.0), frames, atol=1e-6)
    # fov 90: the picture's half-width is tan(45) = 1, so tan(yaw) = 0.25 is one cell of eight
    one_cell = math.degrees(math.atan(0.25))
    right = turn_view(frames, torch.tensor([[0.0, one_cell]] * 2), fov=90.0)
    assert torch.allclose(right[..., :, :-1], frames[..., :, 1:], atol=1e-5)  # yaw right: the world slides left
    assert torch.allclose(right[..., :, -1], frames[..., :, -1], atol=1e-5)  # the new edge repeats the old one
    up = turn_view(frames, torch.tensor([[one_cell, 0.0]] * 2), fov=90.0)
    assert torch.allclose(up[..., 1:, :], frames[..., :-1, :], atol=1e-5)  # pitch up: the world slides down
    # residual_base turns each frame's base by that frame's camera
    z = torch.randn(1, 3, 3, 8, 8)
    camera = torch.tensor([[[0.0, 0.0], [0.0, one_cell], [0.0, 0.0]]])
    base = residual_base(z, torch.zeros(1, 3), camera=camera, fov=90.0)
    assert torch.allclose(base[0, 1, :, :, :-1], z[0, 0, :, :, 1:], atol=1e-5)
    assert torch.allclose(base[0, 2], z[0, 1], atol=1e-6)


def test_sigma_schedule():
    assert sigma_schedule(3) == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])
    shifted = sigma_schedule(3, shift=3.0)
    assert shifted[0] == 1.0 and shifted[-1] == 0.0 and shifted[1] > 2 / 3


def test_tiny_overfit_loss_falls_on_one_clip():
    torch.manual_seed(0)
    model = CausalDiT(DIT_CFG)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(1, 4, 4, 4, 4, generator=g).cumsum(1)  # one "clip" of 4 latent frames
    _, _, keys, camera, mask = inputs(1, 4)
    losses = []
    for _ in range(60):
        sigma = torch.rand(4, 4, generator=g)
        eps = torch.randn(4, *z.shape[1:], generator=g)
        loss, _ = flow_loss(
            model, z.expand(4, -1, -1, -1, -1), keys.expand(4, -1, -1), camera.expand(4, -1, -1), mask.expand(4, -1), sigma, eps
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10


def test_autoencoder_shapes_and_normalisation():
    pytest.importorskip("diffusers")
    from worldmodel.autoencoder import FrameAutoencoder

    torch.manual_seed(0)
    ae = FrameAutoencoder(AE_CFG).eval()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    z = ae.encode(x)
    assert z.shape == (3, AE_CFG.latent_channels, AE_CFG.latent_size, AE_CFG.latent_size)
    assert ae.decode(z).shape == x.shape
    ae.set_latent_stats(x)
    z = ae.encode(x)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(AE_CFG.latent_channels), atol=1e-4)


def test_an_autoencoder_with_more_latent_channels_starts_as_the_one_it_starts_from():
    pytest.importorskip("diffusers")
    from worldmodel.autoencoder import FrameAutoencoder

    torch.manual_seed(0)
    old = FrameAutoencoder(AE_CFG).eval()
    wider = FrameAutoencoder(dataclasses.replace(AE_CFG, latent_channels=2 * AE_CFG.latent_channels)).eval()
    wider.start_from(old)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    assert torch.equal(wider(x), old(x))  # the new channels are read with zero weights
    assert torch.equal(wider.encode_raw(x)[:, : AE_CFG.latent_channels], old.encode_raw(x))
    assert float(wider.encode_raw(x)[:, AE_CFG.latent_channels :].detach().abs().max()) > 0  # but carry a signal to learn from
    with pytest.raises(ValueError, match="cannot start"):
        old.start_from(wider)
    with pytest.raises(ValueError, match="same autoencoder layout"):
        wider.start_from(FrameAutoencoder(dataclasses.replace(AE_CFG, encoder_blocks=(1, 1, 1))))


def test_move_view_steps_near_things_more_than_far_ones_and_never_the_sky():
    frames = torch.randn(1, 2, 8, 8)
    camera = torch.zeros(1, 2)
    still = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    near = torch.full((1, 8, 8), 0.5)
    assert torch.allclose(move_view(frames, camera, 90.0, near, still), frames, atol=1e-6)
    sky = torch.zeros(1, 8, 8)
    assert torch.allclose(move_view(frames, camera, 90.0, sky, torch.tensor([[0.3, 0.2, 0.5, 1.0]])), frames, atol=1e-6)
    # A bright dot right of the centre: a forward step moves it outward, further when it is nearer.
    dot = torch.zeros(1, 1, 16, 16)
    dot[..., 7:9, 11] = 1.0
    forward = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    column = lambda img: float((img[0, 0].sum(0) * torch.arange(16)).sum() / img[0, 0].sum())
    far_step = move_view(dot, camera, 90.0, torch.full((1, 16, 16), 0.1), forward)
    near_step = move_view(dot, camera, 90.0, torch.full((1, 16, 16), 0.4), forward)
    assert column(dot) < column(far_step) < column(near_step)
    # fov 90, depth 1 block (inverse 1): a step of 0.25 blocks to the right slides the picture one cell of 16
    # to the left (f = 1, and a cell is 2 / 16 = 0.125 of the [-1, 1] width: 0.25 * 1 / 1 = 2 cells).
    stripes = torch.arange(16.0).repeat(16, 1)[None, None]
    moved = move_view(stripes, camera, 90.0, torch.ones(1, 16, 16), torch.tensor([[0.25, 0.0, 0.0, 1.0]]))
    assert torch.allclose(moved[0, 0, :, :-2], stripes[0, 0, :, 2:], atol=1e-4)
    # With no step it is exactly turn_view
    turn = torch.tensor([[3.0, -7.0]])
    assert torch.allclose(move_view(frames, turn, 70.0, near, still), turn_view(frames, turn, 70.0), atol=1e-6)


def test_egomotion_model_predicts_depth_and_its_loss_trains_the_head():
    cfg = dataclasses.replace(DIT_CFG, view_fov=70.0, egomotion=True, depth_channels=8)
    with pytest.raises(ValueError, match="view_fov"):
        dataclasses.replace(DIT_CFG, egomotion=True)
    model = random_dit(cfg)
    x, sigma, keys, camera, act_mask = inputs(2, 3, cfg)
    out, inv_depth = model(x, sigma, keys, camera, act_mask, with_depth=True)
    assert out.shape == x.shape and inv_depth.shape == (2, 3, cfg.latent_size, cfg.latent_size)
    assert inv_depth.min() >= 0 and inv_depth.max() <= 2.0
    motion = torch.tensor([0.0, 0.0, 0.2, 1.0]).expand(2, 3, 4)
    true_depth = torch.full_like(inv_depth, 0.3)
    loss, _ = flow_loss(model, x, keys, camera, act_mask, sigma, torch.randn_like(x), fov=70.0, motion=motion,
                        true_inv_depth=true_depth)  # fmt: skip
    loss.backward()
    assert model.depth.net[0].weight.grad.abs().sum() > 0  # the head learns from the depth loss
    with pytest.raises(ValueError, match="depth head"):
        random_dit()(x, sigma, keys, camera, act_mask, with_depth=True)


def test_rope_rotates_each_channel_pair_by_its_angle():
    """apply_rope's complex form (float32) and its written-out form (other dtypes) both turn pair (x1, x2) of
    position p by p * 10000^(-2i/hd)."""
    x = torch.randn(2, 3, 5, 8)
    positions = torch.arange(5) * 1000
    turned = apply_rope(x, rope_tables(positions, 8))
    angle = positions[:, None].double() * 10000 ** (-torch.arange(0, 8, 2).double() / 8)  # (L, 4)
    x1, x2 = x.double()[..., 0::2], x.double()[..., 1::2]
    assert torch.allclose(turned[..., 0::2].double(), x1 * angle.cos() - x2 * angle.sin(), atol=1e-5)
    assert torch.allclose(turned[..., 1::2].double(), x1 * angle.sin() + x2 * angle.cos(), atol=1e-5)
    assert torch.allclose(apply_rope(x.double(), rope_tables(positions, 8)).float(), turned, atol=1e-5)
