# modelattest — build, test and demo. Every tool the tests need is installed
# here, pinned, through the Go module proxy, into .tools/bin.

GO       ?= go
TOOLS    := $(CURDIR)/.tools
BIN      := $(CURDIR)/bin
export MODELATTEST_TOOLS := $(TOOLS)/bin

ORAS_VERSION         := v1.3.6
DISTRIBUTION_VERSION := v3.1.2
CONFORMANCE_VERSION  := v0.0.0-20260831232431-97274622c111
COSIGN2_VERSION      := v2.6.5
COSIGN3_VERSION      := v3.1.3
CRANE_VERSION        := v0.20.7
NOTATION_VERSION     := v1.3.2
KUBE_VERSION         := v1.37.2
ETCD_VERSION         := v3.7.0
HELM_VERSION         := v3.22.0

GOTEST_FLAGS ?= -count=1 -race -timeout 30m
FUZZTIME     ?= 30s

.PHONY: all build test unit lint tools chromium demo bench bench-wan fuzz clean help

all: build

help:
	@echo "make demo   - embedded registry: pack, push, inspect, sign, attest, verify, verified pull, compare"
	@echo "make test   - install the pinned peer tools, then run every test (unit, integration, interop, conformance)"
	@echo "make unit   - the tests that need no peer tool"
	@echo "make bench  - push/pull benchmarks against oras on a local distribution registry"
	@echo "make bench-wan - pulls against oras through the emulated WAN (minutes, GiBs; chart in \$$TMPDIR/modelattest-bench-wan)"
	@echo "make lint   - gofmt, go vet, darwin and windows builds, go mod tidy check"
	@echo "make fuzz   - run every fuzz target for FUZZTIME (default 30s)"
	@echo "make tools  - install oras, distribution, the OCI conformance suite, cosign v2/v3, crane, notation, kube-apiserver/kubectl/etcd/helm (admission)"

build:
	$(GO) build -o $(BIN)/modelattest ./cmd/modelattest

# Each tool is installed once per pinned version: the stamp names the version.
$(TOOLS)/stamps/oras-$(ORAS_VERSION):
	GOBIN=$(TOOLS)/bin $(GO) install oras.land/oras/cmd/oras@$(ORAS_VERSION)
	@mkdir -p $(@D) && touch $@

$(TOOLS)/stamps/registry-$(DISTRIBUTION_VERSION):
	GOBIN=$(TOOLS)/bin $(GO) install github.com/distribution/distribution/v3/cmd/registry@$(DISTRIBUTION_VERSION)
	@mkdir -p $(@D) && touch $@

$(TOOLS)/stamps/conformance-$(CONFORMANCE_VERSION):
	GOBIN=$(TOOLS)/bin $(GO) install github.com/opencontainers/distribution-spec/conformance@$(CONFORMANCE_VERSION)
	@mkdir -p $(@D) && touch $@

$(TOOLS)/stamps/cosign-$(COSIGN2_VERSION):
	GOBIN=$(TOOLS)/cosign-v2 $(GO) install github.com/sigstore/cosign/v2/cmd/cosign@$(COSIGN2_VERSION)
	cp $(TOOLS)/cosign-v2/cosign $(TOOLS)/bin/cosign-v2
	@mkdir -p $(@D) && touch $@

$(TOOLS)/stamps/cosign-$(COSIGN3_VERSION):
	GOBIN=$(TOOLS)/cosign-v3 $(GO) install github.com/sigstore/cosign/v3/cmd/cosign@$(COSIGN3_VERSION)
	cp $(TOOLS)/cosign-v3/cosign $(TOOLS)/bin/cosign-v3
	@mkdir -p $(@D) && touch $@

$(TOOLS)/stamps/crane-$(CRANE_VERSION):
	GOBIN=$(TOOLS)/bin $(GO) install github.com/google/go-containerregistry/cmd/crane@$(CRANE_VERSION)
	@mkdir -p $(@D) && touch $@

# notation does not `go install` here: a throwaway module requiring the
# pinned version builds its command with `go build`.
$(TOOLS)/stamps/notation-$(NOTATION_VERSION):
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cd "$$tmp"; \
	  $(GO) mod init modelattest.tools/notation; \
	  $(GO) get github.com/notaryproject/notation/cmd/notation@$(NOTATION_VERSION); \
	  $(GO) build -ldflags '-X github.com/notaryproject/notation/internal/version.BuildMetadata=' \
	    -o $(TOOLS)/bin/notation github.com/notaryproject/notation/cmd/notation
	@mkdir -p $(@D) && touch $@

