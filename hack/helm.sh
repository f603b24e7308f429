#!/usr/bin/env bash
# Builds (or reuses) the Helm CLI from Go modules -- no downloaded binary -- and prints its path.
# Helm builds in its own module graph (go install pkg@version), like kwok in
# hack/build-control-plane.sh, so it never enters this module's go.mod.
#
#   SPOT_SCHEDULER_CACHE   cache root (default $HOME/.cache/spot-scheduler)
#   HELM_VERSION           Helm v3 release (default below)
#
# Usage: hack/helm.sh                 # prints the path of the helm binary
#        hack/helm.sh template ...    # runs helm with the arguments
set -euo pipefail

helm_version=${HELM_VERSION:-v3.20.2}
cache_root=${SPOT_SCHEDULER_CACHE:-$HOME/.cache/spot-scheduler}
dir="$cache_root/bin/helm-${helm_version}"
helm="$dir/helm"

if [ ! -x "$helm" ]; then
  echo "helm.sh: go install helm.sh/helm/v3/cmd/helm@${helm_version} into $dir (a cold build takes a few minutes)" >&2
  tmp="$dir.partial.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  # Helm's Makefile stamps the Kubernetes version its client-go speaks (the default of
  # `helm template`'s .Capabilities.KubeVersion); do the same, from Helm's own go.mod.
  gomod=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "helm.sh/helm/v3@${helm_version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  k8s_minor=$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${helm_version}"
  for pkg in chartutil lint/rules; do
    ldflags+=" -X helm.sh/helm/v3/pkg/${pkg}.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/${pkg}.k8sVersionMinor=${k8s_minor}"
  done
  # Outside any module, so this repository's go.mod plays no part; GOFLAGS=-mod=mod keeps a
  # caller's -mod=vendor out of it.
  (cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath \
    -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@${helm_version}") >&2
  mkdir -p "$dir"
  mv "$tmp/helm" "$helm"
  rm -rf "$tmp"
  trap - EXIT
fi

if [ $# -eq 0 ]; then
  echo "$helm"
else
  exec "$helm" "$@"
fi
