"""The fuzz table: bad invocations of every command end in one `error:` line and exit status 2, never a traceback.

Each row runs `worldmodel ...` in this process (app.cli.main) on tiny fixtures, so the whole table takes seconds.
Also here: checkpoints with broken settings or weights are refused at load, naming what is wrong.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from app.cli import main
from data.actions import Action, write_actions
from data.video import write_mp4

torch.set_num_threads(1)

WALK = [{"forward": 1, "camera": [0, 2]}] * 3


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny float checkpoint folder (WorldPipeline.save_pretrained)."""
    from worldmodel.autoencoder import FrameAutoencoder
    from worldmodel.config import PRESETS
    from worldmodel.dit import CausalDiT
    from worldmodel.pipeline import WorldPipeline

    ae, dit = PRESETS["wm-tiny"]
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    WorldPipeline(FrameAutoencoder(ae), CausalDiT(dit)).save_pretrained(path)
    return path


def broken_checkpoint(good: Path, where: Path, how: str) -> Path:
    """A copy of `good` damaged in one way."""
    path = where / f"ckpt-{how}"
    shutil.copytree(good, path)

    def edit(name: str, change) -> None:
        values = json.loads((path / name).read_text())
        (path / name).write_text(json.dumps(change(values)))

    if how == "depth-float":
        edit("dit/config.json", lambda v: {**v, "depth": 6.0})
    elif how == "config-list":
        (path / "config.json").write_text("[]")
    elif how == "shift-inf":
        edit("config.json", lambda v: {**v, "sampling": {**v["sampling"], "shift": float("inf")}})  # "Infinity"
    elif how == "guidance-nan":
        edit("config.json", lambda v: {**v, "sampling": {**v["sampling"], "guidance": float("nan")}})  # "NaN"
    elif how == "unknown-top-key":
        edit("config.json", lambda v: {**v, "samplng": {}})
    elif how == "nan-weight":
        from safetensors.torch import load_file, save_file

        state = load_file(str(path / "dit" / "model.safetensors"))
        name = sorted(state)[3]
        state[name] = state[name].clone()
        state[name].view(-1)[0] = float("nan")
        save_file(state, str(path / "dit" / "model.safetensors"))
    return path


