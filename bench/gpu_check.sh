#!/usr/bin/env bash
# Device check for a GPU machine: venv (if missing), emoji corpus (if missing), then the default
# CLIP config for a fixed number of steps in fp32, bf16 and bf16 + torch.compile; prints samples/s
# and writes bench/results/gpu_check.json. Meant to finish in under 8 minutes on one H200 with the
# venv present (building the venv first adds the pip install).
#
#   bash bench/gpu_check.sh                 # the check
#   bash bench/gpu_check.sh --smoke         # CPU, 3 tiny steps: checks the script anywhere
#   bash bench/gpu_check.sh --variants bf16 --steps 500 --batch-size 1024   # any bench/gpu_check.py flag
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
       GRADIO_ANALYTICS_ENABLED=False
PY=.venv/bin/python
start=$(date +%s)
if [ ! -x "$PY" ]; then
  echo "[gpu_check] no .venv: make install"
  make install
fi
"$PY" -c "import torch; print('[gpu_check] torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
if ! "$PY" -c "from mmssl.data.corpus import split_file; import sys; sys.exit(0 if split_file('emoji', 'train').exists() else 1)" 2>/dev/null; then
  echo "[gpu_check] building the emoji corpus"
  "$PY" -m mmssl data build emoji
fi
echo "[gpu_check] set-up took $(( $(date +%s) - start )) s"
"$PY" bench/gpu_check.py "$@"
echo "[gpu_check] done in $(( $(date +%s) - start )) s"
