#!/bin/bash
# The CUDA paths of the long-step maps and of metatrain's training, and their cost on a GPU.
#
#   bash benchmarks/gpu_check.sh prepare   # here, after the demo has trained water (and argon):
#                                          # copies what the check needs into .gpu/ (about 35 MB),
#                                          # and wheels for an offline machine into .whl/ (25 MB)
#   bash benchmarks/gpu_check.sh run       # on the GPU machine, from the repository root, with
#                                          # .gpu/ (and .whl/ if actionmd's stack is not installed)
#
# run: loads the demo models (re-exporting them from their checkpoints if this torch cannot
# read them), trains water's demo generating function twice on CUDA side by side (metatrain's
# architecture and actionmd's even-in-p one, 15 epochs; a time limit exports the newest
# epoch), times the step's pieces with benchmarks/step_cost.py on CUDA for the box and its
# 2x2x2 and 4x4x4 repeats, then once more with the GPU to itself. Everything lands in $OUT
# (default /tmp/gpu_check).
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"

prepare() {
  for s in water argon; do
    [ -f results/$s/models/symplectic.pt ] || { echo "results/$s/models: not trained yet, skipped"; continue; }
    mkdir -p .gpu/$s/models .gpu/$s/datasets .gpu/$s/ckpt
    cp results/$s/models/{direct,symplectic}.pt .gpu/$s/models/
    cp results/$s/datasets/initial.extxyz .gpu/$s/datasets/
    for k in direct symplectic; do cp results/$s/training/$k/model.ckpt .gpu/$s/ckpt/$k.ckpt; done
  done
  for part in train val; do gzip -c results/water/datasets/symplectic_$part.extxyz > .gpu/water/datasets/symplectic_$part.extxyz.gz; done
  python3 - <<'PY'
import json, sys
sys.path.insert(0, "src")
from actionmd import config
c = config.load(); c["preset"] = "demo"; r = config.resolve(c, "water")
out = {k: r[k] for k in ("pairing", "physics", "reference", "training")}
out["device"] = "auto"
for name, even in (("standard", False), ("even", True)):
    out["training"] = {**out["training"], "even_action": even}
    open(f".gpu/train_{name}.json", "w").write(json.dumps(out))
PY
  mkdir -p .whl/py
  plat="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any"
  for pkg in metatrain metatomic-torch metatensor-torch metatensor-core vesin metatensor-learn metatensor-operations \
             metatomic-ase wigners ctypes-dlpack ase omegaconf antlr4-python3-runtime pydantic pydantic-core \
             annotated-types typing-inspection jsonschema jsonschema-specifications referencing rpds-py; do
    v=$(python3 -m pip show $pkg 2>/dev/null | awk '/^Version/{print $2}')
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $plat \
      -d .whl "$pkg${v:+==$v}" 2>&1 | grep -v WARNING
  done
  cp "$(python3 -c 'import hostlist; print(hostlist.__file__)')" .whl/py/  # python-hostlist: an sdist only
  du -sh .gpu .whl
}

run() {
  T0=$(date +%s)
  if ! python3 -c "import metatomic.torch, metatrain" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD/.whl/py:$PYTHONPATH
  fi
  export PYTHONPATH=$PWD/src:$PYTHONPATH
  nvidia-smi -L
  python3 -c "import torch, metatomic.torch, metatrain; print('torch', torch.__version__, torch.cuda.get_device_name())" || exit 1
  for s in water argon; do
    [ -d .gpu/$s/models ] || continue
    for k in direct symplectic; do
      python3 -c "from metatomic.torch import load_atomistic_model as l; l('.gpu/$s/models/$k.pt')" 2> "$OUT/load.err" || {
        tail -3 "$OUT/load.err"; echo "re-exporting $s $k with this torch"
        python3 -m actionmd.architectures export .gpu/$s/ckpt/$k.ckpt -o .gpu/$s/models/$k.pt 2>&1 | tail -2; }
    done
  done
  echo "setup $(( $(date +%s) - T0 )) s"
  mkdir -p /tmp/full
  for f in .gpu/water/datasets/*.gz; do gunzip -c "$f" > /tmp/full/$(basename "$f" .gz); done
  for v in standard even; do
    ( start=$(date +%s)
      timeout 360 python3 -m actionmd md-train --kind symplectic --config "$(cat .gpu/train_$v.json)" \
        --datasets /tmp/full --workdir /tmp/train_$v --threads 4 --out "$OUT/water_symplectic_$v.pt" > "$OUT/train_$v.log" 2>&1
      echo "train $v rc=$? wall $(( $(date +%s) - start )) s" >> "$OUT/log"
      if [ ! -f "$OUT/water_symplectic_$v.pt" ]; then
        ck=$(ls -t /tmp/train_$v/outputs/*/*/model_*.ckpt 2>/dev/null | head -1)
        [ -n "$ck" ] && python3 -m actionmd.architectures export "$ck" -o "$OUT/water_symplectic_${v}_partial.pt" > /dev/null 2>&1 \
          && echo "exported $ck" >> "$OUT/log"
      fi ) &
  done
  for s in water argon; do
    [ -d .gpu/$s/models ] || continue
    timeout 150 python3 benchmarks/step_cost.py --atomistic .gpu/$s --system $s --devices cuda --replicate 1 2 4 \
      --repeats 20 --out "$OUT/step_cost_${s}_cuda_busy.csv" 2>&1 | grep -v -i warn | tee -a "$OUT/log"
  done
  wait
  timeout 80 python3 benchmarks/step_cost.py --atomistic .gpu/water --system water --devices cuda --replicate 1 4 \
    --repeats 30 --out "$OUT/step_cost_water_cuda.csv" 2>&1 | grep -v -i warn | tee -a "$OUT/log"
  grep train "$OUT/log"
  for v in standard even; do grep -h "Epoch" "$OUT/train_$v.log" | tail -1 | cut -c1-600; done
  echo "total $(( $(date +%s) - T0 )) s"
}

case "$1" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: bash benchmarks/gpu_check.sh prepare|run"; exit 2 ;;
esac