def video_folder(where: Path, how: str) -> Path:
    """NAME.mp4 + NAME.jsonl for `eval --videos`, damaged in one way."""
    folder = where / f"videos-{how}"
    folder.mkdir()
    frames = np.random.default_rng(0).integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)
    write_mp4(folder / "v.mp4", frames)
    write_actions(folder / "v.jsonl", [Action({"forward"})] * (3 if how == "short-jsonl" else 8))
    if how == "truncated-mp4":
        data = (folder / "v.mp4").read_bytes()
        (folder / "v.mp4").write_bytes(data[: len(data) // 3])
    return folder


def train_config(where: Path, values) -> str:
    path = where / "train.json"
    path.write_text(values if isinstance(values, str) else json.dumps(values))
    return str(path)


def jobs_file(where: Path, text: str | bytes) -> str:
    path = where / "jobs.jsonl"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def a_port_in_use():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener


GOOD_JOB = json.dumps({"id": "a", "start": 0, "actions": WALK}) + "\n"
TINY = {"preset": "wm-tiny", "data": "."}

# (name, argv(tmp, checkpoint, port) -> list[str], what stderr must say)
TABLE = [
    ("train: no config file", lambda t, c, p: ["train", "--config", str(t / "nofile.json")], "no such config file"),
    ("train: unknown config key", lambda t, c, p: ["train", "--config", train_config(t, {**TINY, "bogus": 1})],
     "unknown key(s) ['bogus']"),
    ("train: config is a list", lambda t, c, p: ["train", "--config", train_config(t, "[]")], "expected a JSON object"),
    ("train: config not JSON", lambda t, c, p: ["train", "--config", train_config(t, "{data:")], "invalid JSON"),
    ("train: NaN setting", lambda t, c, p: ["train", "--config", train_config(t, '{"preset": "wm-tiny", "lr": NaN}')],
     "lr must be a finite number"),
    ("train: float for a whole number", lambda t, c, p: ["train", "--config", train_config(t, {**TINY, "dit": {"depth": 6.0}})],
     "dit.depth must be a whole number"),
    ("train: --data missing", lambda t, c, p: ["train", "--config", train_config(t, TINY), "--data", "/nonexistent"],
     "/nonexistent: no such folder of clips"),
    ("train: init_from missing", lambda t, c, p: ["train", "--config", train_config(t, {**TINY, "init_from": "nodir"})],
     "nodir: not a pipeline folder (the config's \"init_from\""),
    ("train: --steps -5", lambda t, c, p: ["train", "--config", train_config(t, TINY), "--steps", "-5"],
     "steps must be >= 1, got -5"),
    ("train: --max-minutes nan", lambda t, c, p: ["train", "--config", train_config(t, TINY), "--max-minutes", "nan"],
     "max_minutes must be a finite number"),
    ("train: --resume and --force", lambda t, c, p: ["train", "--config", train_config(t, TINY), "--resume", "--force"],
     "pass one of them"),
    ("train: --out is a file", lambda t, c, p: ["train", "--config", train_config(t, TINY), "--out", train_config(t, TINY)],
     "exists and is not a folder"),
    ("quantize: no input folder", lambda t, c, p: ["quantize", str(t / "nodir"), str(t / "out")], "no such checkpoint folder"),
    ("quantize: --threshold nan", lambda t, c, p: ["quantize", str(c), str(t / "out"), "--threshold", "nan"],
     "threshold must be a finite number"),
    ("checkpoint: depth 6.0", lambda t, c, p: ["quantize", str(broken_checkpoint(c, t, "depth-float")), str(t / "o")],
     "dit.depth must be a whole number, got 6.0"),
    ("checkpoint: config.json is []", lambda t, c, p: ["quantize", str(broken_checkpoint(c, t, "config-list")), str(t / "o")],
     "config.json: expected a JSON object, got list"),
    ("checkpoint: shift Infinity", lambda t, c, p: ["quantize", str(broken_checkpoint(c, t, "shift-inf")), str(t / "o")],
     "sampling.shift must be a finite number, got inf"),
    ("checkpoint: guidance NaN", lambda t, c, p: ["quantize", str(broken_checkpoint(c, t, "guidance-nan")), str(t / "o")],
     "sampling.guidance must be a finite number, got nan"),
    ("checkpoint: a NaN weight", lambda t, c, p: ["quantize", str(broken_checkpoint(c, t, "nan-weight")), str(t / "o")],
     "hold NaN or infinite values"),
    ("checkpoint: unknown top-level key", lambda t, c, p: ["quantize", str(broken_checkpoint(c, t, "unknown-top-key")),
                                                           str(t / "o")], "unknown key(s) ['samplng']"),
    ("generate: no job file", lambda t, c, p: ["generate", str(t / "none.jsonl"), "--out", str(t / "o")], "no such job file"),
    ("generate: --out is a file", lambda t, c, p: ["generate", jobs_file(t, GOOD_JOB), "--out", jobs_file(t, GOOD_JOB),
                                                   "--model", "simulator"], "exists and is not a folder"),
    ("generate: --out unwritable", lambda t, c, p: ["generate", jobs_file(t, GOOD_JOB), "--out", "/proc/nope",
                                                    "--model", "simulator"], "cannot create the output folder /proc/nope"),
    ("generate: job nested 50,000 deep", lambda t, c, p: ["generate", jobs_file(t, "[" * 50_000), "--out", str(t / "o")],
     "nested too deeply"),
    ("generate: job file not UTF-8", lambda t, c, p: ["generate", jobs_file(t, b'{"id": "\xff"}\n'), "--out", str(t / "o")],
     "not UTF-8"),
    ("generate: no model there", lambda t, c, p: ["generate", jobs_file(t, GOOD_JOB), "--out", str(t / "o"),
                                                  "--model", str(t / "nomodel")], "cannot load the model"),
    ("record: --out unwritable", lambda t, c, p: ["record", "--out", "/proc/nope", "--frames", "1", "--no-progress"],
     "cannot write to /proc/nope"),
    ("record: --frames 0", lambda t, c, p: ["record", "--out", str(t / "o"), "--frames", "0"], "frames must be at least 1"),
    ("web: port in use", lambda t, c, p: ["web", "--model", "simulator", "--port", str(p)], "Address already in use"),
    ("web: --host 999.1.1.1", lambda t, c, p: ["web", "--model", "simulator", "--host", "999.1.1.1"], "not an address"),
    ("eval: truncated mp4", lambda t, c, p: ["eval", "--videos", str(video_folder(t, "truncated-mp4")), "--out", str(t / "o")],
     "v.mp4"),
    ("eval: jsonl shorter than the video", lambda t, c, p: ["eval", "--videos", str(video_folder(t, "short-jsonl")),
                                                            "--out", str(t / "o")], "v.mp4: 8 frames, but"),
    ("eval: no such folder", lambda t, c, p: ["eval", "--videos", str(t / "none"), "--out", str(t / "o")], "no such folder"),
    ("eval: --quant without --model", lambda t, c, p: ["eval", "--ground-truth", "--quant", "int8", "--out", str(t / "o")],
     "--quant applies to --model only"),
]


@pytest.mark.parametrize("name, argv, message", TABLE, ids=[row[0] for row in TABLE])
def test_a_bad_invocation_is_one_error_line(name, argv, message, tmp_path, checkpoint, capsys):
    listener = a_port_in_use()
    try:
        args = argv(tmp_path, checkpoint, listener.getsockname()[1])
        code = main(args)
    finally:
        listener.close()
    err = capsys.readouterr().err
    assert code == 2, f"{name}: exit {code}, stderr: {err}"
    assert "Traceback" not in err
    assert message in err, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err


def test_a_huge_picture_is_refused_without_a_pil_warning(tmp_path):
    """Only the header is read: a 10000x10000 PNG header (with no pixels) is enough, and PIL would warn on it."""
    import warnings
    import zlib

    from app.worlds import ImageError, load_image

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = (10000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    (tmp_path / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))
                                        + chunk(b"IEND", b""))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        with pytest.raises(ImageError, match="10000x10000 pixels; the limit is 8192"):
            load_image(tmp_path / "huge.png")


def test_training_on_memory_bases_under_torchrun_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """A DiT that reads its base trains in one process; under torchrun (WORLD_SIZE 2) it says so at once."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    config = train_config(tmp_path, {**TINY, "dit": {"egomotion": True, "view_fov": 70.0, "base_input": True}})
    code = main(["train", "--config", config, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "trains in one process" in err, err
    assert not (tmp_path / "run").exists()  # nothing was written
