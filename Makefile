# phxgo: the two commands a newcomer needs are `make demo` and `make test`.
GO        ?= go
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
STATICCHECK_VERSION ?= v0.8.2
JS_DIR    := testdata/js

.PHONY: test vet js bench fuzz lint demo demo-managed serve golden chaos soak bench-demo backpressure mutate otel

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
	cd phx/otelphx && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -checks all,-ST1000,-ST1003 ./...

# demo starts the in-process dev server, three simulated users and a managed client (about fourteen seconds).
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

# bench-demo load-tests `phx serve` running in another process on BENCH_ADDR
# with `phx bench` (about 20 seconds): 1,000 sockets with a joined channel
# each, held 5 s, then an open-loop run of 1,000 pushes/s of 256 bytes on
# 100 channels for 10 s, with its latency histogram.
BENCH_ADDR ?= 127.0.0.1:4100
bench-demo:
	@set -e; dir=$$(mktemp -d); srv=; \
	trap 'test -n "$$srv" && kill $$srv; rm -rf $$dir' EXIT; \
	$(GO) build -o $$dir/phx ./cmd/phx; \
	$$dir/phx serve -addr $(BENCH_ADDR) > $$dir/serve.log 2>&1 & srv=$$!; \
	for i in $$(seq 50); do $$dir/phx push -timeout 1s $(BENCH_ADDR)/socket echo:up ping >/dev/null 2>&1 && break; sleep 0.1; done; \
	$$dir/phx bench -sockets 1000 -duration 5s ws://$(BENCH_ADDR)/socket; echo; \
	$$dir/phx bench -sockets 100 -topic 'echo:{socket}' -event echo -rate 1000 -size 256 -duration 10s ws://$(BENCH_ADDR)/socket

# backpressure runs the lossless-delivery checks at full size (make test
# runs them small): 1,000,000 messages of 100 bytes at the server's full
# pace, and 100,000 with the consumer stopping 1 s every 10,000; it prints
# the figures.
backpressure:
	$(GO) test -run '^TestBackpressure' -v -count=1 -timeout 30m ./phx/ -args \
	  -bp.blast=1000000 -bp.stalled=100000 -bp.every=10000 -bp.pause=1s

# mutate measures test strength: gremlins (pinned) plants small bugs (a
# flipped comparison, a negated condition, ++ for --) one at a time in each
# package of MUTATE_PKGS, runs that package's tests against each, and
# prints per package the efficacy (mutants killed / mutants the tests
# cover) and the mutant coverage. Survivors (LIVED) are listed in
# MUTATE_OUT/<pkg>.log. The tests run without -race and without
# MUTATE_SKIP: TestChaos is the long reliability run (make chaos), and
# under phx phxtest (the test server) is not mutated. Each mutant's run is
# bounded by MUTATE_TIMEOUT times the clean run (a hang is reported as
# timed out, apart from killed and lived).
# On 2 cores: actor about 2 minutes, wire and phx half an hour or more
# each; too long for .ci/run. MUTATE_PKGS=wire narrows it, MUTATE_FLAGS
# adds gremlins flags (-E file.go leaves a file out).
GREMLINS_VERSION ?= v0.6.0
MUTATE_PKGS    ?= wire actor presence phx
MUTATE_WORKERS ?= 2
MUTATE_TIMEOUT ?= 10
MUTATE_SKIP    ?= ^TestChaos$$
MUTATE_OUT     ?= $(CURDIR)/.mutate
MUTATE_FLAGS   ?=

mutate: js
	@mkdir -p $(MUTATE_OUT)
	GOBIN=$(MUTATE_OUT) $(GO) install github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)
	@for p in $(MUTATE_PKGS); do \
	  start=$$(date +%s); \
	  GOFLAGS="$$GOFLAGS -count=1 -skip=$(MUTATE_SKIP)" $(MUTATE_OUT)/gremlins unleash \
	    --workers $(MUTATE_WORKERS) --timeout-coefficient $(MUTATE_TIMEOUT) \
	    -E 'phxtest/' $(MUTATE_FLAGS) ./$$p > $(MUTATE_OUT)/$$p.log 2>&1; \
	  printf '%-9s %s, %s, %s, %s (%ss)\n' $$p \
	    "$$(grep -o 'Test efficacy: [0-9.]*%' $(MUTATE_OUT)/$$p.log)" \
	    "$$(grep -o 'Mutator coverage: [0-9.]*%' $(MUTATE_OUT)/$$p.log)" \
	    "$$(grep -o 'Killed: [0-9]*, Lived: [0-9]*' $(MUTATE_OUT)/$$p.log)" \
	    "$$(grep -o 'Timed out: [0-9]*' $(MUTATE_OUT)/$$p.log)" \
	    $$(( $$(date +%s) - start )); \
	done
