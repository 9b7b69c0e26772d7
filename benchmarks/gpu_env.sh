# Sourced by gpu_check.sh and gpu_demo.sh (never run alone): $OUT for results, the wheels of
# .whl/ installed into /tmp/site (for a machine without network access; NO_WHL=1 skips them,
# e.g. where the venv already has them), the project's packages on PYTHONPATH, offline and
# unbuffered Python.
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
if [ -d .whl ] && [ -z "${NO_WHL:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >"$OUT/pip.log" 2>&1 || { tail "$OUT/pip.log"; exit 1; }
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/contracts:$PWD/serving:$PWD/training
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
