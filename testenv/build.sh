#!/usr/bin/env bash
# Builds the test environment's real servers from pinned Go modules and caches the binaries
# outside git: the control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, etcd, kwok, helm), the S3 server (minio) and Prometheus.
# Each binary is cached under a key of its wrapper module (go.mod + go.sum), its link flags and
# RECIPE below, so it is rebuilt only when its own pin changes; bump RECIPE when the way of
# building changes. Prints the bin directory (links to every binary) last.
set -euo pipefail
RECIPE=2
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${GQR_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gqr-testenv}"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod -trimpath"
kube_version="$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$here/kube/go.mod")"
major="${kube_version#v}"; major="${major%%.*}"
minor="${kube_version#v*.}"; minor="${minor%%.*}"
vpkg=k8s.io/component-base/version
kube_flags="-s -w -X $vpkg.gitVersion=$kube_version -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor \
 -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"

# NAME DIR PACKAGE FLAGS [TAGS]
components=(
  "etcd|etcd|.|-s -w"
  "kube-apiserver|kube|k8s.io/kubernetes/cmd/kube-apiserver|$kube_flags"
  "kube-controller-manager|kube|k8s.io/kubernetes/cmd/kube-controller-manager|$kube_flags"
  "kube-scheduler|kube|k8s.io/kubernetes/cmd/kube-scheduler|$kube_flags"
  "kubectl|kube|k8s.io/kubernetes/cmd/kubectl|$kube_flags"
  "kwok|kwok|sigs.k8s.io/kwok/cmd/kwok|-s -w"
  "helm|helm|helm.sh/helm/v3/cmd/helm|-s -w"
  "minio|minio|github.com/minio/minio|-s -w"
  "prometheus|prometheus|github.com/prometheus/prometheus/cmd/prometheus|-s -w|remove_all_sd"
)

component_key() {  # component_key DIR FLAGS TAGS
  { echo "recipe $RECIPE"; echo "$2"; if [[ -n $3 ]]; then echo "tags $3"; fi
    cat "$here/$1/go.mod" "$here/$1/go.sum"; } \
    | sha256sum | cut -c1-16
}

build() {  # build NAME DIR PKG FLAGS TAGS -> path of the cached binary
  local name=$1 dir=$2 pkg=$3 flags=$4 tags=$5 t0=$SECONDS
  local out="$cache_root/bin-$name-$(component_key "$dir" "$flags" "$tags")"
  mkdir -p "$out"
  # One build at a time per binary (a test may call this script while `make testenv` runs):
  # the second waits, then finds the binary there.
  exec 9>"$out/.lock"
  flock 9
  if [[ ! -x "$out/$name" ]]; then
    echo "testenv: building $name ($pkg) ..." >&2
    (cd "$here/$dir" && go build -tags "$tags" -ldflags "$flags" -o "$out/$name.tmp" "$pkg")
    mv "$out/$name.tmp" "$out/$name"
    echo "testenv: built $name in $((SECONDS - t0))s" >&2
  fi
  exec 9>&-
  echo "$out/$name"
}

links=()
for c in "${components[@]}"; do
  IFS='|' read -r name dir pkg flags tags <<<"$c"
  links+=("$(build "$name" "$dir" "$pkg" "$flags" "${tags:-}")")
done
bin="$cache_root/bin-$(printf '%s\n' "${links[@]}" | sha256sum | cut -c1-16)"
mkdir -p "$bin"
for path in "${links[@]}"; do
  ln -sfn "$path" "$bin/$(basename "$path")"
done
echo "$bin"
