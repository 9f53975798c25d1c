"""quant/bnb.py: our LLM.int8 against bitsandbytes' Linear8bitLt, and the bnb backend's save/load."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

pytest.importorskip("bitsandbytes")

from quant import BnbConfig, Int8Config, Int8Linear, load_quantized, quantize_, reference, save_quantized  # noqa: E402 (after the skip when bitsandbytes is missing)

torch.set_num_threads(1)
warnings.filterwarnings("ignore", message="MatMul8bitLt")


def test_our_int8_agrees_with_bitsandbytes_linear8bitlt():
    torch.manual_seed(0)
    k, n = 256, 128
    linear = nn.Linear(k, n).requires_grad_(False)
    x = torch.randn(32, k)
    # Two outlier feature dimensions, every entry beyond the threshold: bnb zeroes outlier *entries*
    # before taking a row's absmax while we drop outlier *columns*; with all entries past 6.0 the two agree.
    cols = [3, 77]
    x[:, cols] = torch.sign(x[:, cols]) * (6.0 + 20.0 * x[:, cols].abs())
    # bnb quantizes from float16 copies: give both float16-representable inputs so that it loses nothing.
    x = x.half().float()
    linear.weight.copy_(linear.weight.half().float())
    ours = Int8Linear.from_float(linear, Int8Config(threshold=6.0))
    theirs = quantize_(linear, BnbConfig(kind="int8", threshold=6.0)).eval()
    assert torch.equal(ours.weight_int8_rows(), theirs.weight.data)  # the same int8 weight codes
    ref = linear(x)
    # Our CPU kernel quantizes activations to 8 bits only with AVX-512 VNNI; on AVX2-only CPUs it takes 7 (exact
    # int16 sums, quant/kernels/cpu/int8_gemm.cpp; tested against the reference in test_quant.py), which bnb
    # never does. So bnb is held against the 8-bit math of our reference, which the VNNI kernel equals exactly.
    y_ours = reference.int8_linear(x, ours.weight_int8_rows(), ours.weight_scale, ours.bias, 6.0)
    y_theirs = theirs(x)
    # Both carry int8 rounding noise of ~0.5% of the output (measured). With the same codes, what is left
    # between them is bnb's float16 arithmetic (its outlier matmul and output, relative 2^-11 ~ 5e-4
    # per value, measured 1e-4 overall): 20x below the quantization noise. Another scale, a missing
    # outlier column or a different rounding would show up at the size of the noise itself.
    noise = (y_ours - ref).norm()
    assert (y_ours - y_theirs).norm() < 0.05 * noise
    assert (y_theirs - ref).norm() < 1.1 * noise


@pytest.mark.parametrize("kind", ["int8", "nf4"])
def test_bnb_layers_save_and_load(tmp_path, kind: str):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(128, 64), nn.GELU(), nn.Linear(64, 32))
    quantize_(model, BnbConfig(kind=kind))
    x = torch.randn(4, 128)
    expected = model(x)
    save_quantized(model, tmp_path)
    with torch.device("meta"):
        skeleton = nn.Sequential(nn.Linear(128, 64), nn.GELU(), nn.Linear(64, 32))
    load_quantized(skeleton, tmp_path)
    torch.testing.assert_close(skeleton(x), expected)
