#!/usr/bin/env bash
# Train a world model from scratch on a lent GPU machine, in one call of the `device` tool, and pack it to come back.
#
# Why a prepared script: a session is lent a GPU by chance and for 15 minutes in all, a machine's start included, so
# the job must run right the first time. It starts with the same config shrunk (gpu-smoke.json) on two tiny clips, so
# a bug that only a GPU shows fails in seconds, not after minutes of training. Tested on a CPU by
# tests/test_gpu_train.py (SMOKE_ONLY=1).
#
#   bash tools/gpu_train.sh OUT [CONFIG]      (from the repository root; CONFIG: worldmodel/configs/gpu-default.json)
#
# What the GPU machine needs beyond its image (torch, numpy, safetensors, tqdm, pillow, opencv): diffusers, carried as
# wheels in .whl/ (git-ignored), fetched here once with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 -d .whl diffusers==0.42.1 importlib_metadata lazy-importer
# and the call (device tool `run`, carry [".whl"], timeout_s 590):
#   bash tools/gpu_train.sh $OUT
# Stages, each timed into OUT/job.log: the smoke run; record FRAMES frames (150,000; every core, no mp4s); train
# CONFIG (stopped 20 s before BUDGET_S, 570 s from the start, if it runs long: its last checkpoint's pipeline then
# comes back); pack OUT/result.tar.part-* (15 MiB each: a file coming back is at most 16 MiB) with the pipeline,
# the autoencoder, config.json, log.jsonl and loss.png. Back here:
#   mkdir -p runs/wm-gpu && cat FILES_AT/result.tar.part-* | tar x -C runs/wm-gpu
# then judge it against the shipped default on unseen worlds before shipping anything (a new latent means every
# figure of the model card, the quick suite and the full suite is measured again):
#   python -m eval.measure --pipeline runs/wm-gpu/pipeline --out runs/measure-gpu --strip runs/measure-gpu/strip.png
#   worldmodel eval --model runs/wm-gpu/pipeline --quick --out runs/eval/quick-gpu
set -euo pipefail
deadline=$(( $(date +%s) + ${BUDGET_S:-570} ))  # the call's limit is 600 s: keep time to pack what there is
out=$(realpath -m "${1:?usage: tools/gpu_train.sh OUT [CONFIG]}")
config=${2:-worldmodel/configs/gpu-default.json}
frames=${FRAMES:-150000}
work=${WORK:-/tmp/gpu-train}
mkdir -p "$out" "$work"
log="$out/job.log"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 TQDM_MININTERVAL=20
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
stage() { echo "=== $(date -u +%T) $*" | tee -a "$log"; }
wm() { python3 -m app.cli "$@" >>"$log" 2>&1 || { tail -40 "$log"; exit 1; }; }

stage "machine: $(nproc) cores; $(python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")')"
stage "smoke: gpu-smoke.json on 2 tiny clips"
rm -rf "$work/smoke-clips" "$work/smoke-run"
wm record --out "$work/smoke-clips" --frames 80 --clip-frames 40 --workers 2 --no-video --no-progress
wm train --config worldmodel/configs/gpu-smoke.json --data "$work/smoke-clips" --out "$work/smoke-run" --threads 4
if [ "${SMOKE_ONLY:-0}" = 1 ]; then stage "smoke only: done"; exit 0; fi

stage "record $frames frames"
wm record --out "$work/data" --frames "$frames" --size 64 --seed 0 --player mixed --workers "$(nproc)" --no-video --no-progress
stage "train $config"
# Stopped before the deadline if it runs long: the pipeline of its last checkpoint still comes back.
timeout $(( deadline - $(date +%s) - 20 )) python3 -m app.cli train --config "$config" --data "$work/data" \
    --out "$work/run" --threads 8 --force >>"$log" 2>&1 || stage "train stopped early (exit $?)"
[ -d "$work/run/pipeline" ] || { tail -40 "$log"; exit 1; }
stage "pack"
tar c -C "$work/run" pipeline autoencoder config.json log.jsonl loss.png | split -b 15M - "$out/result.tar.part-"
tr '\r' '\n' <"$log" | grep "reconstruction PSNR\|^step .*: next-frame" | tail -3
stage "done: $(ls "$out" | tr '\n' ' ')"
