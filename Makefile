# spot-scheduler. `make demo` plays the product's story on a local control plane;
# `make test` runs the unit and integration tests (building the control plane on first use).
SHELL := /usr/bin/env bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
K8S_VERSION := $(shell go list -m -f '{{.Version}}' k8s.io/kubernetes 2>/dev/null)
K8S_MINOR := $(word 2,$(subst ., ,$(K8S_VERSION)))
LDFLAGS := -s -w \
  -X github.com/spot-scheduler/spot-scheduler/pkg/version.Version=$(VERSION) \
  -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=$(K8S_MINOR)
IMAGE ?= ghcr.io/spot-scheduler/spot-scheduler:$(VERSION)
TEST_TIMEOUT ?= 60m
# One compile of every package, shared by lint, the binaries, the control plane built from the
# same Kubernetes modules, and the tests: the same settings everywhere (no cgo; no -trimpath
# outside the release image), so the build cache holds each package once.
export CGO_ENABLED := 0
# API server minors the compatibility smoke suite covers (docs/compatibility.md); `make test`
# runs it against the oldest and the newest, `make test-compat` against every one.
COMPAT_MINORS ?= 1.32 1.33 1.34 1.35 1.36 1.37 1.38
COMPAT_CI_MINORS ?= 1.32 1.38

.PHONY: vet staticcheck all build build-rebalancer demo demo-karpenter control-plane karpenter test test-compat test-unit test-integration lint image clean update-k8s helm manifests bench bench-day bench-strategies bench-throughput bench-failback bench-plan bench-perf try-k8s

all: build

build: build-rebalancer ## Build the spot-scheduler (and spot-rebalancer) binaries into bin/.
	go build -ldflags "$(LDFLAGS)" -o bin/spot-scheduler ./cmd/scheduler
	ln -sf spot-scheduler bin/kubectl-spot

build-rebalancer: ## Build bin/spot-rebalancer (the controllers: deletion cost, rebalancer).
	go build -ldflags "$(LDFLAGS)" -o bin/spot-rebalancer ./cmd/rebalancer

demo: build ## Play the failover/failback/scale-in story on a local control plane (KEEP=1 leaves it running).
	go run ./cmd/demo --scheduler bin/spot-scheduler --rebalancer bin/spot-rebalancer

demo-karpenter: build ## The failover/failback story with Karpenter (kwok provider) adding and removing every node.
	go run ./cmd/demo --karpenter --karpenter-dir "$$(hack/build-karpenter.sh)" --scheduler bin/spot-scheduler --rebalancer bin/spot-rebalancer

control-plane: ## Build (or reuse) etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.
	hack/build-control-plane.sh

karpenter: ## Build (or reuse) Karpenter's kwok provider (sigs.k8s.io/karpenter/kwok, ~6 min cold) and print its directory.
	@hack/build-karpenter.sh

test: build ## Unit and integration tests against a real control plane, Karpenter and the compatibility smoke suite on COMPAT_CI_MINORS, in timestamped phases (hack/test.sh).
	SPOT_SCHEDULER_BINARY="$(CURDIR)/bin/spot-scheduler" SPOT_SCHEDULER_REBALANCER_BINARY="$(CURDIR)/bin/spot-rebalancer" \
	  COMPAT_MINORS="$(COMPAT_CI_MINORS)" TEST_TIMEOUT=$(TEST_TIMEOUT) hack/test.sh

test-compat: build ## The compatibility smoke suite (TestCompat<minor>...) against every API server minor in COMPAT_MINORS (docs/compatibility.md).
	for minor in $(COMPAT_MINORS); do hack/build-compat.sh $$minor >/dev/null || exit 1; done
	SPOT_SCHEDULER_BIN_DIR="$$(hack/build-control-plane.sh)" SPOT_SCHEDULER_BINARY="$(CURDIR)/bin/spot-scheduler" \
	  SPOT_SCHEDULER_REBALANCER_BINARY="$(CURDIR)/bin/spot-rebalancer" SPOT_SCHEDULER_COMPAT_MINORS="$(COMPAT_MINORS)" \
	  hack/run-tests.sh -timeout 90m -v -run '^TestCompat' ./test/integration/

