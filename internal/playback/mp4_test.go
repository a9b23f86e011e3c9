package playback_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/playlist"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// TestStitchedMP4 plays a session as one progressive MP4: ffmpeg reads it
// over HTTP from start to end, frame for frame the parts in order, held
// back at each ad's end until the ad has played; the file has an exact
// Content-Length, HEAD agrees, several ranges are served. Then a second
// viewer fetches it by ranges as a progressive player seeking would: the
// content after an unplayed pre-roll is refused (403), the pre-roll is
// served, its beacons follow its bytes, and the content after it waits for
// its release.
func TestStitchedMP4(t *testing.T) {
	e, m, beaconsFile := showServer(t)

	// The first viewer plays the file through with ffmpeg.
	s := startSession(t, e.URL, e.Token, "show", playlist.Viewer{Country: "US"})
	if s.MP4 != "/session/"+s.ID+"/video.mp4" {
		t.Fatalf("the session's MP4 is %q", s.MP4)
	}
	url := e.URL + s.MP4
	head, _ := httpt.Do(t, http.MethodHead, url, nil)
	size, err := strconv.ParseInt(head.Header.Get("Content-Length"), 10, 64)
	if head.StatusCode != http.StatusOK || err != nil || size <= 0 {
		t.Fatalf("HEAD: %d, Content-Length %q", head.StatusCode, head.Header.Get("Content-Length"))
	}
	for k, want := range map[string]string{"Content-Type": "video/mp4", "Cache-Control": "private, no-store", "Accept-Ranges": "bytes"} {
		if got := head.Header.Get(k); got != want {
			t.Errorf("HEAD: %s %q, want %q", k, got, want)
		}
	}
	t0 := time.Now()
	got := frames(t, url)
	want := showFrames(t, m)
	if !slices.Equal(got, want) {
		t.Fatalf("ffmpeg decoded %d frames from the session's MP4, want the %d of its parts in order (first difference at %d)",
			len(got), len(want), firstDiff(got, want))
	}
	// The content after the pre-roll and after the mid-roll waited for
	// each ad's 4 s less the 2 s of tolerance.
	if took := time.Since(t0); took < 2*(4*time.Second-2*time.Second) {
		t.Errorf("ffmpeg read the session's MP4 in %v: its two ads before content did not hold it back", took)
	}
	waitBeacons(t, beaconsFile, []string{"impression", "first_quartile", "midpoint", "third_quartile", "complete"})

	// Played: the whole file now comes at once, as HEAD said.
	resp, full := get(t, url)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") != strconv.FormatInt(size, 10) || int64(len(full)) != size {
		t.Fatalf("GET: %d, Content-Length %q, %d bytes received; HEAD said %d", resp.StatusCode, resp.Header.Get("Content-Length"), len(full), size)
	}
	if resp.Header.Get("ETag") == "" || resp.Header.Get("ETag") != head.Header.Get("ETag") {
		t.Errorf("ETag %q, HEAD's %q", resp.Header.Get("ETag"), head.Header.Get("ETag"))
	}
	// Several ranges: a multipart answer with the file's bytes.
	ranges := [][2]int64{{0, 99}, {size / 2, size/2 + 4999}, {size - 100, size - 1}}
	var specs []string
	for _, r := range ranges {
		specs = append(specs, fmt.Sprintf("%d-%d", r[0], r[1]))
	}
	resp, body := httpt.Get(t, url, "Range", "bytes="+strings.Join(specs, ","))
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("multiple ranges: %d %s", resp.StatusCode, body)
	}
	if n, _ := strconv.Atoi(resp.Header.Get("Content-Length")); n != len(body) {
		t.Errorf("multiple ranges: Content-Length %d, %d bytes received", n, len(body))
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("multiple ranges: Content-Type %q", resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for i, r := range ranges {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		pb, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if cr := p.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes %d-%d/%d", r[0], r[1], size) || !bytes.Equal(pb, full[r[0]:r[1]+1]) {
			t.Fatalf("part %d: Content-Range %q, %d bytes that are not the file's %v", i, cr, len(pb), r)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("more parts than ranges: %v", err)
	}

	// A progressive download by another viewer, a plain GET: the same
	// bytes, held back at the pre-roll's and the mid-roll's end.
	s3 := startSession(t, e.URL, e.Token, "show", playlist.Viewer{Country: "US"})
	t0 = time.Now()
	resp, body = get(t, e.URL+s3.MP4)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, full) {
		t.Fatalf("a plain GET of another session's MP4: %d, %d bytes, not those of the first", resp.StatusCode, len(body))
	}
	if took := time.Since(t0); took < 2*(4*time.Second-2*time.Second) {
		t.Errorf("a plain GET took %v: its two ads before content did not hold it back", took)
	}
	for _, slot := range []string{"pre", "mid@6", "post"} {
		waitSessionBeacons(t, beaconsFile, s3.ID, slot+" impression", slot+" complete")
	}

	// The bytes of each item, from the file's video packets: item k's
	// first video packet is at or after the item's first byte, and before
	// any byte of the next.
	path := filepath.Join(t.TempDir(), "video.mp4")
	if err := os.WriteFile(path, full, 0o644); err != nil {
		t.Fatal(err)
	}
	// Frames of the bumper, the pre-roll and the program up to the mid-roll.
	counts := []int{len(frames(t, m.files[m.bumper])), len(frames(t, m.files[m.pre])), 4 * 30}
	pos := videoPositions(t, path) // in decode order
	at := func(item, frame int) int64 {
		n := frame
		for _, c := range counts[:item] {
			n += c
		}
		return pos[n]
	}
	preStart, preMid, contentStart := at(1, 0), at(1, 60), at(2, 0)

	// A second viewer, by ranges.
	s2 := startSession(t, e.URL, e.Token, "show", playlist.Viewer{Country: "US"})
	url2 := e.URL + s2.MP4
	rangeOf := func(from, to int64) string { return fmt.Sprintf("bytes=%d-%d", from, to-1) }
	served := func(from, to int64, why string) {
		t.Helper()
		resp, body := httpt.Get(t, url2, "Range", rangeOf(from, to))
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, full[from:to]) {
			t.Fatalf("%s: bytes %d-%d: %d, %d bytes (want those of the file)", why, from, to-1, resp.StatusCode, len(body))
		}
	}
	// Some of the moov, then content before anything was played: the
	// response starts (the moov is always allowed) and is cut short where
	// the content begins.
	req, err := http.NewRequest(http.MethodGet, url2, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=0-99,%d-%d", at(2, 30), at(2, 60)-1))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || err == nil || n >= resp.ContentLength {
		t.Fatalf("moov and unplayed content: %d, %d of %d bytes (%v), want a 206 cut short", resp.StatusCode, n, resp.ContentLength, err)
	}
	// The moov and the bumper.
	served(0, preStart, "the bumper")
	// The content before the pre-roll was played: refused with a reason.
	resp, body = httpt.Get(t, url2, "Range", rangeOf(at(2, 30), size))
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("content after an unplayed pre-roll: %d, want 403", resp.StatusCode)
	}
	var jerr struct{ Error, Detail string }
	if err := json.Unmarshal(body, &jerr); err != nil || jerr.Error == "" || !strings.Contains(jerr.Detail, "has not been played") {
		t.Fatalf("403 body %q is not a JSON error with the reason", body)
	}
	if seen := sessionBeacons(t, beaconsFile, s2.ID); seen["pre complete"] != 0 {
		t.Fatalf("beacons %v before the pre-roll was sent", seen)
	}
	// Half the pre-roll: its first beacons, not its completion.
	t1 := time.Now()
	served(preStart, preMid, "the first half of the pre-roll")
	waitSessionBeacons(t, beaconsFile, s2.ID, "pre impression", "pre first_quartile")
	if seen := sessionBeacons(t, beaconsFile, s2.ID); seen["pre complete"] != 0 {
		t.Fatalf("beacons %v after half of the pre-roll was sent", seen)
	}
	// The rest of it, then the content: held back until the pre-roll's
	// duration less the tolerance has passed since its first byte.
	served(preMid, contentStart, "the second half of the pre-roll")
	served(contentStart, at(2, 60), "the content after the pre-roll")
	if waited := time.Since(t1); waited < 4*time.Second-2*time.Second {
		t.Fatalf("the content was served %v after the pre-roll's first byte, before its 4 s less 2 s of tolerance", waited)
	}
	waitSessionBeacons(t, beaconsFile, s2.ID, "pre midpoint", "pre third_quartile", "pre complete")
	for k, n := range sessionBeacons(t, beaconsFile, s2.ID) {
		if n != 1 {
			t.Errorf("beacon %s sent %d times", k, n)
		}
	}
}

