#!/usr/bin/env bash
# The GPU checks, in one run on a CUDA machine: the real-size transformer step
# (models_gpu_check.py), the DeepSpeed-vs-plain training bench on CUDA, and the tests
# marked `gpu`. Results land in $OUT (default bench/results/gpu).
#   bash bench/gpu_checks.sh
# Where the project's environment is not installed, a folder .whl of wheels is installed
# into /tmp/site first (a machine without registry access).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu}
mkdir -p "$OUT"
PY=${PY:-python3}
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 DS_BUILD_OPS=0 TORCH_EXTENSIONS_DIR=/tmp/torch_extensions
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia_smi.txt"
$PY -c "import torch, diffusers, deepspeed; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'deepspeed', deepspeed.__version__)" | tee "$OUT/versions.txt"
# GPU utilisation sampled once a second while the checks run.
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 1 > "$OUT/gpu_utilisation.csv" &
SMI=$!
rc=0
timeout 240 $PY bench/models_gpu_check.py --preset wan2.1-t2v-1.3b --frames 81 --height 480 --width 832 --steps 4 \
  > "$OUT/models_gpu_check.json" 2> "$OUT/models_gpu_check.log" || rc=1
timeout 300 $PY bench/training.py --preset wan2.1-t2v-1.3b --device cuda --steps 5 \
  > "$OUT/training_cuda.json" 2> "$OUT/training_cuda.log" || rc=1
timeout 200 $PY -m pytest -q -m gpu -p no:cacheprovider tests/models/test_models_gpu.py tests/training/test_ds_latents.py \
  > "$OUT/pytest_gpu.log" 2>&1 || rc=1
kill $SMI 2>/dev/null
tail -3 "$OUT/pytest_gpu.log"
exit $rc
