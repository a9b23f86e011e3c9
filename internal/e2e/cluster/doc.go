// Package cluster holds the end-to-end tests of a scaled-out jitstream,
// with real processes (internal/testutil/cluster): two or more `jitstream
// serve` nodes sharing a MinIO store and a Redis state, behind nginx as a
// caching reverse proxy (internal/testutil/nginx), played with ffmpeg.
//
//   - proxy_test.go: what an HTTP cache makes of the origin's answers: a
//     second playback of a signed link comes from the cache, responses to
//     token requests are never kept nor given to another viewer, and two
//     links share cache entries exactly when the design says they do.
//   - outage_test.go: the store (MinIO) or the shared state (Redis) going
//     away under the nodes, and coming back.
//   - ingest_test.go: a node killed in the middle of an ingest, a client
//     that goes away in the middle of an upload, and what jitstream gc
//     makes of what they leave.
//   - race_test.go: ingests on one node racing deletes on another.
//
// The package has tests only (and this file).
package cluster
