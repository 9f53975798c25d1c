"""How a video lines up with its action file: the project's convention, or GameWorld Score's.

Both conventions need one action line per frame (a video of T frames needs at least T lines; lines past
the video's end are ignored), but they use different lines for the change from frame t to frame t + 1:

    ours       line t     (the VPT recorder's: the action pressed while frame t is shown; the last line is unused)
    gameworld  line t + 1 (Matrix-Game's: line t conditions frame t, so the first line is unused, and GameWorld
                           Score's scorer labels frames 0..T-2 with lines 1..T-1)

Everything inside the project (sessions, clips, the suite's jobs) speaks ours; `our_actions` turns a file read
in either convention into ours, so a 65-line Bench76 file gives a 65-frame video under `gameworld`.
"""

from __future__ import annotations

from data.actions import NOOP, Action

PROTOCOLS: tuple[str, ...] = ("ours", "gameworld")


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return protocol


def our_actions(lines: list[Action] | tuple[Action, ...], protocol: str) -> list[Action]:
    """One action per frame in our convention (actions[t] makes frame t + 1; the last is a no-op pad) from
    the lines of a file in `protocol`'s convention. The result has as many entries as the file has lines."""
    lines = list(lines)
    if check_protocol(protocol) == "ours" or not lines:
        return lines
    return lines[1:] + [NOOP]


def check_action_lines(video: object, frames: int, actions_file: object, lines: int) -> None:
    """The one rule for training and eval, in either convention: a video of T frames needs T action lines."""
    if lines < frames:
        raise ValueError(
            f"{video}: {frames} frames, but {actions_file} has only {lines} action lines "
            f"(a video of {frames} frames needs {frames}: one line per frame)"
        )
