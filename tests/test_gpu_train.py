"""tools/gpu_train.sh, the one-call GPU training job, runs its smoke stage here on the CPU: the same script and
configs a lent GPU machine gets, without the packages that machine lacks (PyAV, Gradio, pygame)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worldmodel.config import load_train_config

REPO = Path(__file__).resolve().parent.parent


def test_gpu_configs_parse_and_agree_on_the_latent():
    default = load_train_config(str(REPO / "worldmodel/configs/gpu-default.json"))
    smoke = load_train_config(str(REPO / "worldmodel/configs/gpu-smoke.json"))
    assert (default.autoencoder, default.dit, default.sampling) == (smoke.autoencoder, smoke.dit, smoke.sampling)
    assert default.dit.egomotion and default.autoencoder.latent_channels == 8


@pytest.mark.slow
def test_the_smoke_stage_trains_and_saves_a_pipeline(tmp_path):
    env = {**os.environ, "SMOKE_ONLY": "1", "WORK": str(tmp_path / "work"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # python3 = this interpreter
    done = subprocess.run(["bash", "tools/gpu_train.sh", str(tmp_path / "out")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke only: done" in (tmp_path / "out" / "job.log").read_text()
    pipeline = tmp_path / "work" / "smoke-run" / "pipeline"
    assert (pipeline / "dit" / "model.safetensors").is_file() and (pipeline / "autoencoder" / "config.json").is_file()
    assert not list((tmp_path / "work" / "smoke-clips").glob("*.mp4"))