test-unit: ## Unit tests only (no control plane).
	go test -short ./...

test-integration: build ## Integration tests only.
	SPOT_SCHEDULER_BIN_DIR="$$(hack/build-control-plane.sh)" SPOT_SCHEDULER_BINARY="$(CURDIR)/bin/spot-scheduler" \
	  SPOT_SCHEDULER_KARPENTER_DIR="$$(hack/build-karpenter.sh)" \
	  SPOT_SCHEDULER_REBALANCER_BINARY="$(CURDIR)/bin/spot-rebalancer" \
	  hack/run-tests.sh -timeout $(TEST_TIMEOUT) -v ./test/integration/...

bench: bench-strategies bench-throughput bench-failback bench-plan ## All benchmarks (docs/benchmarks.md), ~55 min: strategies with Karpenter (~25 min), throughput at 1000 and 5000 nodes against upstream 1.34 and 1.37 (~20 min), failback at 500 nodes (~8 min), planning (~1 min).

bench-day: build ## The real-day benchmark (docs/benchmarks.md): karpenter and spot-scheduler run the episode library in real time, each repetition split in chains (two for spot-scheduler, four for karpenter) on six clusters side by side, with Karpenter adding every node (42 min 28 s measured; see docs/benchmarks.md); DAY_ARGS="--strategies=karpenter,karpenter-balanced,aks-recipe,spot-scheduler,spot-scheduler-policy --repetitions=3 --stress" for more. Runs accumulate in bench/results/day/runs; the reports (summary.txt, results.md, PNGs) compose days from all of them.
	SPOT_SCHEDULER_BIN_DIR="$$(hack/build-control-plane.sh)" SPOT_SCHEDULER_KARPENTER_DIR="$$(hack/build-karpenter.sh)" \
	  go run ./bench/cmd/day $(DAY_ARGS)

bench-strategies: build ## Replay bench/trace/default.yaml per strategy with Karpenter as the autoscaler (BENCH_ARGS="--autoscaler=scripted" for scripted nodes); reports in bench/results.
	SPOT_SCHEDULER_BIN_DIR="$$(hack/build-control-plane.sh)" SPOT_SCHEDULER_KARPENTER_DIR="$$(hack/build-karpenter.sh)" \
	  go run ./bench/cmd/strategies --descheduler "$$(hack/build-descheduler.sh)" $(BENCH_ARGS)

bench-throughput: build ## Scheduling throughput of the spot-scheduler profile against the default profile and upstream kube-scheduler 1.34 and 1.37 (built and cached by hack/build-compat.sh), on a 1.37 API server, and the tier search's fallback latency (1000 and 5000 nodes, 3000 and 2000 pods, 3 rounds; THROUGHPUT_ARGS="-throughput.rounds=5").
	SPOT_SCHEDULER_BIN_DIR="$$(hack/build-control-plane.sh)" SPOT_SCHEDULER_BINARY="$(CURDIR)/bin/spot-scheduler" \
	  hack/run-tests.sh ./bench -run '^$$' -bench SchedulingThroughput -benchtime 1x -timeout 90m -v $(THROUGHPUT_ARGS)

bench-failback: build ## Failback at scale (500 nodes, 10 workloads x 300 pods Ready 5 s after start, a third of spot reclaimed and returned) at default settings; ends with the line "failback pods=... back_s=... evictions_per_s=... min_ready_ratio=...", also in bench/results/failback.txt.
	SPOT_SCHEDULER_BIN_DIR="$$(hack/build-control-plane.sh)" SPOT_SCHEDULER_BINARY="$(CURDIR)/bin/spot-scheduler" \
	  SPOT_SCHEDULER_REBALANCER_BINARY="$(CURDIR)/bin/spot-rebalancer" \
	  hack/run-tests.sh ./bench -run '^$$' -bench '^BenchmarkFailback$$' -benchtime 1x -timeout 40m -v $(FAILBACK_ARGS)

