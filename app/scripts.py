"""Action scripts from people: a file or pasted text, in our VPT jsonl or the MineRL/VPT dict format.

`data.actions.read_actions` does the parsing. This adds what a door needs on top: a cap on
length, an error for MineRL keys nobody knows (a typo such as "foward" would otherwise be
dropped silently), and messages that name "the pasted script" instead of a temp file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from data.actions import KEYS, MINERL_OTHER_BUTTONS, Action, read_actions

# Keys a MineRL/VPT env-action dict may hold: ours, the camera, and VPT's other buttons.
MINERL_FIELDS = frozenset(KEYS) | frozenset(MINERL_OTHER_BUTTONS) | {"camera"}


class ScriptError(ValueError):
    """An action script that cannot be used; the message names the file (or the pasted text) and line."""


def _unknown_fields(record: object) -> list[str]:
    if isinstance(record, dict) and "keyboard" not in record and "mouse" not in record:
        return sorted(set(record) - MINERL_FIELDS)
    return []


def _check_minerl_fields(path: Path, shown: str) -> None:
    """MineRL dicts with keys nobody knows; bad JSON is left to read_actions, whose messages are precise."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            return
        places = [f"{shown}: item {i}" for i in range(len(items))] if isinstance(items, list) else []
        records = items if isinstance(items, list) else []
    else:
        places, records = [], []
        for lineno, line in enumerate(text.splitlines(), start=1):
            try:
                records.append(json.loads(line))
            except ValueError:
                return
            places.append(f"{shown}:{lineno}")
    for place, record in zip(places, records):
        unknown = _unknown_fields(record)
        if unknown:
            raise ScriptError(f"{place}: unknown key(s) {unknown}; known keys: {', '.join(KEYS)}, camera")


def read_script(path: str | os.PathLike, max_frames: int, shown: str | None = None) -> list[Action]:
    """Actions from a script file; at least 1 and at most `max_frames` of them."""
    path = Path(path)
    shown = shown or str(path)
    if not path.is_file():
        raise ScriptError(f"{shown}: no such action script")
    try:
        _check_minerl_fields(path, shown)
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
