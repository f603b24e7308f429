#!/usr/bin/env bash
# Builds the real descheduler (sigs.k8s.io/descheduler, default v0.36.0) from Go modules into
# the same cache as hack/build-control-plane.sh and prints the binary's path. A binary already
# there is reused (warm: well under a second); a cold build takes ~3 minutes on 2 cores.
#
# `go install sigs.k8s.io/descheduler/cmd/descheduler@v0.36.0` is refused because its go.mod has
# replace directives, so the build goes through a throw-away wrapper module (in a temp dir, never
# this repository's go.mod) that requires the descheduler and repeats its replace directives.
#
#   SPOT_SCHEDULER_CACHE   cache root (default $HOME/.cache/spot-scheduler)
#   DESCHEDULER_VERSION    descheduler release (default v0.36.0)
set -euo pipefail

cache_root=${SPOT_SCHEDULER_CACHE:-$HOME/.cache/spot-scheduler}
version=${DESCHEDULER_VERSION:-v0.36.0}
go_version=$(go env GOVERSION)
out="$cache_root/bin/descheduler-${version}-${go_version}/descheduler"
if [ -x "$out" ]; then
  echo "$out"
  exit 0
fi

log() { echo "build-descheduler: $*" >&2; }
log "building sigs.k8s.io/descheduler ${version} into $out (~3 minutes cold)"
start=$SECONDS
tmp=$(mktemp -d "${TMPDIR:-/tmp}/descheduler-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/descheduler@${version}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -n "$dir" ] || { log "cannot download sigs.k8s.io/descheduler@${version}"; exit 1; }

cd "$tmp"
go mod init descheduler-build >/dev/null 2>&1
cat >tools.go <<'GO'
//go:build tools

package tools

import _ "sigs.k8s.io/descheduler/cmd/descheduler"
GO
# The descheduler's own requirements and replace directives, so the wrapper resolves the very
# module graph the release was tested with.
{
  echo "require sigs.k8s.io/descheduler ${version}"
  sed -n '/^replace /p; /^replace (/,/^)/p' "$dir/go.mod"
} >>go.mod
go mod edit -go="$(sed -n 's/^go //p' "$dir/go.mod")"
# Copy the require blocks too (minimal version selection then picks the same versions).
awk '/^require \(/{p=1} p{print} /^\)/{if(p){p=0}}' "$dir/go.mod" >>go.mod
GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
minor=$(sed -n 's/^\tk8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$dir/go.mod" | head -1)
mkdir -p "$(dirname "$out")"
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
  -ldflags "-s -w -X sigs.k8s.io/descheduler/pkg/version.version=${version}" \
  -o "$out.partial" sigs.k8s.io/descheduler/cmd/descheduler
mv "$out.partial" "$out"
log "done in $((SECONDS - start))s (k8s minor ${minor:-?})"
echo "$out"
