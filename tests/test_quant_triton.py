"""quant/kernels/triton: each Triton kernel against its reference, on CPU under TRITON_INTERPRET=1.

Triton picks the interpreter when a kernel is decorated (and checks again when it runs),
so this file switches it on before importing the kernel modules and leaves it on for the
process; grids stay tiny because interpreted kernels are slow. To run the
same tests compiled on a CUDA machine: TRITON_INTERPRET=0 pytest tests/test_quant_triton.py
(the speed test at the end runs only then).
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
INTERPRET = os.environ["TRITON_INTERPRET"] == "1"

import pytest  # noqa: E402 (TRITON_INTERPRET is set first: triton reads it at import)
import torch  # noqa: E402 (TRITON_INTERPRET is set first: triton reads it at import)
from torch import nn  # noqa: E402 (TRITON_INTERPRET is set first: triton reads it at import)

pytest.importorskip("triton")

from quant import Int8Config, Int8Linear, LutConfig, LutLinear, reference  # noqa: E402 (TRITON_INTERPRET is set first: triton reads it at import)
from quant.kernels.triton.int8_matmul import int8_linear_triton, int8_matmul_triton  # noqa: E402 (TRITON_INTERPRET is set first: triton reads it at import)
from quant.kernels.triton.lut_matmul import lut_linear_triton  # noqa: E402 (TRITON_INTERPRET is set first: triton reads it at import)

DEVICE = "cuda" if torch.cuda.is_available() and not INTERPRET else "cpu"


def test_int8_matmul_kernel_equals_integer_matmul():
    torch.manual_seed(0)
    m, k, n = 5, 40, 37
    layer = Int8Linear.from_float(nn.Linear(k, n), Int8Config())
    xq = torch.randint(-127, 128, (m, k), dtype=torch.int8)
    sx = torch.rand(m) + 0.5
    y = int8_matmul_triton(xq.to(DEVICE), sx.to(DEVICE), layer.weight_int8.to(DEVICE), layer.weight_scale.to(DEVICE),
                           layer.bias.to(DEVICE), n, block=(16, 16, 32)).cpu()
    acc = xq.double() @ layer.weight_int8_rows().double().t()
    ref = (acc * (sx[:, None] * layer.weight_scale[None, :]).double() + layer.bias.double()).float()
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-4)


def test_int8_linear_triton_equals_the_llm_int8_reference():
    torch.manual_seed(0)
    m, k, n = 6, 48, 20
    layer = Int8Linear.from_float(nn.Linear(k, n), Int8Config())
    x = torch.randn(m, k)
    x[:, 5] *= 20.0  # one outlier column goes through the fp path
    y = int8_linear_triton(x.to(DEVICE), layer.weight_int8.to(DEVICE), layer.weight_scale.to(DEVICE),
                           layer.bias.to(DEVICE), n, 6.0, block=(16, 16, 32)).cpu()
    ref = reference.int8_linear(x, layer.weight_int8_rows(), layer.weight_scale, layer.bias, 6.0)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bits", [2, 3])
def test_lut_kernel_equals_dequantize_then_matmul(bits: int):
    torch.manual_seed(0)
    m, k, n = 3, 64, 70  # 70 channels: two 64-channel blocks, the second partial
    layer = LutLinear.from_float(nn.Linear(k, n), LutConfig(bits=bits, group_size=32))
    x = torch.randn(m, k)
    alpha, offset = layer.scales()
    y = lut_linear_triton(x.to(DEVICE), layer.planes.to(DEVICE), alpha.to(DEVICE), offset.to(DEVICE),
                          layer.bias.to(DEVICE), n, 32, block=(4, 32)).cpu()
    ref = nn.functional.linear(x, layer.dequantized_weight(), layer.bias)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)  # exact float tables


@pytest.mark.gpu
def test_triton_int8_is_faster_than_fp32_on_cuda():
    if not torch.cuda.is_available() or INTERPRET:
        pytest.skip("needs a CUDA device and compiled (not interpreted) Triton")
    import triton.testing

    linear = nn.Linear(4096, 4096).cuda()
    layer = Int8Linear.from_float(linear, Int8Config(threshold=6.0)).cuda()
    x = torch.randn(2048, 4096, device="cuda")
    with torch.no_grad():
        y, ref = layer(x), linear(x)
        assert 10 * torch.log10(ref.pow(2).mean() / (y - ref).pow(2).mean()) >= 30.0
        t_int8 = triton.testing.do_bench(lambda: layer(x))
        t_fp32 = triton.testing.do_bench(lambda: linear(x))  # fp32 matmul (TF32 off by default)
    assert t_int8 < t_fp32
