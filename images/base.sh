#!/usr/bin/env bash
# Makes the local base image the builds use where no image registry is reachable: a Debian
# bookworm root filesystem (debootstrap --variant=minbase) with python3.11 and its venv module,
# imported into the container storage as localhost/gqr-python-base:$BASE_VERSION.
# The root filesystem is cached as a tarball under ~/.cache/gqr-images (like the test control
# plane's binaries in ~/.cache/gqr-testenv); bump BASE_VERSION to rebuild it. Prints the image
# name last. Real builds use the official python image (images/Dockerfile's default).
#   bash images/base.sh            # ~1-2 min the first time, seconds from the cache
# Env: GQR_IMAGES_CACHE (default ~/.cache/gqr-images), DEBIAN_MIRROR.
set -euo pipefail
BASE_VERSION=bookworm-py311-1
# python3-distutils: python3.11-venv needs python3.11-distutils, a virtual package debootstrap
# does not resolve (python3-distutils provides it).
PACKAGES=python3.11,python3.11-venv,python3-distutils,ca-certificates
image="localhost/gqr-python-base:$BASE_VERSION"
cache="${GQR_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gqr-images}"
tarball="$cache/base-$BASE_VERSION.tar.gz"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

die() { echo "images/base.sh: $*" >&2; exit 1; }

mkdir -p "$cache"
exec 9>"$cache/.base.lock"
flock 9  # one build of the base at a time (CI and a developer may share the cache)

if [[ ! -s $tarball ]]; then
  command -v debootstrap >/dev/null || die "debootstrap is missing: run images/engine.sh"
  [[ $EUID -eq 0 ]] || die "debootstrap needs root"
  t0=$SECONDS
  rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  echo "images/base.sh: debootstrap bookworm ($PACKAGES) from $mirror ..." >&2
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$mirror" \
    >"$cache/debootstrap.log" 2>&1 || {
    cat "$rootfs/debootstrap/debootstrap.log" >>"$cache/debootstrap.log" 2>/dev/null || true
    die "debootstrap failed; its log: $cache/debootstrap.log (last lines: $(tail -4 "$cache/debootstrap.log"))"
  }
  # What an image does not need: package lists and downloaded .debs, docs, man pages.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/var/log/*.log
  [[ -x $rootfs/usr/bin/python3.11 ]] || die "python3.11 is missing from the root filesystem"
  tar -C "$rootfs" --numeric-owner -czf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$rootfs"
  trap - EXIT
  echo "images/base.sh: root filesystem cached in $tarball ($(du -h "$tarball" | cut -f1)) in $((SECONDS - t0))s" >&2
fi

if ! podman image exists "$image"; then
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$tarball" "$image" >/dev/null || die "podman import $tarball failed"
  echo "images/base.sh: imported $image" >&2
fi
echo "$image"
