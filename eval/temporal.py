"""Temporal consistency: do the frames keep looking like the same scene from one to the next?

What it measures: every frame is embedded with a feature extractor, and we average (a) the cosine similarity
of each frame to the previous frame and (b) its similarity to the first frame, then take the mean of the two,
like GameWorld Score (after VBench's subject/background consistency). Features are non-negative, so each
similarity and the score lie in [0, 1].

The feature extractor is ours and ships with the IDM: the per-frame trunk of the inverse dynamics model
(eval/idm.py, assets/idm: two 3x3 convolutions trained on our simulator's clips to read motion and actions),
its ReLU feature maps average-pooled to a 4x4 grid (512 numbers a frame), so the embedding keeps where
things are as well as what they look like.

How it differs from the paper's scorer: GameWorld Score embeds frames with CLIP ViT-B/32 (semantic features
from 400M image-text pairs). CLIP cannot be downloaded here, and our trunk is a small, low-level encoder
trained on our world only: it reacts to layout and texture changes more than to meaning, so our values sit
on a different scale from the paper's 0.94 - 0.97.
"""

from __future__ import annotations

import numpy as np

SCORER_NAME = "IDM trunk features (assets/idm), cosine to previous + first frame"


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays."""
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)


def consistency_from_features(features: np.ndarray) -> float:
    """Mean of (similarity to previous frame, similarity to first frame) over frames 1..T-1, features (T, D)."""
    if len(features) < 2:
        raise ValueError(f"temporal consistency needs at least 2 frames, got {len(features)}")
    to_previous = cosine_rows(features[1:], features[:-1])
    to_first = cosine_rows(features[1:], np.broadcast_to(features[:1], features[1:].shape))
    return float(np.clip((to_previous.mean() + to_first.mean()) / 2, 0.0, 1.0))


def temporal_consistency(frames: np.ndarray, model=None) -> float:  # an IDM; imported lazily
    """Temporal consistency of a video (T, H, W, 3) uint8 with the shipped IDM's trunk (or `model`'s)."""
    from eval.idm.model import InverseDynamicsModel, embed_frames

    model = model if model is not None else InverseDynamicsModel.from_pretrained()
    return consistency_from_features(embed_frames(model, frames))
