package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	harness "github.com/jitstream/jitstream/internal/testutil/cluster"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// partSize is the multipart part size of the store in the tests of
// interrupted uploads (the S3 minimum), so that a chapter of a few MiB is
// stored in parts: an interrupted one leaves a multipart upload behind.
const partSize = 5 << 20

// settleTimeout bounds how long a node may take to clean up after an
// upload that failed.
const settleTimeout = 30 * time.Second

// slowUpload is a multipart upload of two chapters in progress: the
// first sent whole, the second only in part, the rest held back.
type slowUpload struct {
	pw     *io.PipeWriter
	mw     *multipart.Writer
	part   io.Writer // the second chapter's
	rest   io.Reader // what is left of it
	cancel context.CancelFunc
	done   chan struct{}
	resp   *http.Response
	err    error
}

// startSlowUpload starts an upload to node of first (a chapter named
// name) and of the first sent bytes of second, and returns once they are
// written to the connection.
func (e *env) startSlowUpload(t *testing.T, node *harness.Node, user, name, first, second string, sent int64) *slowUpload {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, node.URL()+"/api/v1/users/"+user+"/assets", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+e.tokens[user])
	u := &slowUpload{pw: pw, mw: mw, cancel: cancel, done: make(chan struct{})}
	t.Cleanup(func() { u.abort(); <-u.done })
	go func() {
		defer close(u.done)
		u.resp, u.err = client.Do(req)
		if u.err == nil {
			io.Copy(io.Discard, u.resp.Body)
			u.resp.Body.Close()
		}
		pr.CloseWithError(errors.New("request over"))
	}()
	open := func(path string) *os.File {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	send := func(field string, r io.Reader, n int64) io.Writer {
		w, err := mw.CreateFormFile("file", field)
		if err != nil {
			t.Fatalf("sending %s: %v", field, err)
		}
		if n < 0 {
			_, err = io.Copy(w, r)
		} else {
			_, err = io.CopyN(w, r, n)
		}
		if err != nil {
			t.Fatalf("sending %s: %v", field, err)
		}
		return w
	}
	send(name, open(first), -1)
	u.rest = open(second)
	u.part = send("chapter2.mp4", u.rest, sent)
	return u
}

// sendRest sends the rest of the body, and returns the error of the
// writes: the request failed when they fail.
func (u *slowUpload) sendRest() error {
	if _, err := io.Copy(u.part, u.rest); err != nil {
		return err
	}
	if err := u.mw.Close(); err != nil {
		return err
	}
	return u.pw.Close()
}

// errAborted ends the body of an upload that the client gives up.
var errAborted = errors.New("upload aborted by the client")

// abort ends the request: the client gives up, its body ends with an
// error.
func (u *slowUpload) abort() {
	u.cancel()
	u.pw.CloseWithError(errAborted)
}

// wait waits for the request to end and returns its error (nil with a
// response).
func (u *slowUpload) wait() error {
	<-u.done
	return u.err
}

// gcReport is what `jitstream gc --json` prints.
type gcReport struct {
	Orphans []string `json:"orphans"`
	Uploads []string `json:"uploads"`
	Young   int      `json:"young"`
}

// gc runs `jitstream gc --older-than 0s --json` (with --dry-run if dry).
func (e *env) gc(t *testing.T, dry bool) gcReport {
	t.Helper()
	args := []string{"gc", "--older-than", "0s", "--json"}
	if dry {
		args = append(args, "--dry-run")
	}
	out := e.MustCLI(t, args...)
	var rep gcReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("gc --json: %v\n%s", err, out)
	}
	return rep
}

