# Sourced (never run): what images/Dockerfile builds, read from the Dockerfile itself.
#   image_targets            the image targets (stages FROM runtime), one per line
#   image_lock NAME          the locked requirements its venv installs: requirements/<x>.txt
#                            (x = the venv-<x> stage it copies, e.g. train-serve)
GQR_DOCKERFILE="${GQR_DOCKERFILE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/Dockerfile}"

image_targets() {
  awk '$1 == "FROM" && $2 == "runtime" && toupper($3) == "AS" {print $4}' "$GQR_DOCKERFILE"
}

image_lock() {
  awk -v t="$1" '
    $1 == "FROM" { in_target = ($2 == "runtime" && $4 == t) }
    in_target && $1 == "COPY" && $2 ~ /^--from=venv-/ {
      sub(/^--from=venv-/, "", $2); print "requirements/" $2 ".txt"; exit
    }' "$GQR_DOCKERFILE"
}
