#!/usr/bin/env bash
# End-to-end smoke test on kind, for machines with a Docker engine (this project's CI has none:
# its tests run on a local control plane built from Go modules instead, see docs/testing.md).
#
# It creates a kind cluster with two "spot" workers and one "on-demand" worker (labelled as
# Karpenter labels them), builds the image and loads it into kind, installs the Helm chart
# (Helm built from Go modules by hack/helm.sh) into a namespace enforcing restricted Pod
# Security, then:
#   1. a 4-replica opted-in Deployment lands on the spot workers only;
#   2. failover: one spot worker gets an interruption taint (NoExecute); its pods are evicted
#      and land on on-demand;
#   3. failback: the taint goes; the rebalancer moves the pods back to spot.
#
# Needs: docker, kind, kubectl, go. Environment:
#   CLUSTER=spot-e2e        kind cluster name
#   KIND_NODE_IMAGE=...     node image (default: kind's default)
#   KEEP=1                  keep the cluster afterwards
#   TIMEOUT=180             seconds to wait for each step
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=${CLUSTER:-spot-e2e}
timeout=${TIMEOUT:-180}
namespace=spot-scheduler
app_ns=e2e
image=spot-scheduler:e2e
itn_taint=aws-node-termination-handler/spot-itn

for tool in docker kind kubectl go; do
  command -v "$tool" >/dev/null || { echo "e2e-kind: $tool is required" >&2; exit 1; }
done
log() { echo "e2e-kind: $*" >&2; }
fail() { echo "e2e-kind: FAIL: $*" >&2; kubectl get pods -A -o wide >&2 || true; exit 1; }

# wait_for DESC CMD...: retries CMD every 2s until it succeeds, for at most $timeout seconds.
wait_for() {
  local desc=$1; shift
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out after ${timeout}s waiting for: $desc"
    sleep 2
  done
  log "ok: $desc"
}

cleanup() {
  if [ "${KEEP:-}" = 1 ]; then
    log "keeping cluster $cluster (kind delete cluster --name $cluster)"
  else
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

log "creating kind cluster $cluster"
kind create cluster --name "$cluster" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 120s --config - <<'EOF'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
  labels: {karpenter.sh/capacity-type: spot}
- role: worker
  labels: {karpenter.sh/capacity-type: spot}
- role: worker
  labels: {karpenter.sh/capacity-type: on-demand}
EOF
kubectl config use-context "kind-$cluster" >/dev/null

log "building $image"
docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

log "installing the chart"
helm=$(hack/helm.sh)
kubectl create namespace "$namespace"
kubectl label namespace "$namespace" pod-security.kubernetes.io/enforce=restricted
# The components run on the on-demand worker, so the spot workers' room is the workload's.
"$helm" install spot-scheduler manifests/charts/spot-scheduler --namespace "$namespace" --wait --timeout 5m \
  --set image.repository=spot-scheduler --set image.tag=e2e --set image.pullPolicy=Never \
  --set-string scheduler.nodeSelector.karpenter\\.sh/capacity-type=on-demand \
  --set-string controller.nodeSelector.karpenter\\.sh/capacity-type=on-demand \
  --set rebalancer.failback.minPodAge=0s --set rebalancer.failback.debounce=2s --set rebalancer.failback.interval=15s

spot_nodes=($(kubectl get nodes -l karpenter.sh/capacity-type=spot -o jsonpath='{.items[*].metadata.name}'))
ondemand=$(kubectl get nodes -l karpenter.sh/capacity-type=on-demand -o jsonpath='{.items[0].metadata.name}')
[ ${#spot_nodes[@]} -eq 2 ] || fail "want 2 spot workers, have ${spot_nodes[*]}"

# Two pods fill a spot worker (a third does not fit): request 35% of its allocatable CPU each.
alloc=$(kubectl get node "${spot_nodes[0]}" -o jsonpath='{.status.allocatable.cpu}')
case $alloc in *m) millis=${alloc%m} ;; *) millis=$((alloc * 1000)) ;; esac
request=$((millis * 35 / 100))m
log "workload: 4 replicas requesting $request CPU each (spot workers: ${spot_nodes[*]}, on-demand: $ondemand)"

kubectl create namespace "$app_ns"
kubectl apply -n "$app_ns" -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      schedulerName: spot-scheduler
      terminationGracePeriodSeconds: 1
      containers:
      - name: pause
        image: registry.k8s.io/pause:3.10
        resources: {requests: {cpu: $request, memory: 16Mi}}
EOF

# pods_on NODE...: the number of Running web pods on those nodes.
pods_on() {
  local n=0 node
  for node in "$@"; do
    n=$((n + $(kubectl get pods -n "$app_ns" -l app=web --field-selector "spec.nodeName=$node,status.phase=Running" --no-headers 2>/dev/null | grep -vc Terminating || true)))
  done
  echo "$n"
}
all_on() { # all_on COUNT NODE...: exactly COUNT Running web pods, all on NODEs
  local want=$1; shift
  [ "$(pods_on "$@")" -eq "$want" ] && [ "$(kubectl get pods -n "$app_ns" -l app=web --no-headers | wc -l)" -eq "$want" ]
}

wait_for "4 web pods Running on spot" all_on 4 "${spot_nodes[@]}"
kubectl get lease -n "$namespace" spot-scheduler spot-scheduler-rebalancer >&2
kubectl get pods -n "$app_ns" -l app=web -o jsonpath='{range .items[*]}{.metadata.name}{" cost="}{.metadata.annotations.controller\.kubernetes\.io/pod-deletion-cost}{"\n"}{end}' >&2

log "failover: interruption notice on ${spot_nodes[0]}"
kubectl taint node "${spot_nodes[0]}" "$itn_taint=x:NoExecute"
failover() { [ "$(pods_on "${spot_nodes[1]}")" -eq 2 ] && [ "$(pods_on "$ondemand")" -eq 2 ] && all_on 4 "${spot_nodes[1]}" "$ondemand"; }
wait_for "2 pods failed over to on-demand" failover

log "failback: ${spot_nodes[0]} is healthy again"
kubectl taint node "${spot_nodes[0]}" "$itn_taint-"
wait_for "4 web pods back on spot" all_on 4 "${spot_nodes[@]}"
kubectl get events -n "$app_ns" --field-selector reason=Rebalanced >&2

log "PASS: spot first, failover to on-demand, failback to spot"
