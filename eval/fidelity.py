"""Fidelity to the simulator: PSNR and SSIM of each generated frame against the true frame, by horizon.

What it measures (only possible because we own the simulator): the same start scene and the same actions
are played in the simulator, and every generated frame t is compared with the true frame t. The curves
against t show how fast a model drifts from the truth; their means are the headline numbers. SSIM is the
Wang et al. (2004) index on the grey image (11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03),
implemented here with OpenCV; PSNR is over RGB with peak 255 (capped at 60 dB for identical frames).
Frame 0 (the start image the model was given) is left out of the means.
There is no counterpart in GameWorld Score, which never sees the true video.
"""

from __future__ import annotations

import cv2
import numpy as np

PSNR_CAP_DB = 60.0
HORIZONS = (1, 4, 8, 16, 32, 64)
SCORER_NAME = "PSNR (RGB) / SSIM (grey, Gaussian 11x11) vs the simulator"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two RGB uint8 frames, computed on their grey images."""
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    index = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(index.mean())


def fidelity_curves(frames: np.ndarray, truth: np.ndarray) -> dict[str, list[float]]:
    """Per-frame PSNR and SSIM of a generated video against the true one (same length)."""
    if frames.shape != truth.shape:
        raise ValueError(f"generated video {frames.shape} and true video {truth.shape} differ in shape")
    return {
        "psnr": [psnr(f, g) for f, g in zip(frames, truth)],
        "ssim": [ssim(f, g) for f, g in zip(frames, truth)],
    }
