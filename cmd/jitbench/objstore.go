package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/minio"
)

// Object storage: the same recording ingested into a MinIO-backed store
// (S3 behind the node's local read cache) and served by a node of its own,
// against the node on the local directory store.
//
//   - Segment requests per second with a warm local cache (every segment
//     measured built once on both nodes), in alternating rounds like the
//     other load runs; the reference column is the local-store node.
//   - Time to the first segment of an asset, as a player asks for it
//     (master playlist, media playlist, then a segment), on a running node:
//     for an asset the node has not cached (its metadata, index and media
//     bytes come from S3) against one whose bytes are in the node's read
//     cache (read once before) but whose segments were never built.
//     Several segment positions, median; and, for context, the same
//     sequence on a node process just started (nothing loaded at all).

// objStoreRes holds the figures of the object storage section.
type objStoreRes struct {
	IngestSec      float64   `json:"ingest_seconds"`
	FirstUncached  []float64 `json:"first_segment_uncached_ms"`
	FirstCached    []float64 `json:"first_segment_cached_ms"`
	FirstNewNodeMs []float64 `json:"first_segment_new_node_ms"`
}

// objStore runs the section. fs is the local-store node (default settings)
// serving the asset user/id, fmp4 the segment paths of its load run.
func objStore(ctx context.Context, res *results, js *jitstream, fixture, user, id string, fmp4 *streamRes,
	loadVs func(us, them *server, name, unit string, target float64, fn func(base string, round int) (loadResult, error), figure func(loadResult) float64),
	fs *server, conns int, d time.Duration, seed uint64) error {
	dir := filepath.Join(filepath.Dir(js.store), "minio")
	srv, stop, err := minio.StartProcess(dir)
	if err != nil {
		return fmt.Errorf("minio: %w (run `make minio`)", err)
	}
	defer stop()
	os.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey())
	os.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey())
	s3js := &jitstream{bin: js.bin, store: "s3://jitbench?endpoint=" + srv.Endpoint() + "&create=1", logs: js.logs, flags: js.flags}
	out := &objStoreRes{}
	res.ObjStore = out

	// Two assets: one read through the node's cache before the
	// measurement, one not.
	t0 := time.Now()
	if got, err := s3js.ingest(ctx, user, fixture); err != nil {
		return err
	} else if got != id {
		return fmt.Errorf("the S3 store gave the asset id %q, the local one %q", got, id)
	}
	out.IngestSec = time.Since(t0).Seconds()
	id2, err := s3js.ingest(ctx, user, fixture)
	if err != nil {
		return err
	}
	fmt.Printf("object store MinIO at %s; ingest into it %.2f s\n", srv.Endpoint(), out.IngestSec)

	c := newClient()
	defer closeIdle(c)
	node, err := s3js.start(ctx, c)
	if err != nil {
		return err
	}
	defer node.stop()

	// Time to the first segment, as a player: the segments are spread
	// over the recording, far apart (their media bytes share no block).
	positions := []int{37, 389, 731}
	firstSegment := func(base, asset string, n int) (time.Duration, error) {
		prefix := base + "/streams/" + user + "/" + asset + "/hls/"
		t0 := time.Now()
		for _, p := range []string{"master.m3u8", "v1/index.m3u8", fmt.Sprintf("v1/%d.m4s", n)} {
			if _, err := getBody(ctx, c, prefix+p); err != nil {
				return 0, err
			}
		}
		return time.Since(t0), nil
	}
	// The cached asset: its bytes go through the read cache (a whole
	// download of the consolidated file), its index is loaded.
	if _, err := getBody(ctx, c, node.base+"/files/"+user+"/"+id+".mp4?pace=0"); err != nil {
		return fmt.Errorf("warming the read cache: %w", err)
	}
	// One uncached asset per position (its index is loaded by its first
	// playlist request, so each position needs an asset of its own).
	var cached, uncached []time.Duration
	for i, n := range positions {
		fresh := id2
		if i > 0 {
			if fresh, err = s3js.ingest(ctx, user, fixture); err != nil {
				return err
			}
		}
		order := []string{id, fresh}
		if i%2 == 1 {
			order = []string{fresh, id}
		}
		for _, asset := range order {
			d, err := firstSegment(node.base, asset, n)
			if err != nil {
				return err
			}
			if asset == id {
				cached = append(cached, d)
			} else {
				uncached = append(uncached, d)
			}
		}
	}
	// For context: a node process just started.
	var fresh []time.Duration
	for _, n := range positions[:3] {
		c2 := newClient()
		s, err := s3js.start(ctx, c2)
		if err != nil {
			return err
		}
		d, err := firstSegment(s.base, id, n)
		s.stop()
		closeIdle(c2)
		if err != nil {
			return err
		}
		fresh = append(fresh, d)
	}
	for _, x := range []struct {
		ds  []time.Duration
		out *[]float64
	}{{cached, &out.FirstCached}, {uncached, &out.FirstUncached}, {fresh, &out.FirstNewNodeMs}} {
		for _, d := range x.ds {
			*x.out = append(*x.out, ms(d))
		}
	}
	mu, mc := median(uncached), median(cached)
	res.add(row{Name: fmt.Sprintf("first segment, asset not cached on the node vs cached, median of %d", len(positions)), Unit: "ms",
		Ours: ms(mu), Target: "<= 3x cached", Pass: ptr(float64(mu) <= 3*float64(mc)), Ratio: ptr(float64(mu) / float64(mc)), Nginx: ptr(ms(mc))})
	res.add(row{Name: "first segment on a node just started (S3), median of 3", Unit: "ms", Ours: ms(median(fresh))})

	// Segment requests per second, warm: every path built once on both.
	for _, s := range []*server{node, fs} {
		for range 2 {
			for _, p := range fmp4.Paths {
				if _, err := getBody(ctx, c, s.base+p); err != nil {
					return fmt.Errorf("warm-up %s: %w", s.name, err)
				}
			}
		}
	}
	node.name = "jitstream-s3"
	loadVs(node, fs, fmt.Sprintf("fMP4 segment, S3 store with a warm cache, %d clients (reference: the local store)", conns), "req/s", 0.8,
		func(b string, r int) (loadResult, error) {
			return goStreamRequests(ctx, b, fmp4, conns, d, seed+uint64(r))
		}, loadResult.rps)
	return nil
}
