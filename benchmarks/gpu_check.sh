#!/usr/bin/env bash
# The GPU checks of issues 4 and 6 as one script, for a CUDA machine (one run, ~10 min):
#   1. CTR scoring in bf16 on a BERT-base shape, against the GPU's peak (bench_ctr_scoring.py);
#   2. one DPO iteration on a Qwen2-0.5B shape with LoRA + bf16 (bench_dpo_gpu.py);
#   3. Table 2 on 14 simulated days (all ~210k impressions), each backbone x variant trained in
#      its own process on the GPU (python -m gqr_training.eval.ctr_table --device cuda).
# For a machine without network access, Python wheels this project needs beyond its image
# travel in .whl/ and are installed first (gpu_env.sh). Results go to $OUT (or ./gpu-out).
#
#   bash benchmarks/gpu_check.sh [TABLE_SECONDS]
set -u
TABLE_SECONDS=${1:-240}
# shellcheck source=benchmarks/gpu_env.sh
. "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, trl; print(torch.__version__, transformers.__version__, trl.__version__)"

logs=/tmp/gqr-logs
( time python3 -m gqr_training.cli sim --policy annotator --days 14 --out "$logs" ) \
  >"$OUT/sim.log" 2>&1 &
sim=$!

echo "== 1. CTR bf16 scoring"
timeout 100 python3 -m benchmarks.bench_ctr_scoring --sizes tiny,base --no-cpu --no-server \
  --iters 20 2>&1 | tee "$OUT/ctr_scoring.log" | grep -v Warning | tail -4

echo "== 2. DPO iteration, Qwen2-0.5B shape, LoRA, bf16"
timeout 200 python3 -m benchmarks.bench_dpo_gpu 2>&1 | grep -v "it/s\]\|examples/s\]" \
  >"$OUT/dpo.log"
tail -3 "$OUT/dpo.log"

echo "== 3. Table 2 on the GPU (${TABLE_SECONDS} s budget)"
wait $sim
tail -3 "$OUT/sim.log"
pids=()
for b in bert albert roberta; do
  for v in base pid ctx; do
    timeout "$TABLE_SECONDS" python3 -m gqr_training.eval.ctr_table --logs "$logs" \
      --out "/tmp/t2/$b-$v" --backbones $b --variants $v --device cuda --threads 1 \
      --layers 4 --hidden 256 --heads 4 --intermediate 1024 --batch-size 512 --lr 2e-4 \
      --epochs 4 --patience 2 --no-progress >"/tmp/t2-$b-$v.log" 2>&1 &
    pids+=($!)
  done
done
for p in "${pids[@]}"; do wait "$p"; done
for f in /tmp/t2-*.log; do echo "## $f"; grep -E "^epoch|^read|^\{\"backbone|best_auc" "$f"; done \
  | tee "$OUT/table2.log"
cat /tmp/t2/*/table2.md 2>/dev/null | tee "$OUT/table2.md"
cp /tmp/t2/bert-pid/reliability.png "$OUT/" 2>/dev/null || true
echo done
