#!/usr/bin/env bash
# Issue 12's GPU checks as one command for the lab's lent device machine (an H200 with its own Python 3.12 and
# torch, no network): `prepare` here, then `run` there. The machine lacks pydantic (genlab's specs), so its
# wheels travel in .whl, and bench_measures' reference package in .ref (both ignored by git, named in the
# device call's `carry`); genlab runs from src/.
#
#   bash benchmarks/device.sh prepare                   # here: download the wheels into .whl (~3 MB)
#   device run: command "bash benchmarks/device.sh run", carry [".whl", ".ref"], timeout_s 540
#   SMOKE=1 DEVICE=cpu PYTHON=.venv/bin/python OUT=/tmp/out bash benchmarks/device.sh run  # here, tiny, CPU
#
# `run` writes gpu.json (bench_gpu.py: solo img/s per CUDA option, 25-member ensemble vs eager solo,
# ch4_convnet3 projected) and measures.txt (bench_measures.py on the device) under $OUT, and a log of both.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5"

case "${1:-}" in
prepare)
  for d in /.whl/ /.ref/; do grep -qx "$d" .git/info/exclude 2>/dev/null || echo "$d" >> .git/info/exclude; done
  mkdir -p .ref/3fd97c0  # bench_measures' reference package, for a machine without the git history
  git archive 3fd97c0 src/genlab/measures | tar -x -C .ref/3fd97c0
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl $WHEELS
  ls -la .whl
  ;;
run)
  : "${OUT:?set OUT to the folder the results go to}"
  PY="${PYTHON:-python3}"  # the device machine's python3 holds its torch
  if [ -d .whl ] && ! "$PY" -c "import pydantic" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
  fi
  export PYTHONPATH="src:benchmarks${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
  DEVICE="${DEVICE:-cuda}"
  if [ -n "${SMOKE:-}" ]; then
    GPU_ARGS="--images 256 --members 2 --sweep-runs 2 --epochs 2"; MEASURE_ARGS="--n 64 --width 8 --repeats 1"
  else
    GPU_ARGS=""; MEASURE_ARGS="--repeats 3"
  fi
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee "$OUT/log.txt"
  "$PY" benchmarks/bench_gpu.py --device "$DEVICE" $GPU_ARGS --out "$OUT/gpu.json" 2>&1 | tee -a "$OUT/log.txt"
  "$PY" benchmarks/bench_measures.py --device "$DEVICE" --paths old32,new32 $MEASURE_ARGS 2>&1 \
    | tee "$OUT/measures.txt" | tee -a "$OUT/log.txt"
  ;;
*)
  echo "usage: bash benchmarks/device.sh prepare|run" >&2
  exit 2
  ;;
esac
