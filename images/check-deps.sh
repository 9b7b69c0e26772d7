#!/usr/bin/env bash
# Proves an image's dependency set is complete: installs ONLY the locked requirements its
# target in images/Dockerfile installs (requirements/<extras>.txt, hash-checked) and the project
# into a fresh venv, as the image build does, then runs the entrypoint's --help and imports the
# modules the image runs.
#   bash images/check-deps.sh operator        # ~1 min
#   bash images/check-deps.sh trainer         # several minutes (torch)
# Env: KEEP_VENV=1 keeps the venv (path printed); PYTHON (default python3.11).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=images/targets.sh
source "$root/images/targets.sh"
name="${1:?usage: images/check-deps.sh NAME  (one of: $(image_targets | tr '\n' ' '))}"
lock="$(image_lock "$name")"
[[ -n "$lock" ]] || { echo "no image '$name' in images/Dockerfile (targets: $(image_targets | tr '\n' ' '))" >&2; exit 2; }

# What each image runs: the entrypoint with --help, and the modules behind it (--help alone
# may return before the heavy imports).
case "$name" in
  operator)      help=(gqr-operator --help)
                 imports="gqr_operator.cli gqr_operator.handlers gqr_operator.metrics" ;;
  gateway)       help=(gqr-gateway --help)
                 imports="gqr_serving.gateway.app gqr_serving.gateway.cli" ;;
  trainer)       help=(gqr --help)
                 imports="gqr_training.cli gqr_training.ctr.train gqr_training.cor.build gqr_training.align" ;;
  ctr-predictor) help=(python -m gqr_training.ctr.server --help)
                 imports="gqr_training.ctr.server gqr_training.ctr.scorer" ;;
  *) echo "check-deps.sh knows no entrypoint for '$name'; add it to the case list" >&2; exit 2 ;;
esac

work="$(mktemp -d "${TMPDIR:-/tmp}/gqr-deps-$name.XXXXXX")"
if [[ "${KEEP_VENV:-0}" != 1 ]]; then trap 'rm -rf "$work"' EXIT; fi
start=$SECONDS
requirements="$root/$lock"
[[ -f "$requirements" ]] || { echo "$requirements is missing: run 'make lock'" >&2; exit 2; }
echo "[$name] fresh venv in $work, installing $lock and the project ..."
"${PYTHON:-python3.11}" -m venv "$work/venv"
# A copy of the sources, so the build leaves nothing in the checkout (as COPY in the image).
mkdir -p "$work/src"
cp -r "$root/pyproject.toml" "$root/README.md" "$root/contracts" "$root/operator" "$root/serving" \
  "$root/training" "$work/src/"
"$work/venv/bin/pip" install -q --require-hashes --no-deps -r "$requirements"
"$work/venv/bin/pip" install -q --no-deps --no-build-isolation "$work/src"
echo "[$name] installed in $((SECONDS - start))s; running: ${help[*]}"
cd "$work"  # not the checkout: imports must come from the venv
PATH="$work/venv/bin:$PATH" "${help[@]}" > "$work/help.txt"
head -3 "$work/help.txt"
for module in $imports; do
  "$work/venv/bin/python" -c "import $module" || { echo "[$name] FAILED: import $module" >&2; exit 1; }
done
if [[ "$name" == operator || "$name" == gateway ]] && "$work/venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "[$name] FAILED: torch is installed in the $name image" >&2; exit 1
fi
if [[ "$name" == gateway ]]; then  # COR's query encoder, torch-free
  "$work/venv/bin/python" -c "from gqr_serving.cor import load_encoder as l; assert l('minilm', runtime='numpy').encode(['weather']).shape == (1, 384)" \
    || { echo "[$name] FAILED: the NumPy COR encoder does not run" >&2; exit 1; }
fi
echo "[$name] OK in $((SECONDS - start))s: $lock runs ${help[*]} and imports $imports"
