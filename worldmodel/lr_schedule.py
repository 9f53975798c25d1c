"""The learning-rate schedule every trainer here uses: a linear warmup, then a cosine down to a floor.

`progress` runs from 0 to 1 over the run. A trainer with a step budget passes steps done / steps; one with
a time budget passes the share of the time used (the IDM), and one with both the larger of the two.
"""

from __future__ import annotations

import math


def warmup_cosine(base_lr: float, progress: float, min_ratio: float, step: int = 0, warmup: int = 0) -> float:
    """base_lr * (step + 1) / warmup for the first `warmup` steps, then a cosine from base_lr (progress 0)
    down to base_lr * min_ratio (progress 1 and beyond)."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return base_lr * (min_ratio + (1 - min_ratio) * cos)
