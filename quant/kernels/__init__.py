"""Compiled and Triton kernels behind the quantized layers.

`cpu/` holds C++ sources compiled on first use (see `cpu/__init__.py`); `triton/`
holds the CUDA kernels, which also run under `TRITON_INTERPRET=1` for tests.
"""
