"""quant/: int8 and LUT-GEMM layers against their references, quantize_, saving and loading.

The compiled CPU kernels build on first use (~20 s each, then cached).
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from quant import (
    Int8Config,
    Int8Linear,
    LutConfig,
    LutLinear,
    config_from_dict,
    config_to_dict,
    load_quantized,
    load_quantized_state_dict,
    prepare_quantized_,
    quant_config_of,
    quantize_,
    reference,
    save_quantized,
)
from quant.int8_layout import pack_int8, packed_columns, unpack_int8
from quant.kernels.cpu import load as load_cpu_kernel
from quant.lut import (
    codes_to_signs,
    compress_scales,
    compressed_bcq,
    decompress_scales,
    fit_bcq,
    pack_codes,
    rtn_quantize,
    rtn_to_bcq,
    signs_to_codes,
    unpack_codes,
)

torch.set_num_threads(1)


def sqnr_db(ref: torch.Tensor, y: torch.Tensor) -> float:
    return 10.0 * torch.log10(ref.pow(2).mean() / (ref - y).pow(2).mean()).item()


def gaussian_linear(k: int, n: int, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    linear = nn.Linear(k, n)
    nn.init.normal_(linear.weight, std=k**-0.5)
    return linear.requires_grad_(False)


def with_outliers(m: int, k: int, columns: int, scale: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=g)
    x[:, torch.randperm(k, generator=g)[:columns]] *= scale
    return x


def int8_kernel():
    kernel = load_cpu_kernel("int8_gemm")
    if kernel is None:
        pytest.skip("the int8 CPU kernel could not be built here")
    return kernel


# ------------------------------------------------------------------------ configs


def test_configs_validate_and_round_trip_through_json():
    with pytest.raises(ValueError, match="bits"):
        LutConfig(bits=5)
    with pytest.raises(ValueError, match="group_size"):
        LutConfig(group_size=132)
    with pytest.raises(ValueError, match="threshold"):
        Int8Config(threshold=-1.0)
    for cfg in (Int8Config(threshold=0.0), LutConfig(bits=3, group_size=64, method="rtn", modules=("a.b", "c"))):
        assert config_from_dict(json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        config_from_dict({"type": "int8", "threshold": 6.0, "bits": 4})


# ------------------------------------------------------------------------ int8


def test_int8_packing_round_trips_and_reads_columns():
    w = torch.randint(-127, 128, (37, 22), dtype=torch.int8)
    packed = pack_int8(w)
    assert packed.shape == (3, 6, 16, 4)
    assert torch.equal(unpack_int8(packed, 37, 22), w)
    cols = torch.tensor([0, 5, 21])
    assert torch.equal(packed_columns(packed, cols, 37), w[:, cols])


@pytest.mark.parametrize("use_vnni", [1, 0], ids=["avx512vnni", "avx2"])
@pytest.mark.parametrize("threshold", [0.0, 6.0])
def test_int8_cpu_kernel_equals_reference(use_vnni: int, threshold: float):
    kernel = int8_kernel()
    if use_vnni and kernel.isa() != "avx512vnni":
        pytest.skip("this CPU has no AVX-512 VNNI")
    qmax = 127 if use_vnni else 63  # the AVX2 path uses exact 7-bit activations
    for m, k, n in [(1, 8, 16), (7, 130, 33), (64, 256, 96)]:
        layer = Int8Linear.from_float(gaussian_linear(k, n), Int8Config(threshold))
        x = with_outliers(m, k, columns=2, scale=20.0)
        y = kernel.int8_linear(x, layer.weight_int8, layer.weight_scale, layer.weight_sum, layer.bias, n, threshold, use_vnni)
        ref = reference.int8_linear(x, layer.weight_int8_rows(), layer.weight_scale, layer.bias, threshold, qmax)
        # The integer products are exact; only the float epilogue may round differently.
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_vnni", [1, 0], ids=["avx512vnni", "avx2"])
def test_int8_cpu_kernel_edges_equal_reference(use_vnni: int):
    """Ragged shapes, many outlier columns, no bias, an all-zero row, and more rows than one chunk of tiles."""
    kernel = int8_kernel()
    if use_vnni and kernel.isa() != "avx512vnni":
        pytest.skip("this CPU has no AVX-512 VNNI")
    qmax = 127 if use_vnni else 63
    # (M, K, N, outlier columns, bias): M not a multiple of the row tile, N not of 16, K not of 4,
    # outliers in a third of the columns, M past one chunk of rows (64 at K = 4096).
    for m, k, n, columns, bias in [(5, 3, 7, 1, True), (33, 131, 50, 40, False), (70, 4096, 20, 16, True),
                                   (13, 64, 100, 0, False)]:
        linear = gaussian_linear(k, n)
        if not bias:
            linear.bias = None
        layer = Int8Linear.from_float(linear, Int8Config(6.0))
        x = with_outliers(m, k, columns=columns, scale=20.0)
        x[m // 2] = 0.0  # a zero row: scale 0, the output is the bias plus nothing
        bias_arg = layer.bias if bias else torch.empty(0)
        y = kernel.int8_linear(x, layer.weight_int8, layer.weight_scale, layer.weight_sum, bias_arg, n, 6.0, use_vnni)
        ref = reference.int8_linear(x, layer.weight_int8_rows(), layer.weight_scale, layer.bias, 6.0, qmax)
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)


def test_int8_sqnr_floor_on_gaussian_data():
    linear = gaussian_linear(256, 128)
    layer = Int8Linear.from_float(linear, Int8Config())
    x = torch.randn(64, 256)
    assert sqnr_db(linear(x), layer(x)) >= 30.0
    # The 7-bit AVX2 path loses ~6 dB of activation precision and must still clear the floor.
    kernel = int8_kernel()
    y7 = kernel.int8_linear(x, layer.weight_int8, layer.weight_scale, layer.weight_sum, layer.bias, 128, 6.0, 0)
    assert sqnr_db(linear(x), y7) >= 30.0


def test_llm_int8_decomposition_cuts_the_error_at_least_4x():
    linear = gaussian_linear(256, 128)
    x = with_outliers(64, 256, columns=3, scale=30.0)  # a few large-magnitude feature dimensions
    ref = linear(x)
    err_plain = (Int8Linear.from_float(linear, Int8Config(threshold=0.0))(x) - ref).pow(2).mean()
    err_decomposed = (Int8Linear.from_float(linear, Int8Config(threshold=6.0))(x) - ref).pow(2).mean()
    assert err_plain >= 4.0 * err_decomposed


def test_int8_layer_keeps_leading_dims_and_dtype():
    layer = Int8Linear.from_float(gaussian_linear(32, 20), Int8Config())
    x = torch.randn(2, 3, 32, dtype=torch.float64)
    y = layer(x)
    assert y.shape == (2, 3, 20) and y.dtype == torch.float64
    assert layer.weight_int8.dtype == torch.int8


def test_int8_weight_memory():
    layer = Int8Linear.from_float(gaussian_linear(256, 128), Int8Config())
    weight_bytes = sum(t.numel() * t.element_size() for name, t in layer.state_dict().items() if name != "bias")
    assert weight_bytes / (4 * 256 * 128) <= 0.27  # int8 + a scale and a row sum per channel


# ------------------------------------------------------------------------ LUT / BCQ


def test_rtn_to_bcq_conversion_is_exact():
    # Exact in the float BCQ form, before the scales are compressed to 8-bit codes.
    w = torch.randn(24, 256)
    for bits in (2, 3, 4):
        q, scale, zero = rtn_quantize(w, bits, 64)
        uniform = ((q.float().reshape(24, 4, 64) - zero[..., None]) * scale[..., None]).reshape(24, 256)
        signs, alpha, offset = rtn_to_bcq(q, scale, zero, bits)
        assert set(signs.unique().tolist()) <= {-1, 1}
        torch.testing.assert_close(reference.bcq_dequantize(signs, alpha, offset), uniform, rtol=0, atol=1e-6)


def test_bcq_fit_beats_rtn_and_refinement_helps():
    w = torch.randn(32, 256)
    for bits in (2, 3):
        q, scale, zero = rtn_quantize(w, bits, 128)
        rtn = reference.bcq_dequantize(*rtn_to_bcq(q, scale, zero, bits))
        greedy = reference.bcq_dequantize(*fit_bcq(w, bits, 128, iterations=0))
        refined = reference.bcq_dequantize(*fit_bcq(w, bits, 128, iterations=8))
        assert sqnr_db(w, refined) > sqnr_db(w, greedy)
        assert sqnr_db(w, refined) > sqnr_db(w, rtn)


@pytest.mark.parametrize("method", ["bcq", "rtn"])
def test_compressed_scales_lose_almost_nothing_against_the_float_bcq_form(method: str):
    # Rows of very different magnitude: the per-channel second-level scale must follow them.
    torch.manual_seed(0)
    w = torch.randn(64, 256) * torch.exp(2 * torch.randn(64, 1))
    for bits in (2, 3, 4):
        if method == "rtn":
            signs, alpha, offset = rtn_to_bcq(*rtn_quantize(w, bits, 128), bits)
        else:
            signs, alpha, offset = fit_bcq(w, bits, 128, iterations=4)
        float_form = reference.bcq_dequantize(signs, alpha, offset)
        compressed_signs, *compact = compressed_bcq(w, alpha, offset)
        compressed = reference.bcq_dequantize(compressed_signs, *decompress_scales(*compact))
        # Measured: at most 0.005 dB lost (8-bit codes per group, a bfloat16 scale per channel).
        assert sqnr_db(w, compressed) >= sqnr_db(w, float_form) - 0.05
        # The scales themselves: 8-bit relative to each channel's largest, whatever its magnitude.
        alpha_q, offset_q = decompress_scales(*compact)
        assert sqnr_db(alpha, alpha_q) >= 40.0 and sqnr_db(offset, offset_q) >= 30.0


def test_compress_scales_codes_and_padding():
    alpha = torch.tensor([[[0.0, 2.0, 1e-30]], [[1.0, 0.5, 3e-30]]])  # (G=2, bits=1, N=3)
    offset = torch.tensor([[0.0, -4.0, 1e-30], [0.0, 2.0, -2e-30]])
    alpha_code, alpha_scale, offset_code, offset_scale = compress_scales(alpha, offset)
    assert alpha_code.dtype == torch.uint8 and offset_code.dtype == torch.int8 and alpha_scale.dtype == torch.bfloat16
    assert alpha_code[..., 1].max() <= 255 and alpha_code[..., 1].max() >= 250  # the largest alpha takes a top code
    assert offset_code[:, 1].tolist()[0] <= -125  # the largest |offset| too, sign kept
    assert alpha_code[..., 2].max() >= 250  # tiny channels keep their resolution (per-channel scale)
    alpha_q, offset_q = decompress_scales(alpha_code, alpha_scale, offset_code, offset_scale)
    torch.testing.assert_close(alpha_q, alpha, rtol=0.01, atol=0)
    torch.testing.assert_close(offset_q, offset, rtol=0.01, atol=0)
    with pytest.raises(ValueError, match=">= 0"):
        compress_scales(-alpha, offset)


def test_code_packing_round_trips():
    signs = torch.where(torch.rand(3, 70, 40) > 0.5, 1, -1).to(torch.int8)
    codes = signs_to_codes(signs)
    assert torch.equal(codes_to_signs(codes), signs)
    planes = pack_codes(codes)
    assert planes.shape == (2, 10, 3, 32)
    assert torch.equal(unpack_codes(planes, 70), codes)


def test_lut_with_exact_tables_equals_dequantize_then_matmul():
    linear = gaussian_linear(256, 70)
    layer = LutLinear.from_float(linear, LutConfig(bits=3, group_size=64))
    x = torch.randn(5, 256)
    signs, alpha, offset = layer.bcq()  # the stored (compressed) scales, decompressed
    by_lookup = reference.lut_linear(x, layer.codes(), alpha, offset, layer.bias)
    by_dequant = nn.functional.linear(x, layer.dequantized_weight(), layer.bias)
    torch.testing.assert_close(by_lookup, by_dequant, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_lut_cpu_kernel_with_int8_tables_tracks_dequantize_then_matmul(bits: int):
    if load_cpu_kernel("lut_gemm") is None:
        pytest.skip("the LUT CPU kernel could not be built here")
    linear = gaussian_linear(256, 100)
    layer = LutLinear.from_float(linear, LutConfig(bits=bits, method="rtn"))
    for m in (1, 3, 16):
        x = torch.randn(m, 256)
        by_dequant = nn.functional.linear(x, layer.dequantized_weight(), layer.bias)
        # 7-bit tables: one rounding per table entry, scaled per group
        # of activations (measured 35.6-37.2 dB at groups of 128), far above the weight quantization noise (10-20 dB).
        assert sqnr_db(by_dequant, layer(x)) >= 32.0


def test_lut_cpu_kernel_int16_and_int32_sums_hold_at_their_bounds():
    """The largest group (1024 inputs) with every lookup at the table's extreme: the biased int16 group sums reach
    ±16128 and the int32 plane sums 4 · 16128 · alpha code; the result must still track dequantize-then-matmul."""
    if load_cpu_kernel("lut_gemm") is None:
        pytest.skip("the LUT CPU kernel could not be built here")
    layer = LutLinear.from_float(gaussian_linear(1024, 70), LutConfig(bits=4, group_size=1024, method="rtn"))
    layer.planes.fill_(0xFF)  # every code 15: each lookup reads T[15] = Σ_j x_j, the table's largest entry
    for sign in (1.0, -1.0):
        x = torch.full((3, 1024), sign)  # exact tables: T[15] = ±4 -> ±63
        x[1] *= 0.5
        by_dequant = nn.functional.linear(x, layer.dequantized_weight(), layer.bias)
        torch.testing.assert_close(layer(x), by_dequant, rtol=1e-4, atol=1e-3)


def test_lut_cpu_kernel_avx512_and_avx2_paths_agree_exactly():
    kernel = load_cpu_kernel("lut_gemm")
    if kernel is None or kernel.isa() != "avx512bw":
        pytest.skip("needs the LUT CPU kernel on a CPU with AVX-512BW")
    layer = LutLinear.from_float(gaussian_linear(256, 130), LutConfig(bits=3, method="rtn"))
    x = torch.randn(5, 256)
    args = (x, layer.planes, layer.alpha_code, layer.alpha_scale, layer.offset_code, layer.offset_scale, layer.bias, 130,
            layer.cfg.group_size)
    assert torch.equal(kernel.lut_linear(*args, 0), kernel.lut_linear(*args, 1))  # same integer sums


@pytest.mark.parametrize("bits,floor", [(4, 18.0), (3, 12.0), (2, 7.0)])
def test_lut_sqnr_floor_against_float(bits: int, floor: float):
    linear = gaussian_linear(256, 96)
    layer = LutLinear.from_float(linear, LutConfig(bits=bits))
    x = torch.randn(16, 256)
    assert sqnr_db(linear(x), layer(x)) >= floor  # measured: 4 bits ~20, 3 bits ~15, 2 bits ~10 dB


def test_lut_weight_memory():
    k, n = 256, 128
    for bits, ceiling in [(4, 0.14), (3, 0.11), (2, 0.075)]:
        layer = LutLinear.from_float(gaussian_linear(k, n), LutConfig(bits=bits, group_size=128, method="rtn"))
        weight_bytes = sum(t.numel() * t.element_size() for name, t in layer.state_dict().items() if name != "bias")
        bits_per_weight = bits + (bits + 1) * 8 / 128 + 2 * 16 / k  # the formula in quant/lut.py's docstring
        assert weight_bytes * 8 == bits_per_weight * k * n
        assert weight_bytes / (4 * k * n) <= ceiling


# ------------------------------------------------------------------------ quantize_, save, load


class TinyBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(12, 128)  # in_features 12: no LUT group fits
        self.mlp = nn.Sequential(nn.Linear(128, 256), nn.GELU(), nn.Linear(256, 128))
        self.head = nn.Linear(128, 8, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        return self.head(h + self.mlp(h))


def test_quantize_swaps_in_place_with_filter_and_records_modules():
    model = TinyBlock()
    quantize_(model, Int8Config(), filter_fn=lambda module, name: not name.startswith("head"))
    assert isinstance(model.mlp[0], Int8Linear) and type(model.head) is nn.Linear
    cfg = quant_config_of(model)
    assert cfg == Int8Config(modules=("embed", "mlp.0", "mlp.2"))
    assert quant_config_of(TinyBlock()) is None


def test_lut_skips_layers_whose_shape_does_not_fit():
    model = TinyBlock()
    with pytest.warns(UserWarning, match="embed"):
        quantize_(model, LutConfig(bits=4))
    assert type(model.embed) is nn.Linear and isinstance(model.head, LutLinear)


@pytest.mark.parametrize("cfg", [Int8Config(), LutConfig(bits=3, group_size=64)], ids=["int8", "lut3"])
def test_save_and_load_on_a_meta_skeleton(tmp_path, cfg):
    model = TinyBlock()
    quantize_(model, cfg, filter_fn=lambda module, name: name != "embed")
    x = torch.randn(4, 12)
    expected = model(x)
    save_quantized(model, tmp_path)
    saved = json.loads((tmp_path / "quant_config.json").read_text())
    assert saved["modules"] == ["mlp.0", "mlp.2", "head"]
    with torch.device("meta"):
        skeleton = TinyBlock()  # no float weights are ever allocated
    load_quantized(skeleton, tmp_path)
    assert not any(t.is_meta for t in skeleton.state_dict().values())
    torch.testing.assert_close(skeleton(x), expected, rtol=0, atol=0)


def test_first_format_lut_checkpoints_still_load():
    # Format 1 stored float16 `alpha` (G, bits, Np) and `offset` (G, Np); a negative alpha was legal.
    layer = LutLinear.from_float(gaussian_linear(256, 70), LutConfig(bits=3, group_size=128))
    x = torch.randn(4, 256)
    expected = layer(x)
    alpha, offset = layer.scales()
    old = {"planes": layer.planes.clone(), "alpha": alpha.half(), "offset": offset.half(), "bias": layer.bias}
    # Flip bit-plane 1 of group 1 (alpha and its signs together): the same weights, a negative alpha.
    codes = unpack_codes(old["planes"], 128)
    codes[1, :, 32:] ^= 0x0F
    old["planes"] = pack_codes(codes)
    old["alpha"][1, 1] = -old["alpha"][1, 1]
    for assign in (False, True):
        loaded = LutLinear(256, 70, True, LutConfig(bits=3, group_size=128))
        loaded.load_state_dict(dict(old), assign=assign)
        assert loaded.alpha_code.dtype == torch.uint8 and "alpha" not in loaded.state_dict()
        assert sqnr_db(expected, loaded(x)) >= 40.0  # scales re-compressed from float16: no visible change


def test_loading_float_into_quantized_or_back_fails_clearly():
    float_model = TinyBlock()
    quantized = quantize_(TinyBlock(), Int8Config())
    with pytest.raises(ValueError, match="quantized weights but the model has a float"):
        load_quantized_state_dict(TinyBlock(), quantized.state_dict())
    with pytest.raises(ValueError, match="float weights but the model has Int8Linear"):
        load_quantized_state_dict(quantize_(TinyBlock(), Int8Config()), float_model.state_dict())
    with pytest.raises(RuntimeError, match="float weights but this layer is Int8Linear"):
        quantize_(TinyBlock(), Int8Config()).load_state_dict(float_model.state_dict())


def test_prepare_quantized_refuses_unknown_module_names():
    with pytest.raises(ValueError, match="not float nn.Linear"):
        prepare_quantized_(TinyBlock(), Int8Config(modules=("nope",)))