try-k8s: ## Try the product on a newer Kubernetes framework (K8S_VERSION, default v1.37.2) in a copy of HEAD and list what breaks (hack/try-k8s.sh; docs/compatibility.md).
	hack/try-k8s.sh $(K8S_VERSION)

bench-plan: ## The rebalancer's planning pass over 5000 nodes and 50 000 pods.
	go test ./pkg/rebalance -run '^$$' -bench BenchmarkPlan -benchtime 1x -timeout 30m

PERF_PROFILE ?= manifests/scheduler-config.yaml
bench-perf: ## Upstream's scheduler_perf workloads, default profile vs the spot-scheduler profile of PERF_PROFILE (PERF_ARGS="-perf.workloads=SchedulingBasic/500Nodes").
	SPOT_SCHEDULER_BIN_DIR="$$(hack/build-control-plane.sh)" hack/run-tests.sh ./bench/perf -run '^$$' -bench '^BenchmarkPerfScheduling$$' \
	  -benchtime 1x -timeout 120m -perf.profile="$(abspath $(PERF_PROFILE))" $(PERF_ARGS)

.PHONY: fuzz soak
FUZZTIME ?= 10s
SOAK_DURATION ?= 9m

fuzz: ## Fuzz args decoding/validation, the tier classifier, the planner/simulation on random cluster shapes and the capacity policy through random events, FUZZTIME (10s) each, from the committed seed corpora (not part of make test: the corpora run as ordinary tests there).
	go test ./pkg/apis/config/v1alpha1 -run '^$$' -fuzz '^FuzzDecodeSpotScoreArgs$$' -fuzztime $(FUZZTIME)
	go test ./pkg/apis/config/v1alpha1 -run '^$$' -fuzz '^FuzzDecodePlaceholderPreemptionArgs$$' -fuzztime $(FUZZTIME)
	go test ./pkg/capacity -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME)
	go test ./pkg/rebalance -run '^$$' -fuzz '^FuzzClusterShapes$$' -fuzztime $(FUZZTIME)
	go test ./pkg/rebalance -run '^$$' -fuzz '^FuzzPolicyThroughEvents$$' -fuzztime $(FUZZTIME)

soak: build ## ~10 minutes of spot reclaims, returns and scale changes with every component running, invariants checked (SOAK_DURATION, SOAK_SEED).
	SPOT_SCHEDULER_BIN_DIR="$$(hack/build-control-plane.sh)" SPOT_SCHEDULER_BINARY="$(CURDIR)/bin/spot-scheduler" \
	  SPOT_SCHEDULER_REBALANCER_BINARY="$(CURDIR)/bin/spot-rebalancer" SOAK_DURATION=$(SOAK_DURATION) \
	  hack/run-tests.sh -timeout 30m -v -run '^TestReliabilitySoak$$' ./test/integration/

STATICCHECK_VERSION ?= v0.8.2

lint: vet staticcheck ## gofmt, go vet and staticcheck (its default checks: bugs, simplifications, unused code).

vet: ## gofmt and go vet (compiles every package and its tests: the compile the tests reuse).
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	go vet ./...

staticcheck: ## staticcheck's default checks.
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

image: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

helm: ## Build (or reuse) the Helm CLI from Go modules and print its path.
	@hack/helm.sh

manifests: ## Render the Helm chart into plain manifests (manifests/rendered/).
	hack/render-manifests.sh

update-k8s: ## Move every Kubernetes pin: make update-k8s K8S=v1.34.10
	hack/update-k8s.sh $(K8S)

clean:
	rm -rf bin
