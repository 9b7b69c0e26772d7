#!/usr/bin/env bash
# Copies the CRDs from crds/ (generated from the spec models) into the chart, byte for byte.
#   bash charts/sync-crds.sh          # write the copies (part of make crd)
#   bash charts/sync-crds.sh --check  # exit 1 and name the files that drifted
# tests/unit/helm/test_chart_crds_in_sync.py runs the same comparison.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/crds"
dst="$root/charts/gqr-operator/files/crds"
mode="${1:-write}"

mkdir -p "$dst"
drift=0
for f in "$src"/*.yaml; do
  name="$(basename "$f")"
  if ! cmp -s "$f" "$dst/$name"; then
    if [[ "$mode" == "--check" ]]; then
      echo "drift: $dst/$name differs from crds/$name" >&2
      drift=1
    else
      cp "$f" "$dst/$name"
      echo "copied crds/$name"
    fi
  fi
done
for f in "$dst"/*.yaml; do
  [[ -e "$f" ]] || continue
  name="$(basename "$f")"
  if [[ ! -e "$src/$name" ]]; then
    if [[ "$mode" == "--check" ]]; then
      echo "drift: $dst/$name has no source in crds/" >&2
      drift=1
    else
      rm "$f"
      echo "removed $name (gone from crds/)"
    fi
  fi
done
if [[ "$drift" -ne 0 ]]; then
  echo "run: make crd (regenerates crds/ from the models and copies it here)" >&2
  exit 1
fi
