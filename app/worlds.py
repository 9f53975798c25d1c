"""Where a play starts and what makes its frames: start points, sessions and the session factory.

The doors (play, web, generate, demo) hold no model logic. Each one asks a `WorldFactory`
for a `Session` and calls `start(image)` once, then `step(act)` once per frame:

- model "default" (the shipped checkpoint in assets/wm-default) or a checkpoint folder:
  `worldmodel.pipeline.WorldPipeline.from_pretrained(...).new_session()`;
- model "simulator": the real voxel game started from the same scene, the ground truth the
  world model imitates (it can start only from one of the 32 scenes, not from a picture).

A start point is a scene (data/scenes.py) or any picture, decoded safely with PIL: size
limits are checked before the pixels are decoded, and bad files raise `ImageError` with a
message that says what is wrong.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from data.actions import Action

FRAME_SIZE = 64  # frames are (64, 64, 3) uint8 RGB everywhere
QUANTS: tuple[str, ...] = ("fp32", "int8", "lut4", "lut3")
DEFAULT_MODEL = "default"
SIMULATOR = "simulator"
DEFAULT_SCENE = "plain_0"  # where the demo, play and the page start unless told otherwise
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "MPO", "WEBP", "BMP", "GIF", "TIFF")  # MPO: many phone JPEGs


class Session(Protocol):
    """What every door drives: the world model's streaming session, or the simulator."""

    def start(self, image: np.ndarray) -> np.ndarray: ...

    def step(self, act: Action) -> np.ndarray: ...


class ImageError(ValueError):
    """A start image that is not an image, too big, or corrupt; the message says which."""


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_side: int = 8192  # checked from the header, before any pixel is decoded

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_side < 1:
            raise ValueError(f"image limits must be positive, got {self}")


@dataclass(frozen=True, eq=False)
class StartPoint:
    """A start frame; `scene` is set when it came from data/scenes.py, so the simulator can start there too."""

    name: str
    image: np.ndarray  # uint8 (FRAME_SIZE, FRAME_SIZE, 3)
    scene: Any | None = None


# --- start points -------------------------------------------------------------------------

def scenes() -> list[Any]:
    from data.scenes import SCENES  # imported here: it builds worlds on first use

    return list(SCENES)


def scene_names() -> list[str]:
    return [scene.name for scene in scenes()]


def scene_start(name: str | int) -> StartPoint:
    """A scene by name, or by index into the scene list."""
    found = scenes()
    if isinstance(name, int) or str(name).isdigit():
        index = int(name)
        if not 0 <= index < len(found):
            raise ValueError(f"scene index {index} is out of range; there are {len(found)} scenes (0-{len(found) - 1})")
        scene = found[index]
    else:
        by_name = {scene.name: scene for scene in found}
        if name not in by_name:
            raise ValueError(f"unknown scene {name!r}; known scenes: {', '.join(by_name)}")
        scene = by_name[name]
    image = np.ascontiguousarray(scene.image(FRAME_SIZE), dtype=np.uint8)
    return StartPoint(scene.name, image, scene)


def _human(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 1024:.0f} KiB"


