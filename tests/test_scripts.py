"""Action scripts typed by people: typos in either format are refused, nothing silently dropped."""

from __future__ import annotations

import json

import pytest

from app.scripts import ScriptError, parse_script_text
from data.actions import Action, to_vpt_line


def vpt_line(keys: list[str], buttons: list[int] = ()) -> str:
    line = to_vpt_line(Action({"forward"}, (0.0, 1.0)))
    line["keyboard"]["keys"] = keys
    line["mouse"]["buttons"] = list(buttons)
    line.pop("wm", None)
    return json.dumps(line)


def test_a_vpt_script_with_real_minecraft_keys_reads():
    text = "\n".join([vpt_line(["key.keyboard.w", "key.keyboard.e", "key.keyboard.1"], [0, 2])] * 3)
    actions = parse_script_text(text, 10)
    assert len(actions) == 3 and actions[0].keys == {"forward", "attack"}


@pytest.mark.parametrize("keys, buttons, unknown", [
    (["key.keyboard.ww"], [], "key.keyboard.ww"),  # a typo
    (["w"], [], "'w'"),  # the key's letter instead of its Minecraft name
    (["key.keyboard.w"], [7], "mouse button 7"),
])
def test_a_vpt_script_with_an_unknown_key_or_button_is_refused(keys, buttons, unknown):
    text = vpt_line(["key.keyboard.w"]) + "\n" + vpt_line(keys, buttons)
    with pytest.raises(ScriptError, match=f"pasted script:2: unknown key.*{unknown}.*known keys: key.keyboard.w"):
        parse_script_text(text, 10)


@pytest.mark.parametrize("text", ["[" * 50_000, '{"forward": ' + "[" * 50_000])
def test_json_nested_too_deeply_is_a_script_error(text):
    with pytest.raises(ScriptError, match="nested too deeply|bad JSON"):
        parse_script_text(text, 10)
