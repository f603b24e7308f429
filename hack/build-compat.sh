#!/usr/bin/env bash
# Builds the control plane of another Kubernetes minor for the compatibility tests
# (test/compat, `make test-compat`) and prints its directory:
#
#   hack/build-compat.sh 1.32                  # or a full version: v1.32.13, v1.38.0-beta.0
#   hack/build-compat.sh 1.37 kube-scheduler   # also that minor's upstream kube-scheduler
#                                              # (the yardstick of make bench-throughput)
#
# kube-apiserver and kube-controller-manager are built from k8s.io/kubernetes at that version,
# in a small wrapper module generated OUTSIDE the repository (the product's pins never move):
# it requires k8s.io/kubernetes and replaces every staging module it requires with the
# matching v0.MINOR.PATCH (the next served patch when one is refused, as hack/update-k8s.sh
# does). etcd, kwok and kwok's stages are the main control plane's (hack/build-control-plane.sh):
# etcd 3.6 serves every API server from 1.32 to 1.38, and kwok only talks to the API server.
# A minor whose go.mod needs a newer Go than the machine's (1.38 needs Go >= 1.27) builds with
# the toolchain in toolchain_of, which the go command fetches from the module proxy (~76 MB once).
# They are linked into the output directory, so it is a complete SPOT_SCHEDULER_BIN_DIR.
#
# The binaries are cached under $SPOT_SCHEDULER_CACHE/compat/<version>-<go>-<revision>; a
# complete directory is reused as it is (warm: well under a second, plus the main control
# plane's own check). Heavy: builds are serialized machine-wide with `flock` on
# $SPOT_SCHEDULER_HEAVY_LOCK (default /tmp/spot-heavy.lock) when flock exists.
set -euo pipefail
cd "$(dirname "$0")/.."

want=${1:?usage: hack/build-compat.sh MINOR (1.32 .. 1.38) or vMAJOR.MINOR.PATCH [kube-scheduler]}
shift
extra_binaries=("$@")
for b in "${extra_binaries[@]}"; do
  [ "$b" = kube-scheduler ] || { echo "build-compat: unknown extra binary '$b'; allowed: kube-scheduler" >&2; exit 2; }
done
# The release of each minor the compatibility tests run (the newest one the module proxy serves
# here; 1.38 is in beta until its GA). 1.34 is the product's own minor: its patch is go.mod's pin.
declare -A patch_of=([1.32]=v1.32.13 [1.33]=v1.33.13 [1.35]=v1.35.4 [1.36]=v1.36.3 [1.37]=v1.37.2 [1.38]=v1.38.0-beta.0)
# The Go a minor needs when the machine's (go1.26.8) is too old for its go.mod.
declare -A toolchain_of=([38]=go1.27.3)
case $want in
  v1.*.*) version=$want ;;
  1.34) version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes) ;;
  *)
    version=${patch_of[$want]:-}
    [ -n "$version" ] || { echo "build-compat: unknown minor '$want'; known: 1.32 1.33 1.34 1.35 1.36 1.37 1.38, or give vMAJOR.MINOR.PATCH" >&2; exit 2; }
    ;;
esac
if [[ ! $version =~ ^v1\.([0-9]+)\.([0-9]+)(-(alpha|beta|rc)\.[0-9]+)?$ ]]; then
  echo "build-compat: version must look like v1.32.13 or v1.38.0-beta.0, got '$version'" >&2
  exit 2
fi
minor=${BASH_REMATCH[1]}
patch=${BASH_REMATCH[2]}
prerelease=${BASH_REMATCH[3]}
# The shared part (the main control plane) builds with the machine's own Go, as always.
own_toolchain=${GOTOOLCHAIN-}
if [ -n "${toolchain_of[$minor]:-}" ]; then
  export GOTOOLCHAIN=${toolchain_of[$minor]}
fi

log() { echo "build-compat: $*" >&2; }

# The product's own minor is the main control plane (hack/build-control-plane.sh), which has
# its kube-scheduler too.
if [ "$version" = "$(GOTOOLCHAIN=$own_toolchain go list -m -f '{{.Version}}' k8s.io/kubernetes)" ]; then
  GOTOOLCHAIN=$own_toolchain hack/build-control-plane.sh
  exit 0
fi

cache_root=${SPOT_SCHEDULER_CACHE:-$HOME/.cache/spot-scheduler}
go_version=$(cd / && go env GOVERSION)
# Revision of this build recipe; part of the cache key.
build_revision=1
bin="$cache_root/compat/${version}-${go_version}-r${build_revision}"

