"""Play the generated world live in a pygame window: `worldmodel play`.

One loop over a Session (see app/worlds.py), in the manner of diamond's game/: read the
input events, turn what is held into one Action, step the session, draw the 64x64 frame
scaled up with nearest-neighbour (crisp pixels), draw the overlay, wait for the next tick.
No model logic lives here.

Controls (the KEYMAP and MOUSE_BUTTONS tables below):
    W A S D move · space jump · shift sneak · ctrl sprint · mouse look (pointer captured)
    left click attack · right click use · Esc frees the pointer (Esc again quits; click recaptures)
    R reset · 1-9 start scenes · 0 the --image · Q next quant method · P pause · F12 save the play as mp4 + action jsonl

Held keys are tracked from KEYDOWN/KEYUP events rather than pygame.key.get_pressed(), so
the loop behaves the same with events posted by a test. With --side-by-side the real
simulator runs on the same actions beside the model, started from the same scene.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import numpy as np  # noqa: E402 (the environment variable is set first: pygame reads it at import)
import pygame  # noqa: E402 (the environment variable is set first: pygame reads it at import)

from app.display import open_window  # noqa: E402 (the environment variable is set first: pygame reads it at import)
from app.worlds import (  # noqa: E402 (the environment variable is set first: pygame reads it at import)
    DEFAULT_MODEL,
    DEFAULT_SCENE,
    FRAME_SIZE,
    QUANTS,
    SIMULATOR,
    ImageError,
    Session,
    SessionFactory,
    StartPoint,
    WorldFactory,
    image_start,
    model_label,
    scene_start,
    scenes,
    thread_count,
)
from data.actions import FPS, MAX_CAMERA_DEG, NOOP, Action, write_actions  # noqa: E402 (the environment variable is set first: pygame reads it at import)

# Keyboard key -> action key. Two physical keys may share one action (left and right shift).
KEYMAP: dict[int, str] = {
    pygame.K_w: "forward",
    pygame.K_s: "back",
    pygame.K_a: "left",
    pygame.K_d: "right",
    pygame.K_SPACE: "jump",
    pygame.K_LSHIFT: "sneak",
    pygame.K_RSHIFT: "sneak",
    pygame.K_LCTRL: "sprint",
    pygame.K_RCTRL: "sprint",
}
# Mouse button -> action key (pygame numbers them 1 left, 2 middle, 3 right).
MOUSE_BUTTONS: dict[int, str] = {1: "attack", 3: "use"}
SCENE_KEYS: tuple[int, ...] = (pygame.K_1, pygame.K_2, pygame.K_3, pygame.K_4, pygame.K_5,
                               pygame.K_6, pygame.K_7, pygame.K_8, pygame.K_9)
HELP = "WASD move  space jump  shift sneak  ctrl sprint  mouse look  Esc free pointer  " \
       "R reset  1-9 scene  Q quant  P pause  F12 save"
BAR = 22  # pixels of the label bar above the frames
HELP_BAR = 40  # pixels of the help bar below them (two lines)
GAP = 8  # pixels between the model and the simulator


@dataclass(frozen=True)
class PlaySettings:
    model: str = DEFAULT_MODEL
    quant: str = "fp32"
    fps: float = 20.0  # target frames per second (the game's own rate is 20)
    scale: int = 8  # screen pixels per frame pixel
    deg_per_pixel: float = 0.15  # mouse look sensitivity
    invert_y: bool = False
    side_by_side: bool = False
    out_dir: Path = Path("runs/play")
    record_max_frames: int = 12000  # F12 saves at most the last this-many frames (10 minutes at 20 fps)

    def __post_init__(self) -> None:
        if self.quant not in QUANTS:
            raise ValueError(f"quant must be one of {', '.join(QUANTS)}, got {self.quant!r}")
        if not 1 <= self.fps <= 1000:
            raise ValueError(f"fps must be in [1, 1000], got {self.fps}")
        if not 1 <= self.scale <= 32:
            raise ValueError(f"scale must be in [1, 32], got {self.scale}")
        if not 0 < self.deg_per_pixel <= 10:
            raise ValueError(f"deg_per_pixel must be in (0, 10], got {self.deg_per_pixel}")
        if self.record_max_frames < 2:
            raise ValueError(f"record_max_frames must be at least 2, got {self.record_max_frames}")


@dataclass
class HeldInput:
    """What the player holds right now, built from events; `take_action` empties the mouse delta."""

    keys: set[int] = field(default_factory=set)  # pygame key codes in KEYMAP
    buttons: set[int] = field(default_factory=set)  # pygame mouse buttons in MOUSE_BUTTONS
    mouse: list[float] = field(default_factory=lambda: [0.0, 0.0])  # pixels moved since the last frame
    last_mouse: tuple[float, float] = (0.0, 0.0)  # the delta the last frame used, for the overlay

    def release_all(self) -> None:
        self.keys.clear()
        self.buttons.clear()
        self.mouse = [0.0, 0.0]

    def held_names(self) -> list[str]:
        names = {KEYMAP[k] for k in self.keys} | {MOUSE_BUTTONS[b] for b in self.buttons}
        return sorted(names)

    def take_action(self, deg_per_pixel: float, invert_y: bool) -> Action:
        dx, dy = self.mouse
        self.mouse = [0.0, 0.0]
        self.last_mouse = (dx, dy)
        yaw = float(np.clip(dx * deg_per_pixel, -MAX_CAMERA_DEG, MAX_CAMERA_DEG))
        # Screen y grows downwards; moving the mouse up looks up (+pitch) unless inverted.
        pitch = float(np.clip((dy if invert_y else -dy) * deg_per_pixel, -MAX_CAMERA_DEG, MAX_CAMERA_DEG))
        return Action(frozenset(self.held_names()), (pitch + 0.0, yaw + 0.0))


@dataclass
class Recording:
    """The play so far: frames[t] was shown while actions[t] was held (the project's time alignment)."""

    max_frames: int
    frames: collections.deque = field(init=False)
    reference: collections.deque = field(init=False)  # the simulator's frames, in side-by-side mode
    actions: collections.deque = field(init=False)

    def __post_init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.frames = collections.deque(maxlen=self.max_frames)
        self.reference = collections.deque(maxlen=self.max_frames)
        self.actions = collections.deque(maxlen=self.max_frames)

    def add(self, frame: np.ndarray, reference: np.ndarray | None, act: Action | None) -> None:
        """Record the action held while the previous frame was shown, then the frame it made."""
        if act is not None:
            self.actions.append(act)
        self.frames.append(frame)
        if reference is not None:
            self.reference.append(reference)
        while len(self.actions) >= len(self.frames) and self.actions:
            self.actions.popleft()  # the deques trim frames first; keep one action per earlier frame

    def save(self, out_dir: Path, fps: int) -> list[Path]:
        """NAME.mp4 + NAME.jsonl (+ NAME.sim.mp4), named by the time, never overwriting anything.

        The last frame has no action yet; its line is a no-op, so the clip has one action line
        per frame like every clip in this project.
        """
        from data.video import write_mp4  # imported here: PyAV is needed only when saving

        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now().strftime("play-%Y%m%d-%H%M%S")
        stem, n = out_dir / stamp, 1
        while any(stem.with_name(stem.name + s).exists() for s in (".mp4", ".jsonl", ".sim.mp4")):
            stem, n = out_dir / f"{stamp}-{n}", n + 1
        frames = np.stack(list(self.frames))
        actions = list(self.actions) + [NOOP]  # len(frames) - 1 recorded actions, then the pad
        paths = [stem.with_name(stem.name + ".mp4"), stem.with_name(stem.name + ".jsonl")]
        write_mp4(paths[0], frames, fps=fps)
        write_actions(paths[1], actions)
        if len(self.reference) == len(self.frames):
            paths.append(stem.with_name(stem.name + ".sim.mp4"))
            write_mp4(paths[2], np.stack(list(self.reference)), fps=fps)
        return paths


class PlayApp:
    """The window and its loop. `run(max_ticks)` returns after that many turns of the loop, or when the player quits."""

    def __init__(self, settings: PlaySettings, factory: SessionFactory, start: StartPoint,
                 scene_picks: list[StartPoint | int], image_pick: StartPoint | None = None) -> None:
        self.settings, self.factory = settings, factory
        self.scene_picks, self.image_pick = scene_picks, image_pick
        self.held = HeldInput()
        self.recording = Recording(settings.record_max_frames)
        self.clock = pygame.time.Clock()
        self.paused = self.quit = False
        self.captured = False
        self.message, self.message_until = "", 0.0
        self.step_ms = 0.0
        self.steps = 0

        # The model loads before the window opens, and open_window imports the rest of the model stack
        # first: opening a window loads GL, after which importing triton crashes (see app/display.py).
        self.open(start)
        if settings.model != SIMULATOR:
            # One frame on a throwaway session, so what the model loads lazily on its first step (the quant
            # methods compile their CPU kernels on first use: a minute or more) happens while "loading" shows,
            # not in a window that freezes and then swallows the keys pressed meanwhile.
            warm = self.factory(settings.model, settings.quant, start, 0)
            warm.start(start.image)
            warm.step(NOOP)
        side = FRAME_SIZE * settings.scale
        panels = 2 if settings.side_by_side else 1
        self.screen = open_window((panels * side + (panels - 1) * GAP, BAR + side + HELP_BAR),
                                  f"worldmodel play: {model_label(settings.model)} ({settings.quant})",
                                  model_stack=settings.model != SIMULATOR)
        pygame.font.init()
        self.font = pygame.font.Font(None, 20)
        self.capture(True)

    # --- worlds ------------------------------------------------------------------------

    def open(self, start: StartPoint) -> None:
        """Start (or restart) the model, and the simulator beside it, from `start`."""
        self.start = start
        self.session: Session = self.factory(self.settings.model, self.settings.quant, start, 0)
        self.frame = self.session.start(start.image)
        self.reference: Session | None = None
        self.reference_frame: np.ndarray | None = None
        if self.settings.side_by_side and start.scene is not None:
            self.reference = self.factory(SIMULATOR, self.settings.quant, start, 0)
            self.reference_frame = self.reference.start(start.image)
        self.recording.clear()
        self.recording.add(self.frame, self.reference_frame, None)
        self.say(f"started from {start.name}")

    def next_quant(self) -> None:
        """Switch to the next quant method (fp32, int8, lut4, lut3) and restart from the same start point."""
        if self.settings.model == SIMULATOR:
            self.say("the simulator has no quant methods")
            return
        quant = QUANTS[(QUANTS.index(self.settings.quant) + 1) % len(QUANTS)]
        self.say(f"loading {quant} ...", seconds=600.0)
        self.draw()  # the load (a kernel build on first use) takes a while: say so before it starts
        self.settings = dataclasses.replace(self.settings, quant=quant)
        self.open(self.start)
        self.held.release_all()  # keys released while loading never reached us
        pygame.display.set_caption(f"worldmodel play: {model_label(self.settings.model)} ({quant})")

    def step(self) -> None:
        act = self.held.take_action(self.settings.deg_per_pixel, self.settings.invert_y)
        t0 = time.perf_counter()
        self.frame = self.session.step(act)
        self.step_ms = 1000 * (time.perf_counter() - t0)
        if self.reference is not None:
            self.reference_frame = self.reference.step(act)
        self.recording.add(self.frame, self.reference_frame, act)
        self.steps += 1

    def save(self) -> None:
        paths = self.recording.save(self.settings.out_dir, fps=FPS)  # the game's own rate, whatever --fps the play ran at
        print("saved " + ", ".join(str(p) for p in paths), flush=True)
        self.say(f"saved {paths[0].name}")

    def say(self, text: str, seconds: float = 3.0) -> None:
        self.message, self.message_until = text, time.monotonic() + seconds

    # --- input -------------------------------------------------------------------------

    def capture(self, on: bool) -> None:
        # A hidden cursor with input grabbed puts SDL in relative mouse mode: the pointer never
        # stops at the window's edge, so the player can turn round and round.
        self.captured = on
        pygame.mouse.set_visible(not on)
        pygame.event.set_grab(on)
        if not on:
            self.held.release_all()

    def handle(self, event: pygame.event.Event) -> None:
        if event.type == pygame.QUIT:
            self.quit = True
        elif event.type == pygame.KEYDOWN:
            self.key_down(event.key)
        elif event.type == pygame.KEYUP:
            self.held.keys.discard(event.key)
        elif event.type == pygame.MOUSEMOTION and self.captured:
            self.held.mouse[0] += event.rel[0]
            self.held.mouse[1] += event.rel[1]
        elif event.type == pygame.MOUSEBUTTONDOWN:
            if not self.captured:
                self.capture(True)  # this click only takes the pointer back
            elif event.button in MOUSE_BUTTONS:
                self.held.buttons.add(event.button)
        elif event.type == pygame.MOUSEBUTTONUP:
            self.held.buttons.discard(event.button)
        elif event.type == pygame.WINDOWFOCUSLOST:
            self.held.release_all()  # a key released in another window never sends KEYUP here

    def key_down(self, key: int) -> None:
        if key in KEYMAP:
            self.held.keys.add(key)
        elif key == pygame.K_ESCAPE:
            if self.captured:
                self.capture(False)
            else:
                self.quit = True
        elif key == pygame.K_p:
            self.paused = not self.paused
            self.say("paused" if self.paused else "playing")
        elif key == pygame.K_r:
            self.open(self.start)
        elif key == pygame.K_q:
            self.next_quant()
        elif key == pygame.K_F12:
            self.save()
        elif key in SCENE_KEYS and SCENE_KEYS.index(key) < len(self.scene_picks):
            pick = self.scene_picks[SCENE_KEYS.index(key)]
            self.open(scene_start(pick) if isinstance(pick, int) else pick)
        elif key == pygame.K_0 and self.image_pick is not None:
            self.open(self.image_pick)

    # --- drawing -----------------------------------------------------------------------

    def blit_frame(self, frame: np.ndarray | None, x: int, label: str) -> None:
        side = FRAME_SIZE * self.settings.scale
        self.screen.blit(self.font.render(label, True, (230, 230, 230)), (x + 4, 4))
        if frame is None:
            text = self.font.render("the simulator starts only from a scene", True, (200, 200, 200))
            self.screen.blit(text, (x + 8, BAR + side // 2))
            return
        surface = pygame.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
        self.screen.blit(pygame.transform.scale(surface, (side, side)), (x, BAR))  # nearest-neighbour

    def overlay_lines(self) -> list[str]:
        dx, dy = self.held.last_mouse
        lines = [
            f"FPS {self.clock.get_fps():5.1f}   step {self.step_ms:5.1f} ms   frame {self.steps}",
            f"model {model_label(self.settings.model)}   quant {self.settings.quant}",
            f"keys  {' '.join(self.held.held_names()) or '-'}",
            f"mouse dx {dx:+.0f} dy {dy:+.0f} px",
        ]
        if self.paused:
            lines.append("PAUSED (P to play)")
        if not self.captured:
            lines.append("pointer free: click to play, Esc to quit")
        if self.message and time.monotonic() < self.message_until:
            lines.append(self.message)
        return lines

    def wrap(self, text: str, width: int) -> list[str]:
        lines = [""]
        for word in text.split("  "):
            trial = f"{lines[-1]}  {word}" if lines[-1] else word
            if self.font.size(trial)[0] <= width or not lines[-1]:
                lines[-1] = trial
            else:
                lines.append(word)
        return lines

    def draw(self) -> None:
        side = FRAME_SIZE * self.settings.scale
        self.screen.fill((16, 16, 20))
        self.blit_frame(self.frame, 0, f"model: {model_label(self.settings.model)} ({self.settings.quant})"
                        f"  start: {self.start.name}")
        if self.settings.side_by_side:
            self.blit_frame(self.reference_frame, side + GAP, "simulator (ground truth, same actions)")
        lines = self.overlay_lines()
        panel = pygame.Surface((min(side, 330), 6 + 18 * len(lines)), pygame.SRCALPHA)
        panel.fill((0, 0, 0, 150))
        self.screen.blit(panel, (0, BAR))
        for i, line in enumerate(lines):
            self.screen.blit(self.font.render(line, True, (255, 255, 255)), (6, BAR + 4 + 18 * i))
        for i, line in enumerate(self.wrap(HELP, self.screen.get_width() - 8)[:2]):
            self.screen.blit(self.font.render(line, True, (170, 170, 170)), (4, BAR + side + 3 + 18 * i))
        pygame.display.flip()

    # --- the loop ----------------------------------------------------------------------

    def handle_events(self) -> None:
        for event in pygame.event.get():
            self.handle(event)

    def tick(self) -> None:
        """One turn of the loop: input, at most one step, drawing, then wait for the frame's time."""
        self.handle_events()
        if self.quit:
            return
        if not self.paused:
            self.step()
        self.draw()
        self.clock.tick(self.settings.fps)

    def run(self, max_ticks: int | None = None) -> None:
        ticks = 0
        while not self.quit and (max_ticks is None or ticks < max_ticks):
            self.tick()
            ticks += 1

    def screenshot(self, path: Path) -> None:
        pygame.image.save(self.screen, str(path))


def scene_picks() -> list[StartPoint | int]:
    """Nine start scenes for the number keys: the first scene of each biome, then the next ones.

    Returned as scene indices; each is made into a StartPoint only when its key is pressed.
    """
    found = scenes()
    seen: dict[str, int] = {}
    order = []
    for i, scene in enumerate(found):
        group = getattr(scene, "biome", scene.name)
        order.append((seen.get(group, 0), i))
        seen[group] = seen.get(group, 0) + 1
    return [i for _, i in sorted(order)][:len(SCENE_KEYS)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"'{DEFAULT_MODEL}' (assets/wm-default), a checkpoint folder, or '{SIMULATOR}'")
    parser.add_argument("--quant", choices=QUANTS, default="fp32",
                        help="how the transformer blocks run (Q switches while playing)")
    parser.add_argument("--scene", default=DEFAULT_SCENE, help="start scene: a name or an index into the 32 scenes")
    parser.add_argument("--image", type=Path, help="start from this picture instead (key 0 returns to it)")
    parser.add_argument("--side-by-side", action="store_true", help="show the real simulator beside the model")
    parser.add_argument("--fps", type=float, default=20.0, help="target frames per second")
    parser.add_argument("--scale", type=int, default=8, help="screen pixels per frame pixel")
    parser.add_argument("--deg-per-pixel", type=float, default=0.15, help="mouse look: degrees per pixel moved")
    parser.add_argument("--invert-y", action="store_true", help="mouse up looks down")
    parser.add_argument("--out", type=Path, default=Path("runs/play"), help="where F12 saves plays")
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto")
    parser.add_argument("--threads", type=thread_count, default=1,
                        help="CPU threads for the model; 0: torch's default (on a busy CPU one thread was 10x faster)")


def main(args: argparse.Namespace) -> int:
    try:
        settings = PlaySettings(model=args.model, quant=args.quant, fps=args.fps, scale=args.scale,
                                deg_per_pixel=args.deg_per_pixel, invert_y=args.invert_y,
                                side_by_side=args.side_by_side, out_dir=args.out)
        image_pick = image_start(args.image) if args.image else None
        start = image_pick or scene_start(args.scene)
    except (ImageError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if settings.model == SIMULATOR and start.scene is None:
        print("error: the simulator starts only from a scene; drop --image or pick a model", file=sys.stderr)
        return 2
    print(f"loading {model_label(settings.model)} ({settings.quant}) ...", flush=True)
    try:
        app = PlayApp(settings, WorldFactory(args.device, args.threads or None), start, scene_picks(), image_pick)
    except (FileNotFoundError, ImportError) as err:
        print(f"error: cannot load the model: {err}\n(try --model {SIMULATOR} to play the real game)",
              file=sys.stderr)
        return 1
    try:
        app.run()
    finally:
        pygame.quit()
    return 0
