#!/usr/bin/env bash
# Sets up the container engine the image targets use (idempotent; safe to run again):
#   - installs podman, buildah, runc and debootstrap with apt when one is missing (Debian 12);
#   - raises the default ulimits of containers in /etc/containers/containers.conf (without
#     them a RUN step fails raising RLIMIT_NPROC on this machine kind).
# Builds use `buildah bud --isolation=chroot`, runs `podman --cgroup-manager=cgroupfs --runtime
# runc` (crun fails with cgroups in hybrid mode): images/build.sh and images/smoke.py pass these.
# Needs root (or passwordless sudo) for apt and /etc.
set -euo pipefail

die() { echo "images/engine.sh: $*" >&2; exit 1; }

sudo=()
if [[ $EUID -ne 0 ]]; then
  command -v sudo >/dev/null || die "run as root (or install sudo): apt and /etc/containers need it"
  sudo=(sudo -n)
fi

missing=()
for tool in podman:podman buildah:buildah runc:runc debootstrap:debootstrap; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install them yourself"
  echo "images/engine.sh: installing ${missing[*]} with apt ..." >&2
  t0=$SECONDS
  "${sudo[@]}" apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" uidmap fuse-overlayfs containernetworking-plugins >/dev/null \
    || die "apt-get install ${missing[*]} failed"
  echo "images/engine.sh: installed in $((SECONDS - t0))s" >&2
fi

conf=/etc/containers/containers.conf
ulimits='default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]'
if [[ ! -f $conf ]]; then
  "${sudo[@]}" mkdir -p /etc/containers
  printf '[containers]\n%s\n' "$ulimits" | "${sudo[@]}" tee "$conf" >/dev/null
  echo "images/engine.sh: wrote $conf" >&2
elif ! grep -q '^[[:space:]]*default_ulimits' "$conf"; then
  if grep -q '^\[containers\]' "$conf"; then
    "${sudo[@]}" sed -i "/^\[containers\]/a $ulimits" "$conf"
  else
    printf '\n[containers]\n%s\n' "$ulimits" | "${sudo[@]}" tee -a "$conf" >/dev/null
  fi
  echo "images/engine.sh: added default_ulimits to $conf" >&2
elif ! grep -q 'nproc=' "$conf"; then
  echo "images/engine.sh: warning: $conf sets default_ulimits without nproc; RUN steps may" \
    "fail raising RLIMIT_NPROC" >&2
fi

buildah --version >/dev/null || die "buildah does not run"
podman --version >/dev/null || die "podman does not run"
