"""Aesthetic quality: a hand-made substitute, NOT the LAION aesthetic predictor.

What it measures: four classic photographic-aesthetics features (Ke, Tang & Jing 2006; Hasler & Suesstrunk
2003), each mapped to [0, 1]; per frame, score = simplicity x mean(exposure, contrast, colourfulness), then
averaged over the video (simplicity gates the rest: without it, random noise, which is bright, contrasty and
colourful, outscored true frames):
- exposure: 1 - 2 |mean luminance - 0.5| (neither black nor blown out);
- contrast: RMS contrast of the luminance / 0.25, capped at 1;
- colourfulness: Hasler-Suesstrunk M / 100, capped at 1;
- simplicity: the share of the luminance's spectral energy in the lowest quarter of spatial frequencies
  (clean, structured pictures concentrate energy there; noise spreads it flat).

How it differs from the paper's scorer: GameWorld Score (after VBench) runs the LAION aesthetic predictor, a
linear head on CLIP ViT-L/14 image features trained on human ratings of photographs, and reports score / 10.
Neither CLIP nor the LAION head can be downloaded here, so this number is a proxy of our own design: it has
never been fitted to human ratings, and should only be compared between models scored by this code.
"""

from __future__ import annotations

import numpy as np

SCORER_NAME = "hand-made proxy (exposure, contrast, colourfulness, simplicity), not LAION"


def frame_aesthetic(frame: np.ndarray) -> float:
    rgb = frame.astype(np.float64) / 255.0
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    exposure = 1.0 - 2.0 * abs(float(luma.mean()) - 0.5)
    contrast = min(1.0, float(luma.std()) / 0.25)
    r, g, b = (frame[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    colourfulness = min(1.0, float(colourful) / 100.0)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(luma - luma.mean()))) ** 2
    h, w = luma.shape
    fy, fx = np.meshgrid(np.fft.fftshift(np.fft.fftfreq(h)), np.fft.fftshift(np.fft.fftfreq(w)), indexing="ij")
    low = np.hypot(fy, fx) <= 0.125  # a quarter of the Nyquist radius (0.5)
    simplicity = float(spectrum[low].sum() / max(spectrum.sum(), 1e-12))
    return float(simplicity * np.mean([exposure, contrast, colourfulness]))


def aesthetic_quality(frames: np.ndarray, stride: int = 4) -> float:
    """Mean proxy aesthetic score over every `stride`-th frame of a video (T, H, W, 3) uint8."""
    return float(np.mean([frame_aesthetic(f) for f in frames[::stride]]))
