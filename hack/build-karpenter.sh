#!/usr/bin/env bash
# Builds Karpenter's kwok cloud provider (sigs.k8s.io/karpenter/kwok, default v1.15.0) from Go
# modules into the same cache as hack/build-control-plane.sh and prints that directory. It holds:
#   karpenter             the controller (Karpenter core with the kwok provider: fake nodes
#                         against any API server)
#   crds/*.yaml           Karpenter's CRDs from the same module (NodePool, NodeClaim, NodeOverlay,
#                         KWOKNodeClass, CapacityBuffer), applied by internal/localcluster
#   instance_types.json   the instance types the release ships (reference only; internal/localcluster
#                         writes its own, with spot and on-demand prices)
# A directory that is already complete is reused as it is (warm: well under a second); a cold
# build takes ~8 minutes on 2 cores (an 87 MB binary).
#
# The release builds in its own module graph (`go install pkg@version`, as kwok does), never
# through this repository's go.mod: Karpenter pins k8s.io/* 0.35, the product 0.34.
#
#   SPOT_SCHEDULER_CACHE   cache root (default $HOME/.cache/spot-scheduler)
#   KARPENTER_VERSION      Karpenter release (default v1.15.0)
#   KARPENTER_GOTOOLCHAIN  the Go that builds it (default go1.27.3: Karpenter v1.14.3 and later
#                          need Go >= 1.26.9; the go command fetches that toolchain from the
#                          module proxy, ~76 MB once). Only this build uses it: the product
#                          itself builds with the machine's Go.
set -euo pipefail

cache_root=${SPOT_SCHEDULER_CACHE:-$HOME/.cache/spot-scheduler}
version=${KARPENTER_VERSION:-v1.15.0}
export GOTOOLCHAIN=${KARPENTER_GOTOOLCHAIN:-go1.27.3}
go_version=$(cd / && go env GOVERSION)
# Revision of this recipe; part of the cache key.
build_revision=1
dir="$cache_root/bin/karpenter-${version}-${go_version}-r${build_revision}"

complete() {
  [ -x "$1/karpenter" ] && [ -f "$1/instance_types.json" ] && ls "$1"/crds/*nodepools.yaml >/dev/null 2>&1
}
if complete "$dir"; then
  echo "$dir"
  exit 0
fi

log() { echo "build-karpenter: $*" >&2; }
log "building sigs.k8s.io/karpenter/kwok ${version} into $dir (~8 minutes cold on 2 cores)"
start=$SECONDS
tmp="$dir.partial"
rm -rf "$tmp"
mkdir -p "$tmp/crds"
# Run outside any module so this repository's go.mod plays no part.
cd "$(mktemp -d "${TMPDIR:-/tmp}/karpenter-build.XXXXXX")"
trap 'rm -rf "$PWD"' EXIT
module_dir=$(GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/karpenter@${version}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -n "$module_dir" ] || { log "cannot download sigs.k8s.io/karpenter@${version}"; exit 1; }

GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" "sigs.k8s.io/karpenter/kwok@${version}"
# `go install` names the binary after its package directory (kwok), which would read as the
# node simulator of the same name; call it what it is.
mv "$tmp/kwok" "$tmp/karpenter"
cp "$module_dir"/kwok/charts/crds/*.yaml "$module_dir"/kwok/apis/crds/*.yaml "$tmp/crds/"
cp "$module_dir/kwok/cloudprovider/instance_types.json" "$tmp/instance_types.json"
chmod -R u+w "$tmp"

rm -rf "$dir"
mv "$tmp" "$dir"
log "done in $((SECONDS - start))s"
echo "$dir"
