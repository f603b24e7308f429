#!/usr/bin/env bash
# Builds the control-plane binaries the tests, the demo and the benchmarks run (etcd,
# kube-apiserver, kube-controller-manager, the default kube-scheduler, kwok) from Go modules
# at the versions pinned in go.mod, into a cache outside the repository, and prints that
# directory. A directory that is already complete is reused as it is (warm: well under a second).
#
#   SPOT_SCHEDULER_CACHE   cache root (default $HOME/.cache/spot-scheduler)
#   KWOK_VERSION           kwok release (default v0.8.0; kwok builds from its own module graph)
set -euo pipefail
cd "$(dirname "$0")/.."

cache_root=${SPOT_SCHEDULER_CACHE:-$HOME/.cache/spot-scheduler}
kwok_version=${KWOK_VERSION:-v0.8.0}
# Revision of the build recipe; part of the binaries' cache key.
build_revision=4
# Revision of our adjustments to kwok's stages (below). Not part of the key: the stages are a
# data file regenerated in a second when this changes, with no rebuild of the binaries.
stages_revision=4
stages_marker="# spot-scheduler kwok stages revision ${stages_revision}"
k8s_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
go_version=$(go env GOVERSION)
# The key covers what changes the binaries: the Kubernetes and etcd pins, Go and kwok. Other
# modules the product adds do not touch these binaries, so they do not force a rebuild.
key=$( (grep -E '^(replace )?[[:space:]]*(k8s\.io|go\.etcd\.io)/' go.mod | sort; echo "$go_version $kwok_version $build_revision") | sha256sum | cut -c1-12)
bin="$cache_root/bin/${k8s_version}-${go_version}-${key}"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

binaries_complete() {
  local b
  for b in "${binaries[@]}"; do [ -x "$1/$b" ] || return 1; done
}
stages_current() {
  [ -f "$1/kwok-stages.yaml" ] && [ "$(head -n1 "$1/kwok-stages.yaml")" = "$stages_marker" ]
}
if binaries_complete "$bin" && stages_current "$bin"; then
  echo "$bin"
  exit 0
fi

log() { echo "build-control-plane: $*" >&2; }

# write_stages DIR: kwok needs stage definitions; its module ships them. Nodes get initialised
# and heartbeats, bound pods become Running/Ready, deleted pods go away. Two adjustments:
#  - The pod-ready stage sets no pod IPs. As shipped, a stage played twice for one pod (kwok
#    races with itself when the pod is updated meanwhile) merges a second IPv4 into
#    status.podIPs, the API server rejects the whole patch, and the pod never turns Ready (seen
#    as PDBs that never allow a disruption). Guarding on .status.podIP was not enough (kwok
#    renders from a stale copy). Nothing here needs pod IPs: no kubelet, no networking.
#  - The pod-delete stage leaves alone pods deleted with a zero grace period. The API server
#    removes those itself right after writing their deletionTimestamp; kwok deletes by name
#    without a UID precondition, so its late delete hit a pod recreated under the same name
#    (seen in TestReliabilityRecreatedPodNotEvicted).
# The file is written next to its final place and renamed, so a concurrent reader never sees
# half of it.
write_stages() {
  local dir=$1 kwok_dir out
  kwok_dir=$(go mod download -json "sigs.k8s.io/kwok@${kwok_version}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  out="$dir/kwok-stages.yaml.$$"
  {
    echo "$stages_marker"
    for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      echo "---"
      cat "$kwok_dir/kustomize/stage/$f"
    done
  } | awk '
    /^ *\{\{ with \$podIPs \}\}$/ { skipping = 1; ends = 0; next }
    skipping { if ($0 ~ /^ *\{\{ end \}\}$/ && ++ends == 2) skipping = 0; next }
    /^  name: pod-delete$/ { in_delete = 1 }
    { print }
    in_delete && /^      operator: .Exists.$/ {
      print "    - key: \x27(.metadata.deletionGracePeriodSeconds // 1) > 0\x27"
      print "      operator: \x27In\x27"
      print "      values: [\x27true\x27]"
      in_delete = 0
    }
  ' >"$out"
  if grep -q 'podIPs:' "$out" || ! grep -q 'phase: Running' "$out" || ! grep -q 'deletionGracePeriodSeconds' "$out"; then
    rm -f "$out"
    log "kwok stages changed shape: could not adjust the pod-ready and pod-delete stages"
    exit 1
  fi
  mv "$out" "$dir/kwok-stages.yaml"
}

if binaries_complete "$bin"; then
  log "writing kwok stages revision ${stages_revision} into $bin"
  write_stages "$bin"
  echo "$bin"
  exit 0
fi

log "building Kubernetes ${k8s_version} control plane and kwok ${kwok_version} into $bin"
log "a cold build takes ~10-15 minutes on 2 cores; later runs reuse the cache"
tmp="$bin.partial"
rm -rf "$tmp"
mkdir -p "$tmp"
start=$SECONDS

minor=${k8s_version#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${k8s_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
go mod download
# The same build settings as the Makefile's (no cgo, no -trimpath): these binaries are built in
# this module's graph, so they share every compiled package with the product and its tests.
for pkg in k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler; do
  log "go build $pkg"
  CGO_ENABLED=0 go build -ldflags "$ldflags" -o "$tmp/$(basename "$pkg")" "$pkg"
done
log "go build go.etcd.io/etcd/server/v3"
CGO_ENABLED=0 go build -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3

log "go install sigs.k8s.io/kwok/cmd/kwok@${kwok_version}"
GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${kwok_version}"
write_stages "$tmp"

rm -rf "$bin"
mv "$tmp" "$bin"
log "done in $((SECONDS - start))s"
echo "$bin"
