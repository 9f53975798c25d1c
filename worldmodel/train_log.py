"""A run's log: OUT/log.jsonl (one JSON object a line: losses, evals) and OUT/loss.png, its plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from data.files import atomic_path


def append_log(out: Path, row: dict[str, Any]) -> None:
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def read_log(out: Path) -> list[dict[str, Any]]:
    path = out / "log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_losses(out: Path) -> None:
    """OUT/loss.png: training losses per stage, and the world model's eval errors with true / null / mirrored actions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(out)
    if not rows:
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, stage in zip(axes[:2], ("autoencoder", "world")):
        pts = [(r["step"], r["loss"]) for r in rows if r.get("stage") == stage and "loss" in r]
        if pts:
            ax.plot(*zip(*pts), lw=0.8)
            ax.set_yscale("log")
        ax.set_title(f"{stage} training loss")
        ax.set_xlabel("step")
    ax = axes[2]
    evals = [r for r in rows if r.get("stage") == "world" and "eval_true" in r]
    for name in ("eval_true", "eval_null", "eval_mirror", "eval_copy"):
        if evals:
            ax.plot([r["step"] for r in evals], [r[name] for r in evals], label=name.removeprefix("eval_"), marker=".")
    ax.set_title("next-frame latent MSE by action given")
    ax.set_xlabel("step")
    if evals:
        ax.legend()
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.14, top=0.9, wspace=0.25)  # tight_layout costs seconds
    with atomic_path(out / "loss.png") as tmp:
        fig.savefig(tmp, dpi=80, format="png")  # the temp name does not end in .png: say the format
    plt.close(fig)
