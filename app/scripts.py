"""Action scripts from people: a file or pasted text, in our VPT jsonl or the MineRL/VPT dict format.

`data.actions.read_actions` does the parsing. This adds what a door needs on top: a cap on
length, an error for keys nobody knows (a MineRL typo such as "foward", or a VPT line's
"key.keyboard.ww" or "w", would otherwise be dropped silently), and messages that name
"the pasted script" instead of a temp file. The clip reader stays lenient with recordings
made elsewhere; a script is typed by a person, so a key that is no key is a mistake.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from data.actions import KEYS, MINERL_OTHER_BUTTONS, VPT_KEYS, Action, read_actions

# Keys a MineRL/VPT env-action dict may hold: ours, the camera, and VPT's other buttons.
MINERL_FIELDS = frozenset(KEYS) | frozenset(MINERL_OTHER_BUTTONS) | {"camera"}
# Minecraft's names for keyboard keys, as the VPT recorder writes them. Ours are read (VPT_KEYS); the others
# (e, q, 1-9, escape, ...) are real keys a recording holds and are ignored; anything else is a typo.
MINECRAFT_KEY = re.compile(
    r"key\.keyboard\.([a-z0-9]|f[1-9]|f1[0-9]|f2[0-5]|escape|tab|enter|backspace|space|caps\.lock|delete|insert"
    r"|home|end|page\.(up|down)|up|down|left|right|(left|right)\.(shift|control|alt|win|bracket)|grave\.accent"
    r"|minus|equal|semicolon|apostrophe|comma|period|slash|backslash|menu|pause|print\.screen|scroll\.lock"
    r"|num\.lock|world\.[12]|keypad\.([0-9]|add|subtract|multiply|divide|decimal|enter|equal))"
)
VPT_MOUSE_BUTTONS = (0, 1, 2)  # attack, use, pick block (read as nothing)


class ScriptError(ValueError):
    """An action script that cannot be used; the message names the file (or the pasted text) and line."""


def _unknown_fields(record: object) -> list[str]:
    if not isinstance(record, dict):
        return []
    if "keyboard" not in record and "mouse" not in record:
        return sorted(set(record) - MINERL_FIELDS)
    keyboard, mouse = record.get("keyboard"), record.get("mouse")
    names = keyboard.get("keys", []) if isinstance(keyboard, dict) else []
    buttons = mouse.get("buttons", []) if isinstance(mouse, dict) else []
    unknown = [n for n in names if isinstance(n, str) and n not in VPT_KEYS and not MINECRAFT_KEY.fullmatch(n)]
    unknown += [f"mouse button {b}" for b in buttons if isinstance(b, int) and b not in VPT_MOUSE_BUTTONS]
    return unknown


def _known_keys_hint(record: object) -> str:
    if isinstance(record, dict) and ("keyboard" in record or "mouse" in record):
        return f"known keys: {', '.join(VPT_KEYS)}; mouse buttons {VPT_MOUSE_BUTTONS}"
    return f"known keys: {', '.join(KEYS)}, camera"


def _check_fields(path: Path, shown: str) -> None:
    """Records with keys nobody knows; bad JSON is left to read_actions, whose messages are precise."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except (ValueError, RecursionError):
            return
        places = [f"{shown}: item {i}" for i in range(len(items))] if isinstance(items, list) else []
        records = items if isinstance(items, list) else []
    else:
        places, records = [], []
        for lineno, line in enumerate(text.splitlines(), start=1):
            try:
                records.append(json.loads(line))
            except (ValueError, RecursionError):
                return
            places.append(f"{shown}:{lineno}")
    for place, record in zip(places, records):
        unknown = _unknown_fields(record)
        if unknown:
            raise ScriptError(f"{place}: unknown key(s) {unknown}; {_known_keys_hint(record)}")


def read_script(path: str | os.PathLike, max_frames: int, shown: str | None = None) -> list[Action]:
    """Actions from a script file; at least 1 and at most `max_frames` of them."""
    path = Path(path)
    shown = shown or str(path)
    if not path.is_file():
        raise ScriptError(f"{shown}: no such action script")
    try:
        _check_fields(path, shown)
        actions = read_actions(path)
    except ScriptError:
        raise
    except ValueError as err:  # ActionFormatError and Action's own checks
        raise ScriptError(str(err).replace(str(path), shown)) from None
    if not actions:
        raise ScriptError(f"{shown}: the script holds no actions")
    if len(actions) > max_frames:
        raise ScriptError(f"{shown}: {len(actions)} actions; the limit is {max_frames} frames per request")
    return actions


def parse_script_text(text: str, max_frames: int, shown: str = "pasted script") -> list[Action]:
    """Actions from pasted text (jsonl lines or a JSON list)."""
    if not text.strip():
        raise ScriptError(f"{shown}: empty; paste one JSON action per line")
    fd, tmp = tempfile.mkstemp(prefix="wm-script-", suffix=".jsonl")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return read_script(tmp, max_frames, shown)
    finally:
        os.unlink(tmp)
