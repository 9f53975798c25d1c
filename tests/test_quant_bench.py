"""quant's benchmarks and what they rely on: the forced AVX2 path, the peers, the quantized share, the CUDA bench's
refusal on a machine without CUDA, and the per-source kernel build names."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from quant import Int8Config, Int8Linear, LutConfig, LutLinear, quantize_, quantized_share
from quant.api import supports
from quant.kernels.cpu import extension_name, force_avx2, isa_request
from quant.kernels.cpu import load as load_cpu_kernel

torch.set_num_threads(1)


def gaussian_linear(k: int, n: int) -> nn.Linear:
    torch.manual_seed(0)
    linear = nn.Linear(k, n)
    nn.init.normal_(linear.weight, std=k**-0.5)
    return linear.requires_grad_(False)


def test_force_avx2_routes_the_layers_to_the_avx2_kernels():
    int8, lut = load_cpu_kernel("int8_gemm"), load_cpu_kernel("lut_gemm")
    if int8 is None or lut is None:
        pytest.skip("the CPU kernels could not be built here")
    assert isa_request() == -1
    x = torch.randn(5, 192)
    x[:, 7] *= 20.0  # an outlier column
    i8 = Int8Linear.from_float(gaussian_linear(192, 80), Int8Config())
    lt = LutLinear.from_float(gaussian_linear(192, 80), LutConfig(bits=4, method="rtn"))
    with force_avx2():
        assert isa_request() == 0
        y_int8, y_lut = i8(x), lt(x)
    assert isa_request() == -1
    avx2_int8 = int8.int8_linear(x, i8.weight_int8, i8.weight_scale, i8.weight_sum, i8.bias, 80, 6.0, 0)
    avx2_lut = lut.lut_linear(x, lt.planes, lt.alpha_code, lt.alpha_scale, lt.offset_code, lt.offset_scale, lt.bias, 80, 64, 0)
    assert torch.equal(y_int8, avx2_int8) and torch.equal(y_lut, avx2_lut)


def test_kernel_builds_are_named_by_their_source():
    name = extension_name("int8_gemm")
    assert re.fullmatch(r"worldmodel_quant_int8_gemm_[0-9a-f]{10}", name)
    assert name == extension_name("int8_gemm") != extension_name("lut_gemm").replace("lut", "int8")


def test_the_default_lut_group_fits_every_wide_layer_of_the_shipped_dit():
    from worldmodel.config import PRESETS
    from worldmodel.dit import CausalDiT

    with torch.device("meta"):
        dit = CausalDiT(PRESETS["wm-default"][1])
    linears = [m for m in dit.modules() if type(m) is nn.Linear]
    fits = sum(m.in_features * m.out_features for m in linears if supports(m, LutConfig()))
    assert fits / sum(m.in_features * m.out_features for m in linears) >= 0.99
    # Only the narrow embedders (a few dozen inputs) are left in float.
    assert all(m.in_features < 64 for m in linears if not supports(m, LutConfig()))


def test_quantized_share_counts_linear_weights():
    model = nn.Sequential(nn.Linear(12, 128), nn.Linear(128, 64))  # 12 inputs: no LUT group fits
    with pytest.warns(UserWarning, match="left in float"):
        quantize_(model, LutConfig(bits=4, method="rtn"))
    assert quantized_share(model) == pytest.approx(128 * 64 / (12 * 128 + 128 * 64))
    assert quantized_share(quantize_(nn.Sequential(nn.Linear(12, 128)), Int8Config())) == 1.0
    assert quantized_share(nn.Sequential(nn.ReLU())) == 0.0


def test_quantize_dynamic_peers_are_worse_on_outliers_than_llm_int8():
    from quant.bench import activations, sqnr_db
    from quant.bench_peers import peers

    linear = gaussian_linear(256, 96)
    found = peers(linear, compiled=False)
    assert "torch dyn fbgemm" in found
    x = activations(64, 256, torch.Generator().manual_seed(1), outliers=True)
    ref = linear(x)
    ours = sqnr_db(ref, Int8Linear.from_float(linear, Int8Config())(x))
    theirs = sqnr_db(ref, found["torch dyn fbgemm"].call(x))
    assert found["torch dyn fbgemm"].weight_bytes == 256 * 96
    assert ours >= theirs + 10.0  # measured ~38 vs ~18 dB: per-tensor activations lose to the outlier columns


def test_bench_quick_rows_have_every_column(monkeypatch):
    from quant import bench

    monkeypatch.setattr(bench, "QUICK_SHAPES", [(128, 64)])
    monkeypatch.setattr(bench, "QUICK_TOKENS", [2])
    monkeypatch.setattr(bench, "ours", lambda: {"int8 t=6": Int8Config(), "lut4": LutConfig(bits=4, method="rtn")})
    monkeypatch.setattr(bench, "peers", lambda linear, compiled: {})
    rows = bench.run(quick=True)
    assert [r["method"] for r in rows if "[avx2]" not in r["method"]] == ["fp32", "int8 t=6", "lut4"]
    for row in rows[1:]:
        assert row["speed_vs_fp32"] > 0 and row["sqnr_db"] > 10 and row["sqnr_outlier_db"] > 10
        assert 0 < row["bytes_vs_fp32"] < 0.3 and row["cpu"]
        assert row["path"] in ("avx2", "avx512vnni", "avx512bw", "avx2 (forced)")
    lut4 = next(r for r in rows if r["method"] == "lut4")
    assert lut4["bytes_vs_fp32"] == (4 + 5 * 8 / 64 + 32 / 128) / 32  # codes + compressed scales, group 64


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_bench_stops_with_a_clear_message_without_cuda():
    import argparse

    from app import bench as runner

    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        runner.main(parser.parse_args(["quant", "--device", "cuda"]))
    with pytest.raises(ValueError, match="CPU only"):
        runner.main(parser.parse_args(["stream", "--device", "cuda"]))


def test_a_zero_initialised_narrow_layer_quantizes_exactly_or_stays_float():
    # Like a DiT's freshly added input embedding: 20 inputs, all weights zero.
    model = nn.Sequential(nn.Linear(20, 192))
    nn.init.zeros_(model[0].weight)
    x = torch.randn(3, 20)
    expected = model(x)
    zero = Int8Linear.from_float(model[0], Int8Config())
    assert torch.equal(zero(x), expected)  # all-zero rows: scale 0, output exactly the bias
    with pytest.warns(UserWarning, match="left in float"):
        quantize_(model, LutConfig())
    assert type(model[0]) is nn.Linear


def test_bench_summary_spans_the_dit_shapes():
    from quant.bench_summary import summary

    base = dict(bytes_vs_fp32=0.25, sqnr_db=35.0, sqnr_outlier_db=38.0, cpu="Test CPU (AVX2)")
    rows = [dict(method="fp32", M=64, K=192, N=768, speed_vs_fp32=1.0, **base),
            dict(method="int8 t=6", M=64, K=192, N=768, speed_vs_fp32=1.5, speed_vs_torch_dyn=1.1, **base),
            dict(method="int8 t=6", M=64, K=768, N=192, speed_vs_fp32=1.7, speed_vs_torch_dyn=1.3, **base),
            dict(method="int8 t=6", M=64, K=4096, N=4096, speed_vs_fp32=2.0, speed_vs_torch_dyn=0.9, **base)]
    text = summary(rows)
    assert "Test CPU (AVX2)" in text
    assert "| int8 t=6 | 0.250 | 35.0 | 38.0 | 1.50–1.70× | 2.00× | 1.10–1.30× | 0.90× |" in text
