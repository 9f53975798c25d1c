"""Frames laid out as a PNG strip, a row per source (the model above the simulator, say): the pictures in the
README and the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data.files import atomic_path


def save_row(path: Path, rows: list[list[np.ndarray]], scale: int = 2, gap: int = 2, labels: list[str] | None = None) -> None:
    """Rows of frames as one PNG (each frame scaled up `scale` times, nearest neighbour), written atomically."""
    from PIL import Image, ImageDraw

    h, w = rows[0][0].shape[:2]
    h, w = h * scale, w * scale
    label_w = 44 if labels else 0
    cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (label_w + cols * (w + gap) - gap, len(rows) * (h + gap) - gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        if labels:
            draw.text((2, i * (h + gap) + h // 2 - 5), labels[i], fill=(0, 0, 0))
        for j, frame in enumerate(row):
            img = Image.fromarray(frame).resize((w, h), Image.NEAREST)
            canvas.paste(img, (label_w + j * (w + gap), i * (h + gap)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
