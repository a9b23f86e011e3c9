# jitstream build, test and benchmark entry points.
#
#   make deps   install system tools (ffmpeg, nginx, chromium, wrk, node,
#               redis-server) and the player libraries (npm ci in
#               web/players) if missing
#   make minio  build the MinIO server of the S3 tests once, into
#               ~/.cache/jitstream/bin (scripts/minio.sh)
#   make build  build bin/jitstream
#   make run    build and run the server (jitstream serve)
#   make test   go vet + all tests (media fixtures are cached in .cache/)
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

test: deps minio
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

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
	./internal/library:FuzzValidName \
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
