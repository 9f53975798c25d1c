"""Opening a pygame window in a process that runs the model: `open_window`, the one way to do it.

Why the order matters. Triton's C library (libtriton.so) carries its own, statically linked LLVM.
Mesa's OpenGL (llvmpipe, radeonsi, ...) loads another one (libLLVM-15 on Debian 12). Loaded in that
order, GL first, the two collide and the process dies with a segmentation fault inside `import triton`;
loaded the other way round they live side by side. Nothing on the CPU path uses Triton, but it is
imported anyway once it is installed: diffusers imports torch._dynamo, whose module setup calls
torch.utils._triton.has_triton_package(), which imports triton. And SDL loads GL as soon as a window
opens, even for the plain 2D drawing this project does: on X11 it backs the window's pixels with an
OpenGL texture unless told otherwise. So `worldmodel play` segfaulted while loading the model, right
after its window had opened; the tests never saw it under SDL's dummy driver, which has no GL.

Two guards, each enough on its own where it applies:

1. On X11, SDL is asked for a plain X11 (shared-memory) framebuffer instead of an OpenGL texture
   (SDL_FRAMEBUFFER_ACCELERATION=0, unless the user set it), so no GL and no second LLVM enter the
   process at all. A 512-pixel picture at 20 frames a second needs no GPU to reach the screen.
2. The model stack (torch, triton when installed, diffusers' autoencoder, the quant layers) is imported
   before the window opens, so where SDL loads GL whatever the hint (its native Wayland driver draws
   through EGL), or the user turned the hint back on, triton's LLVM is already in place, and anything
   imported later (a quant method's kernels, a model loaded after a key press) finds it loaded.

Every door that opens a window calls `open_window` (today only app/play.py; `worldmodel demo`, web and
generate open none), after loading its model, so the load's errors are also printed before any window.
"""

from __future__ import annotations

import importlib
import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402 (the environment variable is set first: pygame reads it at import)

# Imported before the first window when a model will run; triton first, for the reason above.
MODEL_STACK: tuple[str, ...] = (
    "triton",  # optional (the gpu extra): its LLVM must be loaded before any GL
    "torch",
    "torch._dynamo",  # what diffusers imports, and what imports triton
    "diffusers.models.autoencoders.autoencoder_tiny",
    "quant.int8",
    "quant.lut",
)
OPTIONAL: frozenset[str] = frozenset({"triton"})


def import_model_stack() -> None:
    """Import everything the model may load, triton included when it is installed (see the module docstring)."""
    for name in MODEL_STACK:
        try:
            importlib.import_module(name)
        except ImportError:
            if name not in OPTIONAL:
                raise


def open_window(size: tuple[int, int], caption: str, model_stack: bool = True) -> pygame.Surface:
    """Open the pygame window, `model_stack` (the model's libraries) imported first; returns the screen surface.

    Pass model_stack=False only when the process never runs a model (the simulator alone).
    """
    if model_stack:
        import_model_stack()
    pygame.display.init()  # not pygame.init(): the audio mixer is never used, and fails on machines without sound
    if pygame.display.get_driver() == "x11":
        # Read by SDL when the window's surface is first made (set_mode), so setting it here is in time.
        # Only on X11: SDL's Wayland driver has no software framebuffer, and would fail with this hint.
        os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")
    screen = pygame.display.set_mode(size)
    pygame.display.set_caption(caption)
    return screen
