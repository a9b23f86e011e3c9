package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Adaptive streaming: jitstream builds playlists and segments at request
// time (and keeps them in memory); nginx serves the same bytes, downloaded
// from jitstream once, as static files.

// streamRes is one kind of stream resource measured: a set of paths below
// /streams/{user}/{id}/ (the same for both servers) and their sizes.
type streamRes struct {
	Key    string           `json:"kind"` // "fmp4", "ts", "playlist"
	Label  string           `json:"label"`
	Paths  []string         `json:"paths"`
	Sizes  map[string]int64 `json:"bytes"`
	target float64

	// First requests (to the last byte): from new server processes, and
	// on the running servers (each path once).
	coldOurs, coldNginx, firstOurs, firstNginx []time.Duration

	ColdMs       []float64 `json:"cold_new_server_ms"`
	ColdNginxMs  []float64 `json:"nginx_cold_new_server_ms"`
	FirstMs      []float64 `json:"first_request_running_ms"`
	FirstNginxMs []float64 `json:"nginx_first_request_running_ms"`
}

// fill sets the JSON figures from the durations.
func (r *streamRes) fill() {
	conv := func(ds []time.Duration) []float64 {
		out := make([]float64, len(ds))
		for i, d := range ds {
			out[i] = ms(d)
		}
		return out
	}
	r.ColdMs, r.ColdNginxMs = conv(r.coldOurs), conv(r.coldNginx)
	r.FirstMs, r.FirstNginxMs = conv(r.firstOurs), conv(r.firstNginx)
}

// segmentSample is how many segments of each format the load runs cycle
// through, spread over the recording.
const segmentSample = 8

// discoverStreams reads the HLS master and media playlists (from base, a
// jitstream server that is not measured afterwards) and picks the
// resources: segmentSample fMP4 segments of the video variant, as many TS
// segments, and the video variant's media playlist.
func discoverStreams(ctx context.Context, c *http.Client, base, user, id string) ([]*streamRes, error) {
	prefix := "/streams/" + user + "/" + id + "/"
	master, err := getBody(ctx, c, base+prefix+"hls/master.m3u8")
	if err != nil {
		return nil, err
	}
	variant := ""
	for _, l := range playlistURIs(master) {
		variant = l // the first variant stream (video; the audio rendition is in EXT-X-MEDIA)
		break
	}
	if variant == "" {
		return nil, fmt.Errorf("hls/master.m3u8 names no variant stream:\n%s", master)
	}
	media := "hls/" + variant // e.g. hls/v1/index.m3u8
	dir := media[:strings.LastIndexByte(media, '/')+1]
	pick := func(playlist, dir, ext string) ([]string, error) {
		body, err := getBody(ctx, c, base+prefix+playlist)
		if err != nil {
			return nil, err
		}
		var segs []string
		for _, u := range playlistURIs(body) {
			if strings.HasSuffix(u, ext) {
				segs = append(segs, u)
			}
		}
		if len(segs) < segmentSample {
			return nil, fmt.Errorf("%s lists %d %s segments, want at least %d", playlist, len(segs), ext, segmentSample)
		}
		var out []string
		for i := range segmentSample {
			// Spread over the recording, away from the ends.
			out = append(out, prefix+dir+segs[(2*i+1)*len(segs)/(2*segmentSample)])
		}
		return out, nil
	}
	fm, err := pick(media, dir, ".m4s")
	if err != nil {
		return nil, err
	}
	ts, err := pick("hls/ts/index.m3u8", "hls/ts/", ".ts")
	if err != nil {
		return nil, err
	}
	return []*streamRes{
		{Key: "fmp4", Label: "fMP4 segment", target: 0.9, Paths: fm},
		{Key: "ts", Label: "MPEG-TS segment", target: 0.75, Paths: ts},
		{Key: "playlist", Label: "media playlist", target: 0.8, Paths: []string{prefix + media}},
	}, nil
}

// playlistURIs returns the URI lines of an M3U8 playlist.
func playlistURIs(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// getBody GETs url, wants 200, and returns the body.
func getBody(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
		return nil, fmt.Errorf("GET %s: %d bytes, Content-Length %d", url, len(b), resp.ContentLength)
	}
	return b, nil
}

// fetchTime GETs url and reads the whole body: it returns the time from
// sending the request to the last byte, and the body.
func fetchTime(ctx context.Context, c *http.Client, url string) (time.Duration, []byte, error) {
	t0 := time.Now()
	b, err := getBody(ctx, c, url)
	return time.Since(t0), b, err
}

// goStreamRequests runs conns clients for d, each GETting paths of res
// chosen at random (seeded: the same sequence for both servers) and
// checking the status and length.
func goStreamRequests(ctx context.Context, base string, res *streamRes, conns int, d time.Duration, seed uint64) (loadResult, error) {
	return goLoad(ctx, base+res.Paths[0], conns, d, seed, func(req *http.Request, rnd *rand.Rand) {
		if len(res.Paths) > 1 {
			req.URL.Path = res.Paths[rnd.IntN(len(res.Paths))]
		}
	}, func(resp *http.Response, n int64) error {
		p := resp.Request.URL.Path
		if resp.StatusCode != http.StatusOK || n != res.Sizes[p] {
			return fmt.Errorf("GET %s: %s, %d bytes, want 200 and %d", p, resp.Status, n, res.Sizes[p])
		}
		return nil
	})
}

// saveStatic writes body under root at the URL path p, for nginx.
func saveStatic(root, p string, body []byte) error {
	file := filepath.Join(root, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, body, 0o644)
}