link_shared() { # DIR: etcd, kwok and kwok's stages of the main control plane (built or reused)
  local f main_bin waited=0
  # hack/build-control-plane.sh starts a half-built directory over: when another process is
  # building the main control plane right now (its .partial directory changed in the last 30
  # minutes), wait for it (up to 30 minutes) instead of destroying its work.
  while [ -n "$(find "$cache_root/bin" -maxdepth 1 -name 'v*.partial' -mmin -30 2>/dev/null)" ] && [ $waited -lt 1800 ]; do
    [ $waited -gt 0 ] || log "waiting for another build of the main control plane to finish"
    sleep 15
    waited=$((waited + 15))
  done
  main_bin=$(GOTOOLCHAIN=$own_toolchain hack/build-control-plane.sh)
  for f in etcd kwok kwok-stages.yaml; do
    ln -sfn "$main_bin/$f" "$1/$f"
  done
}
complete() {
  local b
  for b in kube-apiserver kube-controller-manager "${extra_binaries[@]}"; do
    [ -x "$1/$b" ] || return 1
  done
}
if complete "$bin"; then
  link_shared "$bin"
  echo "$bin"
  exit 0
fi

build() {
  # Another build may have finished while this one waited for the lock.
  if complete "$bin"; then return 0; fi
  local binaries=(kube-apiserver kube-controller-manager "${extra_binaries[@]}") start=$SECONDS src="$cache_root/compat/src/${version}" tmp="$bin.partial" b
  # Binaries built earlier (a directory without the extra binary) stay; only the missing build.
  local missing=()
  for b in "${binaries[@]}"; do
    [ -x "$bin/$b" ] || missing+=("$b")
  done
  log "building ${missing[*]} ${version} into $bin (cold: ~3-4 minutes each on 2 cores)"
  rm -rf "$src" "$tmp"
  mkdir -p "$src" "$tmp"
  if [ -d "$bin" ]; then cp -a "$bin"/. "$tmp"/; fi

  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -n "$gomod" ] || { log "cannot download k8s.io/kubernetes@${version}"; exit 1; }
  local staging
  mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) v0.0.0\( // indirect\)\{0,1\}$#\1#p' "$gomod" | sort -u)

  cat >"$src/go.mod" <<EOF
// Generated by spot-scheduler's hack/build-compat.sh: builds the Kubernetes ${version} control
// plane for the compatibility tests. Not part of the product.
module spot-scheduler.local/compat

go 1.23
EOF
  cat >"$src/tools.go" <<'EOF'
//go:build tools

package compat

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
EOF
  local edits=(-require="k8s.io/kubernetes@${version}") mod p v
  for mod in "${staging[@]}"; do
    v=""
    if [ -n "$prerelease" ]; then
      # A pre-release's staging modules carry its exact tag.
      go mod download "${mod}@v0.${minor}.${patch}${prerelease}" >/dev/null 2>&1 || { log "$mod@v0.${minor}.${patch}${prerelease} is not served"; exit 1; }
      edits+=(-replace="${mod}=${mod}@v0.${minor}.${patch}${prerelease}")
      continue
    fi
    # The nearest served patch of the same minor: upwards first, then downwards (e.g.
    # k8s.io/endpointslice has no v0.32.13; v0.32.12 is served).
    for p in $(seq "$patch" $((patch + 8))) $(seq $((patch - 1)) -1 0); do
      if go mod download "${mod}@v0.${minor}.${p}" >/dev/null 2>&1; then v="v0.${minor}.${p}"; break; fi
    done
    [ -n "$v" ] || { log "no served version of $mod near v0.${minor}.${patch}"; exit 1; }
    [ "$v" = "v0.${minor}.${patch}" ] || log "$mod uses $v (v0.${minor}.${patch} is not served)"
    edits+=(-replace="${mod}=${mod}@${v}")
  done
  (
    cd "$src"
    go mod edit "${edits[@]}"
    GOFLAGS=-mod=mod go mod tidy
    local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
    for b in "${missing[@]}"; do
      log "go build k8s.io/kubernetes/cmd/$b@${version}"
      CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/$b" "k8s.io/kubernetes/cmd/$b"
    done
  )
  rm -rf "$bin"
  mv "$tmp" "$bin"
  log "built ${version} in $((SECONDS - start))s"
}

lock=${SPOT_SCHEDULER_HEAVY_LOCK:-/tmp/spot-heavy.lock}
if command -v flock >/dev/null; then
  exec 9>>"$lock"
  flock -n 9 || { log "waiting for $lock (another heavy build runs)"; flock 9; }
fi
build
exec 9>&-
link_shared "$bin"
echo "$bin"
