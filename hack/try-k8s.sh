#!/usr/bin/env bash
# Tries the product on a newer Kubernetes scheduler framework and lists what breaks, without
# touching this checkout (docs/compatibility.md, "Framework version"):
#
#   hack/try-k8s.sh                  # the newest served minor (default v1.37.2)
#   hack/try-k8s.sh v1.38.0-beta.0   # any release; needs Go 1.27, fetched as GOTOOLCHAIN
#
# It copies the committed tree (git archive HEAD) into a temporary directory, moves every
# Kubernetes pin there to that release with the copy's hack/update-k8s.sh (k8s.io/kubernetes,
# the staging modules it requires, controller-runtime's matching release;
# sigs.k8s.io/scheduler-plugins stays at go.mod's release: it has none past v0.34.7), then builds and vets every package and prints the compile errors grouped
# by package: first what breaks in sigs.k8s.io/scheduler-plugins (it blocks the rest until it
# has a release for that minor), then this module's own packages. The full log is kept in
# $TRY_K8S_DIR (default: a new temporary directory) and its path printed. Exit status 0 when
# everything builds and vets, 1 when something breaks, 2 on bad input.
#
# Cold it compiles the new minor's framework once (~5-10 minutes on 2 cores); heavy builds are
# serialized machine-wide with flock on $SPOT_SCHEDULER_HEAVY_LOCK (default /tmp/spot-heavy.lock).
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:-v1.37.2}
if [[ ! $version =~ ^v1\.([0-9]+)\.([0-9]+)(-(alpha|beta|rc)\.[0-9]+)?$ ]]; then
  echo "try-k8s: version must look like v1.37.2 or v1.38.0-beta.0, got '$version'" >&2
  exit 2
fi
minor=${BASH_REMATCH[1]}
patch=${BASH_REMATCH[2]}
# Kubernetes 1.38 and later need Go >= 1.27 (the machine has 1.26): the go command fetches it.
if [ "$minor" -ge 38 ]; then
  export GOTOOLCHAIN=${TRY_K8S_GOTOOLCHAIN:-go1.27.3}
fi
export CGO_ENABLED=0

dir=${TRY_K8S_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/try-k8s-${version}.XXXXXX")}
mkdir -p "$dir/src"
log() { echo "try-k8s: $*" >&2; }
log "copying HEAD ($(git rev-parse --short HEAD)) into $dir/src"
git archive HEAD | tar -x -C "$dir/src"
cd "$dir/src"

# controller-runtime follows client-go one minor for one (v0.22 with 0.34): its newest served
# release for the new minor, so that its breaks are not mistaken for the product's.
cr_minor=$((minor - 12))
cr_version=$(go list -m -versions sigs.k8s.io/controller-runtime 2>/dev/null | tr ' ' '\n' | grep "^v0\.${cr_minor}\.[0-9]*$" | sort -V | tail -1 || true)
if [ -n "$cr_version" ]; then
  log "sigs.k8s.io/controller-runtime ${cr_version}"
else
  log "no sigs.k8s.io/controller-runtime v0.${cr_minor}.x is served: it stays at go.mod's release"
fi
# The copy's own hack/update-k8s.sh moves the pins, as a real upgrade would.
if ! hack/update-k8s.sh "$version" "" "$cr_version" >"$dir/update.log" 2>&1; then
  log "moving the pins fails (see $dir/update.log):"
  tail -20 "$dir/update.log" >&2
  exit 1
fi

lock=${SPOT_SCHEDULER_HEAVY_LOCK:-/tmp/spot-heavy.lock}
if command -v flock >/dev/null; then
  exec 9>>"$lock"
  flock -n 9 || { log "waiting for $lock (another heavy build runs)"; flock 9; }
fi
log "building and vetting every package against k8s.io/kubernetes ${version} (log: $dir/build.log)"
rc=0
# -e: every error of a package, not the first ten.
{ go build -gcflags=all=-e ./... && go vet ./...; } >"$dir/build.log" 2>&1 || rc=$?
exec 9>&-

# Compile errors look like "path/file.go:12:3: message"; the package is the file's directory.
# Files of the module cache are shown by module path (scheduler-plugins), ours by repository path.
summary() {
  grep -E '^[^ ]+\.go:[0-9]+:[0-9]+: ' "$dir/build.log" |
    sed -E "s#^$(go env GOMODCACHE)/##; s#@v[^/]*##" | sort -u >"$dir/errors.txt" || true
  local total
  total=$(wc -l <"$dir/errors.txt")
  echo "k8s.io/kubernetes ${version} with sigs.k8s.io/scheduler-plugins $(go list -m -f '{{.Version}}' sigs.k8s.io/scheduler-plugins) and controller-runtime $(go list -m -f '{{.Version}}' sigs.k8s.io/controller-runtime): $total compile or vet errors"
  echo "(the first packages that fail: go stops there, so packages importing them are not compiled yet)"
  [ "$total" -gt 0 ] || return 0
  echo
  echo "errors per package (first error of each):"
  awk -F: '{ n = split($1, parts, "/"); pkg = $1; sub("/[^/]*$", "", pkg); count[pkg]++; if (!(pkg in first)) first[pkg] = $0 }
    END { for (p in count) printf "%5d  %s\n         %s\n", count[p], p, first[p] }' "$dir/errors.txt" |
    paste - - | sort -k2 | tr '\t' '\n'
}
summary | tee "$dir/summary.txt"
echo "try-k8s: full log $dir/build.log, errors $dir/errors.txt"
if [ $rc -ne 0 ]; then exit 1; fi