// lsFiles returns the files `jitstream ls --json` lists for user.
func (e *env) lsFiles(t *testing.T, user string) []string {
	t.Helper()
	out := e.MustCLI(t, "ls", "--user", user, "--json")
	var ls struct {
		Files []struct{ Name string } `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}
	names := []string{}
	for _, f := range ls.Files {
		names = append(names, f.Name)
	}
	return names
}

// waitStored waits until the store holds an object of the first chapter
// and a multipart upload of the second under user's assets: the upload is
// in the middle of its second chapter.
func (e *env) waitStored(t *testing.T, user string) {
	t.Helper()
	waitFor(t, settleTimeout, "the first chapter stored and the second one's upload started", func() error {
		objs, ups := e.assetKeys(t, user), e.IncompleteUploads(t)
		if len(objs) == 0 || len(ups) == 0 {
			return fmt.Errorf("objects %q, multipart uploads %q", objs, ups)
		}
		return nil
	})
}

// TestKillMidIngest kills (SIGKILL) a node in the middle of an upload of
// two chapters, when the first is stored and the second is being stored
// in parts: no node lists a partial asset, and `jitstream gc` finds and
// removes what the ingest left, the multipart upload included; the node
// starts again and ingests the same file.
func TestKillMidIngest(t *testing.T) {
	t.Parallel()
	e := start(t, harness.Options{StoreParams: url.Values{"part_size": {strconv.Itoa(partSize)}}})
	victim, other := e.Nodes[0], e.Nodes[1]
	u := e.startSlowUpload(t, victim, alice, "killed.mp4", fixtures.H264AAC(t), fixtures.Long(t, 1), partSize+1<<20)
	e.waitStored(t, alice)
	left := e.assetKeys(t, alice)

	victim.Kill()
	// The client goes on sending; its writes fail on the dead connection.
	if err := u.sendRest(); err == nil {
		t.Error("sending the rest of the upload to the killed node succeeded")
	}
	if err := u.wait(); err == nil {
		t.Errorf("the upload to the killed node answered %s", u.resp.Status)
	}
	if ids := e.list(t, other, alice); len(ids) != 0 {
		t.Errorf("node %d lists %q after the kill, want nothing", other.Index, ids)
	}
	if files := e.lsFiles(t, alice); len(files) != 0 {
		t.Errorf("jitstream ls lists %q after the kill, want nothing", files)
	}

	dry := e.gc(t, true)
	if !slices.Equal(dry.Orphans, left) {
		t.Errorf("gc --dry-run: orphans %q, want what the ingest stored: %q", dry.Orphans, left)
	}
	if len(dry.Uploads) != 1 || !strings.Contains(dry.Uploads[0], "/src/02-") {
		t.Errorf("gc --dry-run: multipart uploads %q, want the second chapter's", dry.Uploads)
	}
	if got := e.assetKeys(t, alice); !slices.Equal(got, left) {
		t.Errorf("gc --dry-run removed objects: %q left of %q", got, left)
	}
	rep := e.gc(t, false)
	if !slices.Equal(rep.Orphans, left) || len(rep.Uploads) != 1 {
		t.Errorf("gc: removed %q and uploads %q, want %q and one upload", rep.Orphans, rep.Uploads, left)
	}
	if got := e.assetKeys(t, alice); len(got) != 0 {
		t.Errorf("objects after gc: %q", got)
	}
	if ups := e.IncompleteUploads(t); len(ups) != 0 {
		t.Errorf("multipart uploads after gc: %q", ups)
	}
	if rep := e.gc(t, true); len(rep.Orphans)+len(rep.Uploads) != 0 {
		t.Errorf("a second gc finds %+v", rep)
	}

	victim.Start(t)
	a := e.upload(t, victim, alice, fixtures.H264AAC(t))
	if ids := e.list(t, other, alice); !slices.Equal(ids, []string{a.ID}) {
		t.Errorf("after the restart, node %d lists %q, want [%s]", other.Index, ids, a.ID)
	}
}

// TestClientGoneMidUpload: a client that goes away in the middle of an
// upload of two chapters (the first stored, the second being stored in
// parts) leaves nothing: no asset, no object, no multipart upload, and
// the asset id is free again.
func TestClientGoneMidUpload(t *testing.T) {
	t.Parallel()
	e := start(t, harness.Options{StoreParams: url.Values{"part_size": {strconv.Itoa(partSize)}}})
	node := e.Nodes[0]
	u := e.startSlowUpload(t, node, alice, "gone.mp4", fixtures.H264AAC(t), fixtures.Long(t, 1), partSize+1<<20)
	e.waitStored(t, alice)

	u.abort() // the client goes away
	if err := u.wait(); err == nil {
		t.Errorf("the cancelled upload answered %s", u.resp.Status)
	}
	took := waitFor(t, settleTimeout, "the node removing what the upload stored", func() error {
		objs, ups := e.assetKeys(t, alice), e.IncompleteUploads(t)
		if len(objs)+len(ups) != 0 {
			return fmt.Errorf("objects %q, multipart uploads %q", objs, ups)
		}
		return nil
	})
	t.Logf("the node removed what the upload stored %v after the client went away", took.Round(time.Millisecond))
	for _, n := range e.Nodes {
		if ids := e.list(t, n, alice); len(ids) != 0 {
			t.Errorf("node %d lists %q", n.Index, ids)
		}
	}
	if rep := e.gc(t, true); len(rep.Orphans)+len(rep.Uploads) != 0 {
		t.Errorf("gc finds %+v after the client went away", rep)
	}
	// The id was released: the same name gets it.
	dir := t.TempDir()
	copyFile(t, fixtures.H264AAC(t), dir+"/gone.mp4")
	if a := e.upload(t, e.Nodes[1], alice, dir+"/gone.mp4"); a.ID != "gone" {
		t.Errorf("a new upload of gone.mp4 got id %q, want gone (free again)", a.ID)
	}
}