// videoPositions returns the file offsets of the video packets of the MP4
// at path, in decode order.
func videoPositions(t *testing.T, path string) []int64 {
	t.Helper()
	out, _ := probe.Tool(t, "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pos", "-of", "csv=p=0", path)
	var pos []int64
	for _, line := range strings.Fields(out) {
		p, err := strconv.ParseInt(strings.Trim(line, ","), 10, 64)
		if err != nil {
			t.Fatalf("ffprobe packet position %q: %v", line, err)
		}
		pos = append(pos, p)
	}
	return pos
}

// sessionBeacons counts the beacons of session sid in the file by "slot
// event".
func sessionBeacons(t *testing.T, file, sid string) map[string]int {
	t.Helper()
	return countBeacons(t, file, func(bc playlist.Beacon) bool { return bc.Session == sid })
}

// waitSessionBeacons waits until the beacons of session sid include every
// one of want ("slot event").
func waitSessionBeacons(t *testing.T, file, sid string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen := sessionBeacons(t, file, sid)
		missing := false
		for _, w := range want {
			missing = missing || seen[w] == 0
		}
		if !missing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("beacons of session %s: %v, want %v", sid, seen, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStitchedMP4Paced: with a delivery controller, the stitched MP4 is
// served as every progressive file: a paced delivery session, logged.
func TestStitchedMP4Paced(t *testing.T) {
	d, err := delivery.New(delivery.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var logs httpt.SyncBuffer
	e := jitserver.New(t, jitserver.WithOptions(server.Options{Delivery: d,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}))
	m := ingestAll(t, e)
	putPlaylist(t, e.URL, e.Token, "show", adsPlaylist(m))
	s := startSession(t, e.URL, e.Token, "show", playlist.Viewer{})
	// The bumper's first bytes: allowed, and within the fast start.
	resp, body := httpt.Get(t, e.URL+s.MP4, "Range", "bytes=0-65535")
	if resp.StatusCode != http.StatusPartialContent || len(body) != 65536 {
		t.Fatalf("the first 64 KiB: %d, %d bytes", resp.StatusCode, len(body))
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), `msg="delivery session" user=`+jitserver.User+` path=`+s.MP4+` kind=progressive paced=true end=complete`) {
		if time.Now().After(deadline) {
			t.Fatalf("no paced delivery session of %s in the log:\n%s", s.MP4, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
