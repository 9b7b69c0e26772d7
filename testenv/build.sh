#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, etcd, kwok, helm) from Go modules and caches the binaries outside git.
# The cache key is a hash of the wrapper modules (go.mod + go.sum) and this script, so the
# binaries are rebuilt only when a pinned version changes. Prints the bin directory last.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${GQR_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gqr-testenv}"
key="$(cat "$here"/build.sh "$here"/*/go.mod "$here"/*/go.sum | sha256sum | cut -c1-16)"
bin="$cache_root/$key/bin"
if [[ -f "$bin/.complete" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"
# One build at a time per cache key (a test may call this script while `make testenv` runs):
# the second waits, then finds the binaries complete.
exec 9>"$bin/.lock"
flock 9
if [[ -f "$bin/.complete" ]]; then
  echo "$bin"
  exit 0
fi
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod -trimpath"
kube_version="$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$here/kube/go.mod")"
major="${kube_version#v}"; major="${major%%.*}"
minor="${kube_version#v*.}"; minor="${minor%%.*}"
vpkg=k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=$kube_version -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor \
 -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"

step() {  # step NAME DIR PKG [LDFLAGS]
  local name=$1 dir=$2 pkg=$3 flags=${4:-"-s -w"} t0=$SECONDS
  if [[ -x "$bin/$name" ]]; then echo "testenv: $name cached" >&2; return; fi
  echo "testenv: building $name ($pkg) ..." >&2
  (cd "$here/$dir" && go build -ldflags "$flags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  echo "testenv: built $name in $((SECONDS - t0))s" >&2
}
step etcd etcd .
step kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "$ldflags"
step kube-controller-manager kube k8s.io/kubernetes/cmd/kube-controller-manager "$ldflags"
step kube-scheduler kube k8s.io/kubernetes/cmd/kube-scheduler "$ldflags"
step kubectl kube k8s.io/kubernetes/cmd/kubectl "$ldflags"
step kwok kwok sigs.k8s.io/kwok/cmd/kwok
step helm helm helm.sh/helm/v3/cmd/helm
touch "$bin/.complete"
echo "$bin"
