#!/usr/bin/env bash
# On the bare GPU machine (docs/gpu.md): install the wheels carried in .gpu/ beside the machine's own
# CUDA torch, then run the GPU check. Results and the log go to $OUT (the device tool's folder) or
# bench/results. Prepare .gpu/ here first with `make gpu-wheels`.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench/results}"
mkdir -p "$out"
ls .gpu/wheels/*.whl >/dev/null || { echo "error: no .gpu/wheels; run make gpu-wheels and carry .gpu"; exit 2; }
# --no-deps for every wheel: the set is closed over what the image lacks (scripts/gpu_wheels.py),
# and pip never resolves, so it cannot replace torch, numpy or pandas. --target keeps them apart.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .gpu/wheels/*.whl
export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
export CRYPTOCAST_SHARED_DATA="$PWD/.gpu/data/ohlcv/binance"
export PYTHONUNBUFFERED=1
python3 -c 'import torch, cryptocast, ta, pydantic, ccxt; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'
python3 scripts/gpu_check.py --out "$out" "$@" 2>&1 | tee "$out/gpu_check.log"