# The admission tests run a real kube-apiserver, etcd, kubectl and helm,
# built from the Go module proxy by scripts/build-kube-tools.sh (throwaway
# modules; kube-apiserver and kubectl in one go build).
$(TOOLS)/stamps/kube-$(KUBE_VERSION):
	KUBE_VERSION=$(KUBE_VERSION) ./scripts/build-kube-tools.sh $(TOOLS)/bin kube
	@mkdir -p $(@D) && touch $@

$(TOOLS)/stamps/etcd-$(ETCD_VERSION):
	ETCD_VERSION=$(ETCD_VERSION) ./scripts/build-kube-tools.sh $(TOOLS)/bin etcd
	@mkdir -p $(@D) && touch $@

$(TOOLS)/stamps/helm-$(HELM_VERSION):
	HELM_VERSION=$(HELM_VERSION) ./scripts/build-kube-tools.sh $(TOOLS)/bin helm
	@mkdir -p $(@D) && touch $@

TOOL_STAMPS := \
	$(TOOLS)/stamps/oras-$(ORAS_VERSION) \
	$(TOOLS)/stamps/registry-$(DISTRIBUTION_VERSION) \
	$(TOOLS)/stamps/conformance-$(CONFORMANCE_VERSION) \
	$(TOOLS)/stamps/cosign-$(COSIGN2_VERSION) \
	$(TOOLS)/stamps/cosign-$(COSIGN3_VERSION) \
	$(TOOLS)/stamps/crane-$(CRANE_VERSION) \
	$(TOOLS)/stamps/notation-$(NOTATION_VERSION) \
	$(TOOLS)/stamps/kube-$(KUBE_VERSION) \
	$(TOOLS)/stamps/etcd-$(ETCD_VERSION) \
	$(TOOLS)/stamps/helm-$(HELM_VERSION)

tools: $(TOOL_STAMPS) chromium

# Headless Chromium checks report.html through its DOM. It is Debian's
# package, installed with apt-get when missing (CI runs as root); elsewhere
# say how, and the test skips (CI=true makes it fail).
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else echo "chromium is missing: install Debian's chromium package (sudo apt-get install chromium)"; fi

# The whole suite: unit tests, integration against real registries, interop
# with the real peer CLIs, and the OCI conformance suite.
test: tools
	$(GO) test $(GOTEST_FLAGS) ./...

unit:
	$(GO) test $(GOTEST_FLAGS) ./modelspec/... ./oras/... ./referrers/... ./registry/... ./events/... ./runtime/... ./encryption/... ./cmd/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=darwin $(GO) build ./...
	GOOS=windows $(GO) build ./...
	# Vet compiles the tests too, so a test that only builds on Linux shows
	# here. runtime's tests use go-sev-guest's testing package, which does
	# not build on Windows (unix.EIO), so Windows vets the others.
	GOOS=darwin $(GO) vet ./...
	GOOS=windows $(GO) vet $$($(GO) list ./... | grep -v /runtime$$)
	$(GO) mod tidy -diff

# Each fuzz target runs for FUZZTIME; a crasher lands in testdata/fuzz and
# becomes a regression test that `make test` runs.
FUZZ_PKGS := ./modelspec ./oras ./referrers ./registry ./encryption
fuzz:
	@set -e; for pkg in $(FUZZ_PKGS); do \
	  for t in $$($(GO) test $$pkg -list '^Fuzz' | grep '^Fuzz'); do \
	    echo "== $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test $$pkg -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME); \
	  done; \
	done

demo: build
	./scripts/demo.sh $(BIN)/modelattest

bench: tools build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./integration/ | tee bench.out

# Not in CI: minutes long, 4 GiB of models, and it wants a quiet machine.
bench-wan: tools
	MODELATTEST_BENCH_WAN=1 $(GO) test -run '^$$' -bench WAN -benchtime 1x -timeout 60m ./integration/ | tee bench-wan.out

clean:
	rm -rf $(BIN) bench.out bench-wan.out
