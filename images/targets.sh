# shellcheck shell=bash
# Sourced (never run): what images/Dockerfile builds, read from the Dockerfile itself.
#   image_targets            the image targets (stages FROM runtime), one per line
#   image_lock NAME          the locked requirements its venv installs: requirements/<x>.txt,
#                            read from the `-r requirements/<x>.txt` of the venv-* stage it
#                            copies (venv-gateway installs requirements/serve.txt today)
GQR_DOCKERFILE="${GQR_DOCKERFILE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/Dockerfile}"

image_targets() {
  awk '$1 == "FROM" && $2 == "runtime" && toupper($3) == "AS" {print $4}' "$GQR_DOCKERFILE"
}

image_lock() {
  local venv
  venv="$(awk -v t="$1" '
    $1 == "FROM" { in_target = ($2 == "runtime" && $4 == t) }
    in_target && $1 == "COPY" && $2 ~ /^--from=venv-/ { sub(/^--from=/, "", $2); print $2; exit }
  ' "$GQR_DOCKERFILE")"
  [[ -n $venv ]] || return 0
  awk -v v="$venv" '
    $1 == "FROM" { in_venv = ($4 == v) }
    in_venv && $1 == "RUN" {
      for (i = 2; i < NF; i++) if ($i == "-r" && $(i + 1) ~ /^requirements\//) { print $(i + 1); exit }
    }' "$GQR_DOCKERFILE"
}
