# phxgo: the two commands a newcomer needs are `make demo` and `make test`.
GO        ?= go
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
STATICCHECK_VERSION ?= v0.8.2
JS_DIR    := testdata/js

.PHONY: test vet js bench fuzz lint demo demo-managed serve golden chaos soak otel

test: vet js
	$(GO) test -race ./...
	$(MAKE) otel

# otel vets and tests the OpenTelemetry adapter, a module of its own so that
# the main module does not depend on OpenTelemetry.
otel:
	cd phx/otelphx && $(GO) vet ./... && $(GO) test -race ./...

vet:
	$(GO) vet ./...

# js installs the pinned official Phoenix JavaScript client used by the
# golden-vector, presence and interop tests (needs node and npm).
js: $(JS_DIR)/node_modules/.package-lock.json

$(JS_DIR)/node_modules/.package-lock.json: $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# fuzz runs every Fuzz target of every package for FUZZTIME each; .ci/fuzz
# says why a bare deadline with no failing input is retried.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash .ci/fuzz

# chaos runs the reliability test at CI size (500 reconnect cycles, 20 topics,
# 10,000 pushes; it is part of make test too) and prints its summary line;
# soak runs it at the long-tier sizes. CHAOSFLAGS adds -chaos.* flags, for
# example -chaos.seed=N to replay a run.
chaos:
	$(GO) test -race -run '^TestChaos$$' -v -count=1 ./phx/ -args $(CHAOSFLAGS)

soak:
	$(GO) test -race -run '^TestChaos$$' -v -count=1 -timeout 60m ./phx/ -args \
	  -chaos.cycles=10000 -chaos.pushes=100000 -chaos.broadcasts=50000 $(CHAOSFLAGS)

lint:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -checks all,-ST1000,-ST1003 ./...

# demo starts the in-process dev server and three simulated users (about ten seconds).
demo:
	$(GO) run ./cmd/phx demo

# demo-managed runs the managed client's examples against the in-process server.
demo-managed:
	$(GO) test -count=1 -run '^Example' -v ./phx/managed/

# serve runs the Phoenix-compatible dev server on 127.0.0.1:4000 until Ctrl-C.
serve:
	$(GO) run ./cmd/phx serve

# golden regenerates the wire vectors from the official JavaScript client;
# CI checks that the committed vectors are what it produces.
golden: js
	cd $(JS_DIR) && node golden_wire.mjs
