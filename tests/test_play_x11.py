"""`worldmodel play` in a real X server (Xvfb), driven by real key and mouse events (xdotool).

tests/test_play.py drives the client through pygame's event queue under SDL's dummy driver, which
has no GL; that is how the crash went unseen: in a real window SDL loads Mesa's GL, and importing
triton after it segfaulted while the model loaded (see app/display.py). Here the client runs as its
own process, on its own X display, with the shipped model: hold W, turn with the mouse, restart,
save with F12, quit with Escape, and read the saved mp4 + jsonl back to check what the keys did.

Needs Xvfb and xdotool (Debian: apt-get install xvfb xdotool; .ci/run installs them). Without them
the tests skip, except in CI (CI=true), where a missing X server is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LOAD_TIMEOUT_S = 300  # the model loads (and the quant kernels compile) before the window opens
TURN_PX = 30  # pixels per mouse move; at play's 0.15 degrees a pixel, 4.5 degrees
MOVE_EVERY_S = 0.1


@pytest.fixture(scope="module")
def x_display():
    """A fresh Xvfb on a free display number (Xvfb picks it: -displayfd); yields an env for its clients."""
    missing = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]
    if missing:
        message = f"{' and '.join(missing)} not installed (apt-get install xvfb xdotool)"
        if IN_CI:
            pytest.fail(f"{message}; CI must run the real-window tests")
        pytest.skip(message)
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()  # written once the server accepts clients
    if not number:
        server.kill()
        pytest.fail("Xvfb did not start")
    env = dict(os.environ, DISPLAY=f":{number}")
    env.pop("SDL_VIDEODRIVER", None)  # conftest.py sets the dummy driver for the in-process tests
    env.pop("SDL_FRAMEBUFFER_ACCELERATION", None)
    yield env
    server.terminate()
    server.wait(timeout=10)


def xdo(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["xdotool", *args], env=env, check=True, capture_output=True, text=True, timeout=30).stdout


class Client:
    """`worldmodel play ARGS` as a child process on the test's display."""

    def __init__(self, env: dict[str, str], args: list[str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "play", *args], env=env,
                                     stdout=log.open("w"), stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def alive(self, doing: str) -> None:
        code = self.proc.poll()
        assert code is None, f"worldmodel play died (exit {code}) while {doing}:\n{self.output()}"

    def window(self) -> str:
        """Wait for the window (it opens once the model has loaded) and give it the keyboard."""
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while time.monotonic() < deadline:
            self.alive("loading the model")
            # By the process id (_NET_WM_PID): SDL writes the title as UTF-8, which `search --name` misses
            # in the C locale.
            found = subprocess.run(["xdotool", "search", "--pid", str(self.proc.pid)], env=self.env,
                                   capture_output=True, text=True, timeout=30).stdout.split()
            if found:
                time.sleep(1.0)  # let it draw its first frames and grab the pointer
                self.alive("opening its window")
                xdo(self.env, "windowfocus", found[0])
                return found[0]
            time.sleep(0.5)
        pytest.fail(f"no window within {LOAD_TIMEOUT_S} s:\n{self.output()}")

    def hold(self, seconds: float, keys: tuple[str, ...] = (), dx: int = 0) -> None:
        """Hold `keys` for `seconds`, moving the mouse by dx pixels every MOVE_EVERY_S; check the client lives."""
        if keys:
            xdo(self.env, "keydown", *keys)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if dx:
                xdo(self.env, "mousemove_relative", "--", str(dx), "0")
            time.sleep(MOVE_EVERY_S)
            self.alive(f"holding {keys or 'nothing'}, mouse {dx:+d} px")
        if keys:
            xdo(self.env, "keyup", *keys)

    def quit(self) -> int:
        xdo(self.env, "key", "Escape")  # frees the pointer
        time.sleep(0.5)
        xdo(self.env, "key", "Escape")  # quits
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"worldmodel play did not exit after Escape, Escape:\n{self.output()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def saved_play(out: Path):
    from data.actions import read_actions
    from data.clips import decode_mp4

    videos = sorted(p for p in out.glob("play-*.mp4") if not p.name.endswith(".sim.mp4"))
    assert len(videos) == 1, f"F12 should have saved one play, found {videos}"
    frames, _fps = decode_mp4(videos[0])
    actions = read_actions(videos[0].with_suffix(".jsonl"))
    assert len(actions) == len(frames)
    return frames, actions, videos[0]


def run_python(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


WINDOW = "from app.display import open_window; open_window((64, 64), 'test', model_stack={stack}); "
LLVM_MAPPED = "any('libLLVM' in line for line in open('/proc/self/maps'))"


def test_the_window_keeps_gl_out_of_the_process_on_x11(x_display):
    """First guard: on X11 the window's pixels go through a plain X11 framebuffer, so no GL, no second LLVM."""
    done = run_python(x_display, WINDOW.format(stack=False) + f"import pygame; pygame.display.flip(); "
                      f"print(pygame.display.get_driver(), {LLVM_MAPPED})")
    assert done.returncode == 0 and done.stdout.split()[-2:] == ["x11", "False"], done.stdout + done.stderr


@pytest.mark.slow
def test_triton_is_safe_after_a_gl_window(x_display):
    """Second guard: with GL loaded anyway (here forced; SDL's Wayland driver always loads it), the model stack
    imported before the window makes a later `import triton` safe. Imported after GL instead, it segfaults."""
    pytest.importorskip("triton")
    env = dict(x_display, SDL_FRAMEBUFFER_ACCELERATION="1")
    done = run_python(env, WINDOW.format(stack=True) + f"import pygame; pygame.display.flip(); "
                      f"gl = {LLVM_MAPPED}; import triton; print('gl', gl)")
    assert done.returncode == 0 and done.stdout.split()[-2:] == ["gl", "True"], \
        f"exit {done.returncode}: {done.stdout}{done.stderr[-2000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("quant,extra", [("fp32", ["--side-by-side"]), ("int8", [])], ids=["fp32", "int8"])
def test_play_a_minute_with_real_keys_and_mouse(x_display, tmp_path, quant, extra):
    """The shipped model in a real window: a minute of held keys and mouse motion, then a clean exit."""
    from eval.flow import radial_flow
    from eval.pose import camera_turn
    from worldmodel.paths import DEFAULT_CHECKPOINT

    if not (DEFAULT_CHECKPOINT / "config.json").is_file():
        pytest.skip(f"{DEFAULT_CHECKPOINT}: no shipped default checkpoint")
    out = tmp_path / "plays"
    client = Client(x_display, ["--quant", quant, "--scene", "plain_0", "--out", str(out), *extra],
                    tmp_path / "play.log")
    try:
        client.window()
        client.hold(3, ("w",))
        xdo(x_display, "key", "r")  # restart from the scene: the recording starts again here
        client.hold(6)  # standing still
        client.hold(20, ("w",))  # walking
        client.hold(6)
        client.hold(10, dx=TURN_PX)  # turning right
        client.hold(15, ("w",), dx=-TURN_PX)  # walking and turning left
        client.hold(2)
        xdo(x_display, "key", "F12")
        client.hold(3)  # saving
        code = client.quit()
    finally:
        client.kill()
    log = client.output()
    assert code == 0, f"exit {code}:\n{log}"
    assert "Traceback" not in log and "saved " in log, log

    frames, actions, video = saved_play(out)
    assert ("--side-by-side" in extra) == video.with_suffix(".sim.mp4").is_file()
    keys = [a.keys for a in actions]
    yaw = np.array([a.camera[1] for a in actions])
    # actions[t] was held while frames[t] was shown and made frames[t + 1]; the last line is F12's pad.
    still = [t for t in range(len(actions) - 1) if not keys[t] and yaw[t] == 0]
    walk = [t for t in range(len(actions) - 1) if keys[t] == {"forward"} and yaw[t] == 0]
    right = [t for t in range(len(actions) - 1) if not keys[t] and yaw[t] > 0]
    walk_left = [t for t in range(len(actions) - 1) if keys[t] == {"forward"} and yaw[t] < 0]
    summary = f"{len(frames)} frames: {len(still)} still, {len(walk)} walking, {len(right)} turning right, " \
              f"{len(walk_left)} walking left; yaw sum {yaw.sum():+.1f}"
    # The real events arrived: W held for seconds, and the mouse's moves add up to what was sent.
    assert len(walk) >= 20 and len(right) >= 10 and len(walk_left) >= 10 and len(still) >= 10, summary
    assert set().union(*keys) == {"forward"}, summary
    sent = 10 / MOVE_EVERY_S * TURN_PX * 0.15  # degrees the 10 s of right turns asked for
    assert 0.5 * sent <= yaw[yaw > 0].sum() <= 1.05 * sent, summary

    def mean(fn, ts):
        return float(np.nanmean([fn(frames[t], frames[t + 1]) for t in ts]))

    # The picture changes the way walking and turning do.
    expand_walk, expand_still = mean(radial_flow, walk), mean(radial_flow, still)
    turn_right = mean(lambda a, b: camera_turn(a, b)[1], right)
    turn_left = mean(lambda a, b: camera_turn(a, b)[1], walk_left)
    seen = f"{summary}; outward flow walking {expand_walk:+.3f} vs still {expand_still:+.3f} px/frame; " \
           f"yaw read back right {turn_right:+.2f}, walking left {turn_left:+.2f} deg/frame"
    print(seen)
    assert expand_walk > expand_still + 0.1, seen
    assert turn_right > 1.0 and turn_left < -1.0, seen
