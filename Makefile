# Verity — build, run and test. `make help` lists the targets.
GO        ?= go
BIN       ?= bin/verity
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/verityhq/verity/internal/version.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help build run test test-short bench lint fmt clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

build: ## build bin/verity
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/verity

run: ## run the all-in-one Verity (embedded SQLite in ./verity-data)
	$(GO) run ./cmd/verity up

test: ## run the whole test suite (starts a throwaway PostgreSQL 15)
	./scripts/test.sh

test-short: ## unit tests only, no PostgreSQL, no end-to-end
	$(GO) test -short ./...

bench: ## run the benchmarks (see docs/benchmarks.md)
	./scripts/bench.sh

lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

clean: ## remove build output
	rm -rf bin
