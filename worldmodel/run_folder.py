"""The guard on a training run's output folder: an earlier run is never overwritten by accident.

`worldmodel train --out DIR` writes DIR/log.jsonl, the checkpoints and DIR/pipeline/. A second run into the
same folder without --resume would start a fresh log and overwrite the checkpoints and the result, so it is
refused unless the user says what they mean: --resume (continue it) or --force (start over in it).

A world-stage-only run into a folder that holds only an autoencoder stage is no conflict: that is how the
two stages are meant to be run one after the other (the world stage reads DIR/autoencoder and adds to the log).
"""

from __future__ import annotations

import shutil
from pathlib import Path

# What each stage leaves in the folder, and so would overwrite. The log belongs to a whole run: a run that
# starts with the autoencoder stage starts a fresh one.
STAGE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "autoencoder": ("log.jsonl", "ckpt_ae", "autoencoder"),
    "world": ("ckpt_world", "pipeline"),
    "pitch": ("ckpt_pitch", "pitch", "pipeline"),
}


class RunFolderInUse(ValueError):
    """The output folder holds an earlier run, and neither --resume nor --force was given."""


def outputs_of(stages: tuple[str, ...]) -> list[str]:
    """The names in the folder that a fresh run of `stages` replaces."""
    replaced = set(stages) | ({"world"} if "autoencoder" in stages else set())  # an autoencoder makes a new world
    names = [name for stage in STAGE_OUTPUTS if stage in replaced for name in STAGE_OUTPUTS[stage]]
    return list(dict.fromkeys(names))


def check_run_folder(out: Path, stages: tuple[str, ...], resume: bool, force: bool) -> None:
    """Refuse to start a fresh run in a folder that holds one (see the module docstring)."""
    if out.exists() and not out.is_dir():
        raise RunFolderInUse(f"{out} exists and is not a folder")
    if resume or force or not out.is_dir():
        return
    found = [name for name in outputs_of(stages) if (out / name).exists()]
    if found:
        raise RunFolderInUse(
            f"{out} holds an earlier run ({', '.join(found)}); pass --resume to continue it, --force to start "
            "over in it (its log, checkpoints and pipeline are replaced), or choose another --out"
        )


def clear_for_fresh_run(out: Path, stages: tuple[str, ...]) -> None:
    """Remove what a fresh run of `stages` replaces, so nothing of the old run survives to be resumed by mistake.
    (The latent cache stays: it is keyed on what it was made from and reused only when that matches.)"""
    for name in outputs_of(stages):
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
