#!/usr/bin/env bash
# Builds image targets of images/Dockerfile with buildah, where no image registry and no
# package index need be reachable from inside the build:
#   1. images/engine.sh   podman, buildah, runc, debootstrap and the engine's ulimits;
#   2. images/base.sh     the local Debian bookworm + python3.11 base (cached tarball), passed
#                         as PYTHON_IMAGE (unless PYTHON_IMAGE is set, e.g. the official one);
#   3. images/wheels.sh   the locked wheels of the targets, downloaded once on the host into
#                         ~/.cache/gqr-images/wheels, mounted into the build (pip --no-index);
#   4. buildah bud --isolation=chroot --layers, one target at a time, tagged
#      $REGISTRY/gqr-<target>:$VERSION; prints each image's size.
#   bash images/build.sh [TARGET...]      (default: every target)
# Env: REGISTRY (default ghcr.io/gqr-dev), VERSION (default pyproject's), PYTHON_IMAGE.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=images/targets.sh
source images/targets.sh
die() { echo "images/build.sh: $*" >&2; exit 1; }

targets=("$@")
((${#targets[@]})) || mapfile -t targets < <(image_targets)
locks=()
for t in "${targets[@]}"; do
  lock="$(image_lock "$t")"
  [[ -n $lock ]] || die "no image '$t' in images/Dockerfile (targets: $(image_targets | tr '\n' ' '))"
  locks+=("$lock")
done
registry="${REGISTRY:-ghcr.io/gqr-dev}"
version="${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)}"

t0=$SECONDS
bash images/engine.sh
base="${PYTHON_IMAGE:-$(bash images/base.sh | tail -1)}"
mapfile -t unique_locks < <(printf '%s\n' "${locks[@]}" | sort -u)
wheels="$(bash images/wheels.sh "${unique_locks[@]}" | tail -1)"
echo "images/build.sh: engine, base ($base) and wheels ready in $((SECONDS - t0))s" >&2

declare -a sizes=()
for t in "${targets[@]}"; do
  tag="$registry/gqr-$t:$version"
  t1=$SECONDS
  echo "images/build.sh: building $tag (target $t, $(image_lock "$t")) ..." >&2
  buildah bud --isolation=chroot --layers --quiet \
    -f images/Dockerfile --target "$t" \
    --build-arg PYTHON_IMAGE="$base" \
    --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/wheels \
    --volume "$wheels:/wheels:ro" \
    -t "$tag" . >/dev/null \
    || die "building $t failed (see the buildah output above)"
  size="$(podman image inspect --format '{{.Size}}' "$tag")"
  sizes+=("$(printf '%-40s %6s MB  built in %ss' "$tag" $((size / 1000000)) $((SECONDS - t1)))")
  echo "images/build.sh: built $tag: $((size / 1000000)) MB in $((SECONDS - t1))s" >&2
done
echo "images/build.sh: done in $((SECONDS - t0))s"
printf '  %s\n' "${sizes[@]}"
