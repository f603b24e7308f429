#!/usr/bin/env bash
# `make test`: every package's tests against a real control plane, in phases that print a
# timestamped line each (docs/testing.md has the cold and warm times per phase).
#
# Builds run once and only where a test needs them:
#   1. the control plane (etcd, kube-apiserver, kube-controller-manager, kwok) and Helm, which
#      most tests need;
#   2. every test but the Karpenter and compatibility ones, while Karpenter's kwok provider and
#      the compatibility control planes (COMPAT_MINORS, default the oldest and the newest) build
#      in the background at the lowest CPU priority: those builds are minutes of compiling that
#      would otherwise stand in line before the tests, and the tests spend most of their time
#      waiting on the control plane;
#   3. TestKarpenter* and TestCompat* once their builds are there.
#
# Environment: SPOT_SCHEDULER_BINARY and SPOT_SCHEDULER_REBALANCER_BINARY (the binaries under
# test, from `make build`), COMPAT_MINORS, TEST_TIMEOUT (per go test invocation, default 60m),
# TEST_FLAGS (more go test flags, e.g. -v for every test's duration).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
phase() { echo "test: $(date -u +%H:%M:%S) +$((SECONDS - start))s $*"; }

compat_minors=${COMPAT_MINORS:-1.32 1.37}
timeout=${TEST_TIMEOUT:-60m}
read -r -a extra <<<"${TEST_FLAGS:-}"
late='^(TestKarpenter|TestCompat)'

phase "control plane and Helm"
SPOT_SCHEDULER_BIN_DIR=$(hack/build-control-plane.sh)
export SPOT_SCHEDULER_BIN_DIR
hack/helm.sh >/dev/null

phase "background: Karpenter's kwok provider, then the compatibility control planes ($compat_minors)"
bg_log=$(mktemp "${TMPDIR:-/tmp}/spot-scheduler-builds.XXXXXX")
# Its own process group (setsid), so that an early exit can stop the builds with it.
setsid nice -n 19 bash -c 'set -e; hack/build-karpenter.sh >/dev/null; for m in $1; do hack/build-compat.sh "$m" >/dev/null; done' \
  builds "$compat_minors" >"$bg_log" 2>&1 &
bg=$!
trap 'kill -- -$bg 2>/dev/null || true' EXIT

phase "tests (all but TestKarpenter* and TestCompat*)"
rc=0
SPOT_SCHEDULER_COMPAT_MINORS="$compat_minors" hack/run-tests.sh -timeout "$timeout" "${extra[@]}" -skip "$late" ./... || rc=$?

phase "waiting for the background builds"
if ! wait $bg; then
  cat "$bg_log" >&2
  echo "test: a background build failed (log above)" >&2
  exit 1
fi
trap - EXIT
rm -f "$bg_log"

phase "TestKarpenter* and TestCompat*"
SPOT_SCHEDULER_KARPENTER_DIR=$(hack/build-karpenter.sh) SPOT_SCHEDULER_COMPAT_MINORS="$compat_minors" \
  hack/run-tests.sh -timeout "$timeout" "${extra[@]}" -run "$late" ./test/integration/ || rc=$?

phase "done (exit $rc)"
exit $rc
