#!/usr/bin/env bash
# Builds the MinIO server that the S3 tests and benchmarks run (a real
# S3-compatible object store), once: `go install` of a pinned version into
# a cache outside the repository, $JITSTREAM_CACHE/bin/minio (default
# ~/.cache/jitstream/bin/minio). Idempotent: when that binary is there and
# of this version it only checks. The build takes about 3 minutes on 2 cores.
#
# Prints nothing else on success but one line; internal/testutil/minio
# finds the binary in the same place (or at $JITSTREAM_MINIO).
set -euo pipefail

VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
CACHE="${JITSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jitstream}"
BIN="$CACHE/bin/minio"
STAMP="$BIN.version"

if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null || true)" = "$VERSION" ]; then
  echo "deps: minio present ($BIN)"
  exit 0
fi

mkdir -p "$CACHE/bin"
exec 9>"$CACHE/bin/.minio.lock"
flock 9 # another build in progress: wait for it
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null || true)" = "$VERSION" ]; then
  echo "deps: minio present ($BIN)"
  exit 0
fi
echo "deps: building minio $VERSION into $BIN (about 3 minutes, once)"
tmp="$(mktemp -d "$CACHE/bin/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && GOBIN="$tmp" GOFLAGS=-mod=mod go install "github.com/minio/minio@$VERSION")
mv "$tmp/minio" "$BIN"
echo "$VERSION" >"$STAMP"
echo "deps: minio built"
