#!/usr/bin/env bash
# Moves every Kubernetes pin of this module to one Kubernetes version in one step:
#   hack/update-k8s.sh v1.34.10 [scheduler-plugins-version] [controller-runtime-version]
# k8s.io/kubernetes is required at the given version and every k8s.io staging module it
# requires from ./staging/... is replaced by its published v0.MINOR.PATCH tag. A staging tag
# the module proxy refuses is bumped to the next served patch of the same minor (e.g.
# k8s.io/sample-apiserver v0.34.13 for v1.34.10), and the script says so.
set -euo pipefail
cd "$(dirname "$0")/.."

k8s_version=${1:?usage: hack/update-k8s.sh vMAJOR.MINOR.PATCH [scheduler-plugins-version] [controller-runtime-version]}
plugins_version=${2:-}
ctrl_runtime_version=${3:-}
if [[ ! $k8s_version =~ ^v1\.([0-9]+)\.([0-9]+)(-(alpha|beta|rc)\.[0-9]+)?$ ]]; then
  echo "update-k8s: version must look like v1.34.10 (or v1.38.0-beta.0), got '$k8s_version'" >&2
  exit 2
fi
minor=${BASH_REMATCH[1]}
patch=${BASH_REMATCH[2]}
prerelease=${BASH_REMATCH[3]}
staging_version="v0.${minor}.${patch}${prerelease}"

gomod=$(go mod download -json "k8s.io/kubernetes@${k8s_version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[ -n "$gomod" ] || { echo "update-k8s: cannot download k8s.io/kubernetes@${k8s_version}" >&2; exit 1; }
# Only the staging modules k8s.io/kubernetes requires (at the placeholder v0.0.0) need a replace;
# the sample-* modules it merely replaces are not part of any consumer's graph.
mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) v0.0.0\( // indirect\)\{0,1\}$#\1#p' "$gomod" | sort -u)

served_version() { # module -> first served v0.MINOR.PATCH at or above the wanted patch
  local mod=$1 p
  if [ -n "$prerelease" ]; then # a pre-release's staging modules carry its exact tag
    go mod download "${mod}@${staging_version}" >/dev/null 2>&1 && echo "$staging_version"
    return
  fi
  for ((p = patch; p <= patch + 8; p++)); do
    if go mod download "${mod}@v0.${minor}.${p}" >/dev/null 2>&1; then
      echo "v0.${minor}.${p}"
      return 0
    fi
  done
  return 1
}

edits=(-require="k8s.io/kubernetes@${k8s_version}")
for mod in "${staging[@]}"; do
  v=$(served_version "$mod") || { echo "update-k8s: no served version of $mod near $staging_version" >&2; exit 1; }
  [ "$v" = "$staging_version" ] || echo "update-k8s: $mod uses $v ($staging_version is not served)"
  edits+=(-replace="${mod}=${mod}@${v}")
done
go mod edit "${edits[@]}"
if [ -n "$plugins_version" ]; then
  go mod edit -require="sigs.k8s.io/scheduler-plugins@${plugins_version}"
fi
if [ -n "$ctrl_runtime_version" ]; then
  go mod edit -require="sigs.k8s.io/controller-runtime@${ctrl_runtime_version}"
fi
go mod tidy
echo "update-k8s: k8s.io/kubernetes ${k8s_version}, staging ${staging_version}; run 'make test' to prove it"
