"""Image quality: BRISQUE, a no-reference quality model whose parameters ship in a registry package.

What it measures: how "natural" each frame's local statistics look. BRISQUE (Mittal et al. 2012) normalises
the grey image by its local mean and contrast (MSCN coefficients), fits asymmetric generalised Gaussians to
those coefficients and to the products of neighbouring coefficients (4 directions), at two scales, and maps
the 36 fitted parameters to a distortion score (0 = clean, ~100 = badly distorted) with an RBF support
vector regressor trained on the LIVE database. Noise, blur and blocking all move the statistics away from
those of clean images.

How it differs from the paper's scorer: GameWorld Score uses MUSIQ (a multi-scale image transformer trained on
KonIQ-10k), reported as MUSIQ / 100. MUSIQ weights cannot be downloaded here. BRISQUE's support vector
regressor (770 support vectors) ships in the PyPI package `brisque` 0.2.0 (Apache-2.0); we converted its
`svm.txt` and normalisation table once to `eval/brisque_svr.json` (no pickle at run time) and compute the
features ourselves with numpy + OpenCV, following the package's definitions (7x7 Gaussian window,
sigma 7/6, C = 1/255, a half-size bicubic second scale); on test images our scores agree with the package's
to within 0.02. Our frames are 64x64 voxel renders, scored at their native size (upscaling first made smooth
blobs out of noise and ranked them above clean frames); BRISQUE was trained on photographs, so absolute
values are not comparable with the paper's, only rankings between models scored here.

Normalisation to [0, 1]: score = clip(1 - BRISQUE / 100, 0, 1), averaged over the scored frames (every
`stride`-th frame) and then over videos.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

MODEL_PATH = Path(__file__).with_name("brisque_svr.json")
UPSCALE = 1  # native size: a bicubic upscale turns noise into smooth blobs that BRISQUE likes
SCORER_NAME = "BRISQUE (brisque 0.2.0 SVR, numpy features), 1 - score/100"


@lru_cache(maxsize=1)
def _model() -> dict[str, np.ndarray | float]:
    raw = json.loads(MODEL_PATH.read_text())
    return {
        "gamma": float(raw["gamma"]),
        "rho": float(raw["rho"]),
        "min": np.asarray(raw["feature_min"], np.float64),
        "max": np.asarray(raw["feature_max"], np.float64),
        "coef": np.asarray(raw["dual_coef"], np.float64),
        "sv": np.asarray(raw["support_vectors"], np.float64),
    }


@lru_cache(maxsize=1)
def _alpha_table() -> tuple[np.ndarray, np.ndarray]:
    """rho(alpha) = Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) on a grid; it grows with alpha, so we invert by lookup."""
    alphas = np.arange(0.2, 10.0, 0.001)
    lg = np.vectorize(math.lgamma)
    rho = np.exp(2 * lg(2 / alphas) - lg(1 / alphas) - lg(3 / alphas))
    return alphas, rho


def _aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
    """Fit an asymmetric generalised Gaussian: returns (alpha, mean, sigma_left^2, sigma_right^2)."""
    x = x.ravel()
    left, right = x[x < 0], x[x >= 0]
    left_ms = float(np.mean(left**2)) if left.size else 1e-12
    right_ms = float(np.mean(right**2)) if right.size else 1e-12
    gamma_hat = math.sqrt(left_ms) / max(math.sqrt(right_ms), 1e-12)
    r_hat = float(np.mean(np.abs(x))) ** 2 / max(float(np.mean(x**2)), 1e-12)
    big_r = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alphas, rho = _alpha_table()
    alpha = float(alphas[np.argmin(np.abs(rho - big_r))])
    sigma_l, sigma_r = math.sqrt(left_ms), math.sqrt(right_ms)
    const = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    mean = (sigma_r - sigma_l) * const * math.gamma(2 / alpha) / math.gamma(1 / alpha)
    return alpha, mean, sigma_l**2, sigma_r**2


def _scale_features(gray: np.ndarray) -> list[float]:
    """18 features of one scale: MSCN (alpha, variance) + 4 neighbour products (alpha, mean, var_l, var_r)."""
    window = cv2.getGaussianKernel(7, 7 / 6)
    kernel = window @ window.T
    # Zero padding at the borders, like scipy's convolve2d(mode="same").
    mu = cv2.filter2D(gray, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    second = cv2.filter2D(gray * gray, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    sigma = np.sqrt(np.abs(mu * mu - second))
    mscn = (gray - mu) / (sigma + 1 / 255)
    alpha, _, var_l, var_r = _aggd_fit(mscn)
    feats = [alpha, (var_l + var_r) / 2]
    products = (
        mscn[:, :-1] * mscn[:, 1:],
        mscn[:-1, :] * mscn[1:, :],
        mscn[:-1, :-1] * mscn[1:, 1:],
        mscn[1:, :-1] * mscn[:-1, 1:],
    )
    for product in products:
        feats += list(_aggd_fit(product))
    return feats


def brisque_features(frame: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of one RGB uint8 frame (H, W, 3)."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame (H, W, 3), got shape {frame.shape}")
    rgb = frame.astype(np.float64) / 255.0
    # skimage.color.rgb2gray weights (ITU-R 709), as the brisque package uses.
    gray = rgb @ np.array([0.2125, 0.7154, 0.0721])
    feats = _scale_features(gray)
    half = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    feats += _scale_features(half)
    return np.asarray(feats, np.float64)


def brisque_score(frame: np.ndarray, upscale: int = UPSCALE) -> float:
    """BRISQUE distortion score of one frame: about 0 (clean) to 100 (badly distorted); may leave that range."""
    if upscale > 1:
        frame = cv2.resize(frame, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    model = _model()
    feats = brisque_features(frame)
    scaled = -1 + 2 * (feats - model["min"]) / (model["max"] - model["min"])
    dist2 = np.sum((model["sv"] - scaled) ** 2, axis=1)
    return float(np.dot(model["coef"], np.exp(-model["gamma"] * dist2)) - model["rho"])


def image_quality(frames: np.ndarray, stride: int = 8) -> float:
    """Mean of clip(1 - BRISQUE/100, 0, 1) over every `stride`-th frame of a video (T, H, W, 3) uint8."""
    picked = frames[::stride]
    scores = [min(1.0, max(0.0, 1.0 - brisque_score(f) / 100.0)) for f in picked]
    return float(np.mean(scores))
