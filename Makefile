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

.PHONY: all build demo demo-down test test-unit test-integration lint local-up local-down local-purge clean

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
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/integration)

test-integration: build
	bash hack/local-up.sh
	$(GO) test -count=1 -p 1 -timeout $(INTEGRATION_TIMEOUT) -v $(INTEGRATION_PKGS)

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

local-up:
	bash hack/local-up.sh

local-down:
	bash hack/local-down.sh

local-purge:
	bash hack/local-down.sh --purge

clean:
	rm -rf _output/bin
