#!/usr/bin/env bash
# Runs `go test "$@"` with a private TMPDIR, then ends any process a test left behind (a test
# binary killed by -timeout cannot stop the etcd and kube-apiserver it started) by finding
# the processes whose command line names that directory. Keeps the directory, with every
# component's log, when the tests fail.
set -uo pipefail
tmp=$(mktemp -d "${TMPDIR:-/tmp}/spot-scheduler-test.XXXXXX")
reap() {
  pkill -KILL -f -- "$tmp/" 2>/dev/null || true
}
trap 'reap; exit 130' INT TERM
TMPDIR="$tmp" go test "$@"
rc=$?
reap
if [ $rc -eq 0 ]; then
  rm -rf "$tmp"
else
  echo "run-tests: tests failed; control-plane logs of failed tests are under $tmp" >&2
fi
exit $rc
