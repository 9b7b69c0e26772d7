#!/usr/bin/env bash
# Downloads the locked wheels of requirements files into the wheelhouse the image builds install
# from (~/.cache/gqr-images/wheels): pip checks every file against the lock's hashes, and one
# already there is reused, so a build downloads a dependency once. The build mounts this folder
# and installs with --no-index (images/build.sh); nothing is downloaded inside the build.
#   bash images/wheels.sh requirements/operator.txt [requirements/serve.txt ...]
# Prints the wheelhouse path last. Env: GQR_IMAGES_CACHE, PYTHON (default python3.11).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${GQR_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gqr-images}"
wheels="$cache/wheels"
die() { echo "images/wheels.sh: $*" >&2; exit 1; }
(($#)) || die "usage: images/wheels.sh REQUIREMENTS.txt..."

mkdir -p "$wheels"
exec 9>"$cache/.wheels.lock"
flock 9
# A pip of its own (the project's .venv is made by uv and has none).
if [[ ! -x $cache/pip-venv/bin/pip ]]; then
  "${PYTHON:-python3.11}" -m venv "$cache/pip-venv" || die "cannot make a venv with ${PYTHON:-python3.11}"
fi
for req in "$@"; do
  [[ -f $req ]] || req="$root/$req"
  [[ -f $req ]] || die "$req is missing: run 'make lock'"
  # A requirements file fully downloaded before (same content) is not checked again.
  stamp="$wheels/.complete-$(sha256sum "$req" | cut -c1-16)"
  [[ -f $stamp ]] && continue
  t0=$SECONDS
  before=$(find "$wheels" -type f -name '*.whl' | wc -l)
  # The images run Python 3.11 on linux x86_64 like this machine: the lock's markers and wheel
  # tags are evaluated for it. --only-binary: an image build compiles nothing.
  "$cache/pip-venv/bin/pip" download -q --disable-pip-version-check --no-deps --require-hashes \
    --only-binary=:all: --dest "$wheels" -r "$req" \
    || die "pip download -r $req failed"
  touch "$stamp"
  after=$(find "$wheels" -type f -name '*.whl' | wc -l)
  echo "images/wheels.sh: $(basename "$req"): $((after - before)) new file(s) in $((SECONDS - t0))s" \
    "(wheelhouse $(du -sh "$wheels" | cut -f1))" >&2
done
echo "$wheels"
