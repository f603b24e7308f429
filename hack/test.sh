#!/usr/bin/env bash
# `make test`: every package's tests against a real control plane, in phases that print a
# timestamped line each (docs/testing.md has the cold and warm times per phase).
#
# Builds run once and only where a test needs them:
#   1. the control plane (etcd, kube-apiserver, kube-controller-manager, kwok) and Helm, which
#      most tests need;
#   2. every test but the Karpenter and compatibility ones; beside them, in the background,
#      Karpenter's kwok provider and the compatibility control planes (COMPAT_MINORS, default
#      the oldest and the newest minor) build at the lowest CPU priority (minutes of compiling
#      that would otherwise stand in line before the tests, which spend most of their time
#      waiting on the control plane), and TestKarpenter* and TestCompat* start as soon as
#      their builds are there (at once when they are cached);
#   3. the background's output, and the verdict of both.
#
# Environment: SPOT_SCHEDULER_BINARY and SPOT_SCHEDULER_REBALANCER_BINARY (the binaries under
# test, from `make build`), COMPAT_MINORS, TEST_TIMEOUT (per go test invocation, default 60m),
# TEST_FLAGS (more go test flags, e.g. -v for every test's duration).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
phase() { echo "test: $(date -u +%H:%M:%S) +$((SECONDS - start))s $*"; }

compat_minors=${COMPAT_MINORS:-1.32 1.38}
timeout=${TEST_TIMEOUT:-60m}
# Every test that runs Karpenter waits for its build (TestFailbackBuffer* runs it too).
late='^(TestKarpenter|TestFailbackBuffer|TestCompat)'
export SPOT_SCHEDULER_COMPAT_MINORS="$compat_minors"

phase "control plane and Helm"
SPOT_SCHEDULER_BIN_DIR=$(hack/build-control-plane.sh)
export SPOT_SCHEDULER_BIN_DIR
hack/helm.sh >/dev/null

phase "background: Karpenter's kwok provider and the compatibility control planes ($compat_minors), then TestKarpenter*, TestFailbackBuffer* and TestCompat*"
late_log=$(mktemp "${TMPDIR:-/tmp}/spot-scheduler-late.XXXXXX")
# Its own process group (setsid), so that an early exit stops it too.
setsid bash -c '
  set -euo pipefail
  nice -n 19 hack/build-karpenter.sh >/dev/null
  for m in $1; do nice -n 19 hack/build-compat.sh "$m" >/dev/null; done
  echo "test: $(date -u +%H:%M:%S) background builds done; TestKarpenter* and TestCompat* start"
  read -r -a extra <<<"$3"
  SPOT_SCHEDULER_KARPENTER_DIR=$(hack/build-karpenter.sh) hack/run-tests.sh -timeout "$2" "${extra[@]}" -run "$4" ./test/integration/
' late "$compat_minors" "$timeout" "${TEST_FLAGS:-}" "$late" >"$late_log" 2>&1 &
bg=$!
trap 'kill -- -$bg 2>/dev/null || true' EXIT

phase "tests (all but TestKarpenter*, TestFailbackBuffer* and TestCompat*)"
read -r -a extra <<<"${TEST_FLAGS:-}"
rc=0
hack/run-tests.sh -timeout "$timeout" "${extra[@]}" -skip "$late" ./... || rc=$?

phase "waiting for the background (builds, TestKarpenter* and TestCompat*)"
late_rc=0
wait $bg || late_rc=$?
trap - EXIT
cat "$late_log"
rm -f "$late_log"
phase "done (tests exit $rc, background exit $late_rc)"
[ $rc -eq 0 ] && [ $late_rc -eq 0 ]
