# jitstream build, test and benchmark entry points.
#
#   make deps   install system tools (ffmpeg, nginx, chromium, wrk, node,
#               redis-server) and the player libraries (npm ci in
#               web/players) if missing
#   make minio  build the MinIO server of the S3 tests once, into
#               ~/.cache/jitstream/bin (scripts/minio.sh)
#   make build  build bin/jitstream
#   make run    build and run the server (jitstream serve)
#   make test   go vet + all tests (media fixtures are cached in .cache/),
#               on the local store, then the storage tests again on S3
#               (JITSTREAM_TEST_STORE=s3, on MinIO)
#   make bench  build and run the benchmark program cmd/jitbench
#   make fuzz   run every fuzz target (FUZZ_TARGETS) for FUZZTIME each
#               (default 10s: make fuzz FUZZTIME=5m for a longer run);
#               their seed corpora run as ordinary tests in make test

GO ?= go

.PHONY: deps minio build run test bench fuzz

deps:
	./scripts/deps.sh

minio:
	./scripts/minio.sh

build:
	$(GO) build -o bin/jitstream ./cmd/jitstream

run: deps build
	./bin/jitstream serve

# LIST_STORE_TEST_PKGS lists the packages whose tests take their store
# backend from JITSTREAM_TEST_STORE (they import internal/testutil/teststore
# or jitserver, which uses it): make test runs them on the local store with
# the rest, then again on S3. teststore's own tests run both backends every
# time.
LIST_STORE_TEST_PKGS = $(GO) list -e -f '{{.ImportPath}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}' ./... | \
	awk '/ github.com\/jitstream\/jitstream\/internal\/testutil\/(teststore|jitserver)( |$$)/ && $$1 !~ /\/teststore$$/ {print $$1}'

test: deps minio
	$(GO) vet ./...
	JITSTREAM_TEST_STORE=fs $(GO) test -count=1 -timeout 30m ./...
	@pkgs=$$($(LIST_STORE_TEST_PKGS)); \
	if [ -z "$$pkgs" ]; then echo "make test: no package takes its store from JITSTREAM_TEST_STORE"; exit 1; fi; \
	echo JITSTREAM_TEST_STORE=s3 $(GO) test -count=1 -timeout 30m $$pkgs; \
	JITSTREAM_TEST_STORE=s3 $(GO) test -count=1 -timeout 30m $$pkgs

bench: deps minio build
	$(GO) run ./cmd/jitbench

# Every fuzz target, as package:target. make fuzz fails if a FuzzXxx
# function of the repository is missing here.
FUZZ_TARGETS = \
	./internal/httpserve:FuzzParseRange \
	./internal/httpserve:FuzzETagList \
	./internal/outputs:FuzzParseSelection \
	./internal/outputs:FuzzParseTrick \
	./internal/streams:FuzzParseClip \
	./internal/streams:FuzzTrackByName \
	./internal/streams:FuzzSegmentNumber \
	./internal/build/smooth:FuzzParseFragmentPath \
	./internal/media:FuzzIndex \
	./internal/media:FuzzUnmarshal \
	./internal/media:FuzzFragmentSamples \
	./internal/library:FuzzValidName \
	./internal/playlist:FuzzParse \
	./internal/playlist:FuzzResolveMidRolls \
	./internal/build/ts:FuzzSample \
	./internal/build/ts:FuzzSampleEntry
FUZZTIME ?= 10s

# -fuzzminimizetime: the default (60 s) spends up to a minute minimizing
# each new interesting input, without executing new ones.
fuzz: deps
	@missing=$$(grep -rhoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' cmd internal | sed 's/^func //' | sort -u | \
		while read -r name; do case " $(FUZZ_TARGETS) " in *":$$name "*) ;; *) echo "$$name";; esac; done); \
	if [ -n "$$missing" ]; then echo "fuzz targets not in FUZZ_TARGETS:" $$missing; exit 1; fi
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=5s $$pkg; \
	done
