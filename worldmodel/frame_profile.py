"""Where one streaming frame's time goes: `profile_frames(pipe, session, actions)` -> ms per frame for each part.

The parts, each timed exclusively (a part's time leaves out the parts that run inside it, so they add up to the
frame): the DiT's linear layers (what quantization can speed up), attention (scaled dot product, RoPE, the KV
cache; its qkv and output projections count as linear layers), the DiT's other ops (norms, GELU, adaLN modulation,
embeddings), the depth head, the autoencoder's encode and decode, the world memory's render and insert, the warps
(move_view on pixels and on latents), and the rest: the sampler's loop, composing the shown frame, inpainting the
arm and crosshair away, numpy and Python. Timing goes through forward hooks on modules and through wrappers put on
the session's own objects (and on the two modules' `move_view` names) only for the duration of the call.

The hooks cost a few microseconds per call each, which lands in "rest": the profile says where the time goes,
`worldmodel bench stream`'s untimed-by-hooks rounds say how fast a frame is.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

from torch import nn

LINEARS = "DiT linear layers"
ATTENTION = "attention (SDPA, RoPE, KV cache)"
DIT_OTHER = "DiT other ops (norms, GELU, adaLN, embeddings)"
DEPTH = "depth head"
ENCODE = "autoencoder encode"
DECODE = "autoencoder decode"
RENDER = "memory render"
INSERT = "memory insert"
WARPS = "warps (move_view)"
REST = "rest (sampler loop, compose, inpaint, numpy, Python)"
_MISSING = object()
PARTS = [LINEARS, ATTENTION, DIT_OTHER, DEPTH, ENCODE, DECODE, RENDER, INSERT, WARPS, REST]


class PartTimer:
    """Exclusive seconds per part: time spent inside a nested part is taken off its parent's."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._open: list[list] = []  # [part, start, seconds spent in nested parts]

    def enter(self, part: str) -> None:
        self._open.append([part, time.perf_counter(), 0.0])

    def exit(self) -> None:
        part, start, nested = self._open.pop()
        elapsed = time.perf_counter() - start
        self.seconds[part] += elapsed - nested
        if self._open:
            self._open[-1][2] += elapsed

    def wrap(self, part: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self.enter(part)
            try:
                return fn(*args, **kwargs)
            finally:
                self.exit()

        return timed


def _is_linear(module: nn.Module) -> bool:
    # nn.Linear, or a quantized layer standing in for one (they all carry in_features and out_features).
    return isinstance(module, nn.Linear) or (hasattr(module, "in_features") and hasattr(module, "out_features"))


def _dit_part(module: nn.Module, dit: nn.Module) -> str | None:
    from worldmodel.dit import Attention, DepthHead

    if module is dit:
        return DIT_OTHER
    if isinstance(module, Attention):
        return ATTENTION
    if isinstance(module, DepthHead):
        return DEPTH
    return LINEARS if _is_linear(module) else None


@contextlib.contextmanager
def _instrumented(timer: PartTimer, pipe, session) -> Iterator[None]:
    import worldmodel.sampler
    import worldmodel.session

    handles = []
    for module in pipe.dit.modules():
        part = _dit_part(module, pipe.dit)
        if part is None:
            continue
        handles.append(module.register_forward_pre_hook(lambda m, args, part=part: timer.enter(part)))
        handles.append(module.register_forward_hook(lambda m, args, out: timer.exit()))
    patched: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, part: str) -> None:
        patched.append((owner, name, vars(owner).get(name, _MISSING)))
        setattr(owner, name, timer.wrap(part, getattr(owner, name)))

    patch(pipe.autoencoder, "encode", ENCODE)
    patch(pipe.autoencoder, "decode", DECODE)
    for memory in session.memories:
        patch(memory, "render", RENDER)
        patch(memory, "insert", INSERT)
    patch(worldmodel.session, "move_view", WARPS)
    patch(worldmodel.sampler, "move_view", WARPS)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for owner, name, own in reversed(patched):
            if own is _MISSING:
                delattr(owner, name)  # an instance's method: its class's shows through again
            else:
                setattr(owner, name, own)


def profile_frames(pipe, session, actions: Sequence) -> dict[str, float]:
    """Step `session` once per action with every part timed; ms per frame for each of PARTS."""
    timer = PartTimer()
    with _instrumented(timer, pipe, session):
        for act in actions:
            timer.enter(REST)
            try:
                session.step(act)
            finally:
                timer.exit()
    return {part: 1e3 * timer.seconds.get(part, 0.0) / len(actions) for part in PARTS}