def load_image(path: str | Path, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """Any picture file -> uint8 (FRAME_SIZE, FRAME_SIZE, 3): center-cropped to a square, box-filtered down."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise ImageError(f"{path.name}: the file is {_human(size)}; the limit is {_human(limits.max_bytes)}")
    if size == 0:
        raise ImageError(f"{path.name}: the file is empty")
    try:
        # PIL warns (DecompressionBombWarning) on opening a picture of over 89 million pixels; the limit on its
        # sides just below refuses those with a clear message, so the warning would only be noise before it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)  # reads the header only
        with img:
            if img.format not in IMAGE_FORMATS:
                raise ImageError(f"{path.name}: {img.format} images are not accepted; use {', '.join(IMAGE_FORMATS)}")
            width, height = img.size
            if max(width, height) > limits.max_side:
                raise ImageError(f"{path.name}: the image is {width}x{height} pixels; the limit is "
                                 f"{limits.max_side} pixels a side")
            img.load()  # decodes; a truncated or corrupt file fails here
            rgb = ImageOps.exif_transpose(img).convert("RGB")  # phone photos: upright, as people see them
    except UnidentifiedImageError as err:
        raise ImageError(f"{path.name}: not an image (PIL cannot identify it)") from err
    except Image.DecompressionBombError as err:
        raise ImageError(f"{path.name}: refused, the image is too large to decode safely ({err})") from err
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, ImageError):
            raise
        raise ImageError(f"{path.name}: the image is corrupt or truncated ({err})") from err
    square = ImageOps.fit(rgb, (FRAME_SIZE, FRAME_SIZE), Image.Resampling.BOX)
    return np.asarray(square, dtype=np.uint8).copy()


def image_start(path: str | Path, limits: ImageLimits = ImageLimits()) -> StartPoint:
    return StartPoint(Path(path).name, load_image(path, limits))


def resolve_start(text: str) -> StartPoint:
    """A scene name or index, or a path to a picture (anything with a suffix or a slash in it)."""
    if Path(text).suffix or "/" in text:
        return image_start(text)
    return scene_start(text)


# --- sessions -----------------------------------------------------------------------------

class SimulatorSession:
    """The real game, started from a scene: the ground truth beside the model."""

    def __init__(self, scene: Any, size: int = FRAME_SIZE) -> None:
        if scene is None:
            raise ValueError("the simulator starts only from one of the scenes, not from an uploaded picture")
        self.scene, self.size = scene, size
        self.game: Any = None

    def start(self, image: np.ndarray) -> np.ndarray:
        # The picture is the scene's own first frame; the game starts at the scene's pose.
        self.game = self.scene.game(self.size)
        return np.asarray(self.game.reset(), dtype=np.uint8)

    def step(self, act: Action) -> np.ndarray:
        if self.game is None:
            raise RuntimeError("call start() before step()")
        return np.asarray(self.game.step(act), dtype=np.uint8)


# factory(model, quant, start, seed) -> an unstarted Session; the seed fixes the model's sampling noise.
SessionFactory = Callable[[str, str, StartPoint, int], Session]


def model_label(model: str) -> str:
    return "wm-default" if model == DEFAULT_MODEL else Path(model).name if model != SIMULATOR else SIMULATOR


def thread_count(text: str) -> int:
    """argparse type for --threads: a whole number >= 0 (0: leave torch's default)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def check_quant(quant: str) -> str:
    if quant not in QUANTS:
        raise ValueError(f"unknown quant method {quant!r}; choose one of {', '.join(QUANTS)}")
    return quant


class WorldFactory:
    """Opens sessions; loads each (model, quant) pipeline once and shares it between sessions.

    Call it as a `SessionFactory`: factory(model, quant, start, seed) -> an unstarted Session.
    """

    def __init__(self, device: str = "auto", threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.device, self.threads = device, threads
        self._pipes: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()  # two browsers asking for the same pipeline load it once

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import os

        import torch

        if not torch.cuda.is_available():
            return "cpu"
        # Under torchrun each process on a machine takes its own GPU.
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"

    def pipeline(self, model: str, quant: str) -> Any:
        check_quant(quant)
        with self._lock:
            if (model, quant) not in self._pipes:
                import torch

                from worldmodel.pipeline import WorldPipeline  # torch: imported only when a model is used

                if self.threads is not None:
                    # On a busy CPU, fewer threads can be far faster: OpenMP threads that wait on
                    # each other stall whenever one of them is descheduled.
                    torch.set_num_threads(self.threads)
                path = None if model == DEFAULT_MODEL else model
                self._pipes[model, quant] = WorldPipeline.from_pretrained(
                    path, device=self.resolved_device(), quant=None if quant == "fp32" else quant)
            return self._pipes[model, quant]

    def __call__(self, model: str, quant: str, start: StartPoint, seed: int = 0) -> Session:
        if model == SIMULATOR:
            return SimulatorSession(start.scene)  # deterministic: the seed has nothing to fix
        return self.pipeline(model, quant).new_session(seed=seed)


def roll_out(session: Session, image: np.ndarray, actions: list[Action],
             on_frame: Callable[[int], None] | None = None) -> np.ndarray:
    """Start `session` from `image` and play `actions`: uint8 (len(actions) + 1, H, W, 3), frame 0 the start."""
    frames = [session.start(image)]
    for t, act in enumerate(actions):
        frames.append(session.step(act))
        if on_frame is not None:
            on_frame(t + 1)
    return np.stack(frames)


def default_model_available() -> tuple[bool, str]:
    """Whether the shipped default checkpoint can be loaded, and if not, why (for the demo's fallback)."""
    try:
        from worldmodel.paths import DEFAULT_CHECKPOINT as folder
    except ImportError as err:
        return False, f"the world model code is not installed ({err})"
    if not (Path(folder) / "config.json").is_file():
        return False, f"no shipped checkpoint at {folder}"
    return True, str(folder)
