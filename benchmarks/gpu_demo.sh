#!/usr/bin/env bash
# `gqr demo --device cuda` on a CUDA machine, at a size 2 CPU cores cannot afford in the demo's
# 15 minutes: it checks that the demo's loop runs on a GPU end to end (CTR predictor, SFT, beam
# search, DPO, A/B all on cuda) and measures what the method reaches when compute is not the
# limit (issue 6's targets: +50% true CTR, AEC x2, half the gap to the oracle).
#
# Defaults: 20,000 logged impressions a day (280k; the CPU demo logs 140k), a 4-layer x 4-head
# CTR predictor (the CPU demo: 2 x 2), 1,024 DPO prompts a round (CPU demo: 320), 3 rounds.
# Without network access, wheels beyond the image travel in .whl/ (gpu_env.sh installs them).
# The demo's output (log, report.md/json, iterations.png, DPO state) lands in $OUT.
# On an H100 the whole run needs ~620 s of compute; where one call is limited to 600 s, run it
# again on the same machine and it resumes (measured 2026-11-27: 520 + 110 s).
#
#   bash benchmarks/gpu_demo.sh [SECONDS] [extra gqr demo args...]
set -u
BUDGET=${1:-560}
shift || true
# shellcheck source=benchmarks/gpu_env.sh
. "$(dirname "$0")/gpu_env.sh"
DEVICE=${DEVICE:-cuda}
if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
fi
python3 -c "import torch, transformers, trl; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'trl', trl.__version__, 'cuda', torch.cuda.is_available())"

D=${DEMO_DIR:-/tmp/gqr-gpu-demo}
start=$(date +%s)
timeout "$BUDGET" python3 -m gqr_training.cli demo --out "$D" --device "$DEVICE" --no-progress \
  --impressions-per-day 20000 --ctr-layers 4 --ctr-heads 4 --train-prompts 1024 \
  --max-iterations 3 --threads 8 "$@" 2>&1 | grep -v -i "warn" | tee "$OUT/demo.log"
echo "demo exit ${PIPESTATUS[0]} after $(($(date +%s) - start)) s" | tee -a "$OUT/demo.log"
for f in report.md report.json iterations.png llm/dpo/state.json; do
  [ -f "$D/$f" ] && cp "$D/$f" "$OUT/"
done
true
