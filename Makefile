# kubectl-dc. `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG     := github.com/kubectl-dc/kubectl-dc
LDFLAGS := -s -w -X $(PKG)/plugin.version=$(VERSION) -X $(PKG)/plugin.commit=$(COMMIT) -X $(PKG)/plugin.date=$(DATE)

GOBIN_DIR        := $(CURDIR)/.cache/tools
GOLANGCI_VERSION := v2.15.0
CONTROLLER_GEN_VERSION := v0.23.0
GOLANGCI         := $(GOBIN_DIR)/golangci-lint-$(GOLANGCI_VERSION)
CONTROLLER_GEN   := $(GOBIN_DIR)/controller-gen-$(CONTROLLER_GEN_VERSION)

# E2E packages each start their own control plane; two at a time fit 2 cores.
E2E_PARALLEL ?= 2
# The longest suites start first (go test runs packages in the order given),
# so that the run does not end with one long suite alone on the machine.
E2E_FIRST := webhookha drain agreement webhook status
FUZZTIME     ?= 10s
UNIT_PKGS := $$(go list ./... | grep -v /test/)
E2E_PKGS  := $(addprefix ./test/e2e/,$(E2E_FIRST)) \
	$$(go list ./test/... | grep -v -e /test/tools -e /test/cmd $(foreach s,$(E2E_FIRST),-e /test/e2e/$(s)$$))
# Tests build as the release binaries do (make build, make dist): without
# cgo, since cli-runtime pulls in the standard library's plugin package
# (through kustomize), which with cgo makes every test binary link with the
# external linker, and that linking was a seventh of make test's CPU; and
# with -trimpath, so that tests, make build, make demo and the release
# archives the krew suite builds share one build cache instead of each
# compiling every dependency again.
TEST_ENV  := CGO_ENABLED=0 GOFLAGS=-trimpath
UNIT_TEST := $(TEST_ENV) go test -count=1 $(UNIT_PKGS)
E2E_TEST  := $(TEST_ENV) go test -count=1 -p $(E2E_PARALLEL) -timeout 40m $(E2E_PKGS)

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: build
build: ## Build kubectl-dc, dc-webhook and dc-cluster into bin/.
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/kubectl-dc ./cmd/dc-webhook
	CGO_ENABLED=0 go build -trimpath -o bin/ ./test/cmd/dc-cluster

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy code and the CRD.
	$(CONTROLLER_GEN) object paths=./policy/api/...
	$(CONTROLLER_GEN) crd paths=./policy/api/... output:crd:artifacts:config=manifests/crd

.PHONY: control-plane
control-plane: ## Build (or reuse from .cache/) the local control-plane binaries.
	@hack/build-control-plane.sh >/dev/null
	@hack/build-control-plane.sh kine >/dev/null

.PHONY: unit
unit: ## Run unit tests and short fuzz runs (no cluster).
	$(UNIT_TEST)
	$(TEST_ENV) hack/fuzz.sh $(FUZZTIME)

.PHONY: fuzz
fuzz: ## Run only the fuzz targets, FUZZTIME each (default 10s).
	$(TEST_ENV) hack/fuzz.sh $(FUZZTIME)

.PHONY: test-deps
test-deps: ## Install the Debian packages the e2e suites use (haproxy, the control-plane endpoint; postgresql, kine's database) when missing.
	@command -v haproxy >/dev/null 2>&1 || { \
		echo "installing haproxy with apt-get (the e2e suites run it as a control-plane endpoint)"; \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq haproxy >/dev/null; }
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
		echo "installing postgresql with apt-get (test/e2e/kine runs kine over a primary and a streaming replica, as an unprivileged user)"; \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq postgresql >/dev/null; }

.PHONY: e2e
e2e: control-plane test-deps ## Run the e2e suites against local multi-datacenter control planes.
	$(E2E_TEST)

# make test runs the unit packages in the same go test as the e2e suites,
# after them: they fill the slot the first suite to finish leaves while the
# last one runs, instead of a minute of their own before the e2e suites. The
# fuzz targets run beside, at the lowest CPU priority: the suites mostly wait
# on their control planes, and the fuzzers take what is idle (their FUZZTIME
# is wall time). Their output (the last progress line of each target) is
# printed once both are done.
.PHONY: test
test: control-plane test-deps ## Run every test: e2e and unit in one go test, the fuzz targets beside it.
	@log=$$(mktemp -t kubectl-dc-fuzz.XXXXXX); \
	echo "fuzz: every target for $(FUZZTIME) at nice 19 beside the e2e suites; output after them"; \
	$(TEST_ENV) nice -n 19 hack/fuzz.sh $(FUZZTIME) >"$$log" 2>&1 & fuzz=$$!; \
	$(E2E_TEST) $(UNIT_PKGS); e2e=$$?; \
	wait $$fuzz; fuzzed=$$?; \
	awk '/elapsed:/ { last = $$0; next } last != "" { print last; last = "" } { print }' "$$log"; rm -f "$$log"; \
	[ $$fuzzed -eq 0 ] || echo "FAIL: fuzz (exit $$fuzzed): the failing input is under that package's testdata/fuzz/"; \
	[ $$e2e -eq 0 ] && [ $$fuzzed -eq 0 ]

.PHONY: lint
lint: $(GOLANGCI) ## Lint with golangci-lint.
	$(GOLANGCI) run ./...

.PHONY: bench
bench: control-plane ## Run every benchmark (handler, engine, status scale, drain, pod create, the load run).
	go test -run '^$$' -bench . -benchmem $$(go list ./... | grep -v /test/)
	go test -count=1 -timeout 60m -run '^$$' -bench . -benchtime 1x ./test/...

.PHONY: bench-load
bench-load: control-plane ## Run only the load benchmark (200 clients, a minute without and a minute with the webhook) and print its table.
	go test -count=1 -timeout 30m -run '^$$' -bench BenchmarkAdmissionLoad -benchtime 1x ./test/bench/load

##@ Demo and release

.PHONY: demo
demo: control-plane build ## Bring up the MacStadium cluster, install the policy and webhook, show status and a denial.
	hack/demo.sh

.PHONY: demo-down
demo-down: ## Stop the demo cluster and its webhook.
	-@[ -f .cache/demo/webhook.pid ] && kill $$(cat .cache/demo/webhook.pid) 2>/dev/null; rm -f .cache/demo/webhook.pid
	-@[ -f .cache/demo/state.json ] && go run ./test/cmd/dc-cluster --dir .cache/demo down

.PHONY: dist
dist: ## Build release archives, checksums and the krew manifest into dist/.
	hack/dist.sh $(VERSION)

.PHONY: clean
clean: ## Remove build outputs (keeps the control-plane cache).
	rm -rf bin dist

$(GOLANGCI):
	GOBIN=$(GOBIN_DIR) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)
	mv $(GOBIN_DIR)/golangci-lint $@

$(CONTROLLER_GEN):
	GOBIN=$(GOBIN_DIR) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(GOBIN_DIR)/controller-gen $@
