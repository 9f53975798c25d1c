"""Pluggable paper scorers: where a user has GameWorld Score's original weights, use them instead of ours.

GameWorld Score's scorers and the files they load:
| dimension             | paper scorer                     | weights file                         | loader needs        |
|-----------------------|----------------------------------|--------------------------------------|---------------------|
| image quality         | MUSIQ (SPAQ), every frame        | musiq_spaq_ckpt-358bb6af.pth         | pyiqa               |
| aesthetic quality     | LAION aesthetic head on CLIP L/14| sa_0_4_vit_l_14_linear.pth + CLIP    | open_clip_torch     |
| temporal consistency  | CLIP ViT-B/32                    | ViT-B-32.pt                          | open_clip_torch     |
| motion smoothness     | AMT-S                            | amt-s.pth                            | the AMT repository  |
| keyboard/mouse        | VPT IDM                          | 4x_idm.model + 4x_idm.weights        | the VPT repository  |
| 3D consistency        | DROID-SLAM                       | droid.pth                            | droid_backends (CUDA)|

None of these weights can be downloaded here, and none are needed: every dimension has an offline scorer of
ours. A flag (`--musiq PATH`, `--laion PATH`, `--clip PATH`, `--amt PATH`, `--vpt-idm PATH`, `--droid PATH`)
names a weights file; `resolve_scorers` checks that the file exists and that the package its loader needs is
importable, and fails with a clear error otherwise. The loaders are thin wrappers around those packages'
own APIs; the report's "scorer" column says which scorer produced each number.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FrameScorer = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class PaperScorer:
    flag: str  # command-line flag, without the dashes
    dimension: str  # the report key it replaces
    name: str  # what the report prints
    package: str  # module its loader imports
    install_hint: str


PAPER_SCORERS: tuple[PaperScorer, ...] = (
    PaperScorer("musiq", "image_quality", "MUSIQ, SPAQ checkpoint (paper)", "pyiqa", "pip install pyiqa"),
    PaperScorer("laion", "aesthetic", "LAION aesthetic (paper)", "open_clip", "pip install open_clip_torch"),
    PaperScorer("clip", "temporal", "CLIP ViT-B/32 (paper)", "open_clip", "pip install open_clip_torch"),
    PaperScorer("amt", "smoothness", "AMT-S (paper)", "amt", "clone the AMT repository onto PYTHONPATH"),
    PaperScorer("vpt_idm", "controllability", "VPT IDM (paper)", "lib.policy", "clone openai/Video-Pre-Training onto PYTHONPATH"),
    PaperScorer("droid", "consistency_3d", "DROID-SLAM (paper)", "droid_backends", "build DROID-SLAM (needs CUDA)"),
)


class ScorerUnavailable(RuntimeError):
    """A paper scorer was asked for but its weights or its loader's package are missing."""


def add_arguments(parser) -> None:  # argparse parser or group
    group = parser.add_argument_group("paper scorers (optional; each replaces our offline scorer for one dimension)")
    for s in PAPER_SCORERS:
        group.add_argument(
            f"--{s.flag.replace('_', '-')}", type=Path, default=None, metavar="PATH",
            help=f"weights for {s.name} (loader needs `{s.package}`: {s.install_hint})",
        )


def _musiq(path: Path) -> FrameScorer:
    import pyiqa  # type: ignore[import-not-found]
    import torch

    # GameWorld Score loads MUSIQ with its SPAQ checkpoint (musiq_spaq_ckpt-358bb6af.pth), not KonIQ's.
    metric = pyiqa.create_metric("musiq-spaq", pretrained_model_path=str(path), device="cpu")

    def score(frame: np.ndarray) -> float:
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
        return float(metric(x)) / 100.0  # GameWorld reports MUSIQ / 100

    return score


def _laion(path: Path) -> FrameScorer:
    raise ScorerUnavailable(
        f"--laion {path}: the LAION head also needs CLIP ViT-L/14 weights; wire them in eval/scorers.py (_laion)"
    )


def _not_wired(flag: str) -> Callable[[Path], FrameScorer]:
    def load(path: Path) -> FrameScorer:
        raise ScorerUnavailable(
            f"--{flag} {path}: the package is installed, but this scorer works on whole videos and is not wired into "
            "the suite yet; eval/scorers.py shows where"
        )

    return load


LOADERS: dict[str, Callable[[Path], FrameScorer]] = {
    "musiq": _musiq,
    "laion": _laion,
    "clip": _not_wired("clip"),
    "amt": _not_wired("amt"),
    "vpt_idm": _not_wired("vpt-idm"),
    "droid": _not_wired("droid"),
}


def resolve_scorers(paths: dict[str, Path | None]) -> dict[str, tuple[str, FrameScorer]]:
    """Load every paper scorer the user named: {dimension: (scorer name, scorer)}. Raises ScorerUnavailable."""
    out: dict[str, tuple[str, FrameScorer]] = {}
    for s in PAPER_SCORERS:
        path = paths.get(s.flag)
        if path is None:
            continue
        if not Path(path).exists():
            raise ScorerUnavailable(f"--{s.flag.replace('_', '-')} {path}: no such file")
        if importlib.util.find_spec(s.package.split(".")[0]) is None:
            raise ScorerUnavailable(
                f"--{s.flag.replace('_', '-')} {path}: loading {s.name} needs the `{s.package}` package, which is "
                f"not installed ({s.install_hint})"
            )
        out[s.dimension] = (s.name, LOADERS[s.flag](Path(path)))
    return out
