SHELL := /bin/bash
# cinder-provisioner: build, test and run the local stack.
# `make test` is THE test command: unit tests (with -race) and integration
# tests against a real Kubernetes control plane and a real Cinder on 127.0.0.1
# (brought up on first use by hack/local-up.sh).

GO ?= go
BIN := _output/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
GOLANGCI_LINT_VERSION ?= v2.15.0
INTEGRATION_TIMEOUT ?= 45m
# packages whose tests need the local stack
INTEGRATION_PKGS := ./test/integration/...

.PHONY: all build demo demo-down test test-unit test-integration test-reliability bench lint local-up local-down local-purge clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/cinder-provisioner ./cmd/cinder-provisioner

# THE main job: real Cinder volumes for real PVCs on the local stack
demo:
	bash hack/demo.sh

demo-down:
	bash hack/demo-down.sh

test: test-unit test-integration

test-unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v -e /test/integration -e /test/reliability)

test-integration: build
	bash hack/local-up.sh
	$(GO) test -count=1 -p 1 -timeout $(INTEGRATION_TIMEOUT) -v $(INTEGRATION_PKGS)

# the reliability suite (test/reliability): faults and load on the real local
# stack, one table row per scenario, written into docs/reliability.md.
# RELIABILITY_SCALE=ci runs the same scenarios at smaller counts.
RELIABILITY_TIMEOUT ?= 45m
test-reliability: build
	bash hack/local-up.sh
	$(GO) test -count=1 -timeout $(RELIABILITY_TIMEOUT) -v ./test/reliability/

# performance on the local stack (test/bench): P1 latency, P2 burst against
# the same-run Cinder floor and a worker sweep, P3 restart at scale, P4
# memory; prints the figures and rewrites docs/performance.md. ~20 min.
# BENCH_ARGS passes flags, e.g. BENCH_ARGS='-only p1,p2 -p2-claims 100'.
bench: build
	bash hack/local-up.sh
	BENCH_ARGS="$(BENCH_ARGS)" $(GO) run ./test/bench $(BENCH_ARGS)

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...
	@$(MAKE) --no-print-directory lint-chart

local-up:
	bash hack/local-up.sh

local-down:
	bash hack/local-down.sh

local-purge:
	bash hack/local-down.sh --purge

clean:
	rm -rf _output/bin

# ---------------------------------------------------------------- image, chart, release
# The container image is built without a container engine (go-containerregistry,
# hack/image); Helm and kustomize run pinned, through `go run module@version`
# (built from the module proxy on first use, then cached by Go).
HELM_VERSION ?= v3.22.0
KUSTOMIZE_VERSION ?= v5.8.2
IMAGE_REPO ?= ghcr.io/cinder-provisioner/cinder-provisioner
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_DIR ?= _output/image
RELEASE_DIR ?= _output/release
SOURCE_URL ?= https://github.com/cinder-provisioner/cinder-provisioner
IMAGE_ENV = GO="$(GO)" VERSION="$(VERSION)" IMAGE_REPO="$(IMAGE_REPO)" IMAGE_PLATFORMS="$(IMAGE_PLATFORMS)" \
  IMAGE_DIR="$(IMAGE_DIR)" SOURCE_URL="$(SOURCE_URL)"

.PHONY: image release lint-chart

# $(IMAGE_DIR)/oci (OCI layout, every platform) and one docker-loadable
# tarball per platform
image:
	$(IMAGE_ENV) bash hack/image.sh

# image tarballs, Helm chart package, rendered manifests and SHA256SUMS in
# $(RELEASE_DIR), all stamped with $(VERSION) (git describe)
release:
	$(IMAGE_ENV) RELEASE_DIR="$(RELEASE_DIR)" HELM_VERSION="$(HELM_VERSION)" KUSTOMIZE_VERSION="$(KUSTOMIZE_VERSION)" \
	  bash hack/release.sh

# helm lint --strict and helm template of the chart (part of make lint)
lint-chart:
	GO="$(GO)" HELM_VERSION="$(HELM_VERSION)" bash hack/lint-chart.sh
