# jitstream build, test and benchmark entry points.
#
#   make deps   install system tools (ffmpeg, nginx, chromium, wrk, node) and
#               the player libraries (npm ci in web/players) if missing
#   make build  build bin/jitstream
#   make run    build and run the server (jitstream serve)
#   make test   go vet + all tests (media fixtures are cached in .cache/)
#   make bench  build and run the benchmark program cmd/jitbench
#   make fuzz   fuzz the MP4 indexer for 60 s

GO ?= go

.PHONY: deps build run test bench fuzz

deps:
	./scripts/deps.sh

build:
	$(GO) build -o bin/jitstream ./cmd/jitstream

run: deps build
	./bin/jitstream serve

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

bench: deps build
	$(GO) run ./cmd/jitbench

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzIndex -fuzztime=60s ./internal/media/
