// Package cluster runs a scaled-out jitstream for end-to-end tests, with
// real processes: a MinIO server (the S3 store), a redis-server (the
// shared state) and N `jitstream serve` nodes over both, plus the
// jitstream command line on the same store and state.
//
// The jitstream binary is built once per test binary (go build into a
// temporary directory): the package's TestMain must call Main, which
// removes it at the end:
//
//	func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }
//
// Each cluster has MinIO and Redis servers of its own (internal/testutil/
// minio and redis: fault tests stop and restart them). Each node runs
//
//	jitstream serve --addr 127.0.0.1:PORT --store s3://jitstream?endpoint=...&create=1
//	    --state redis://127.0.0.1:PORT/0 --sample=false [Options.Serve...]
//
// with the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, in
// a process group of its own, with TMPDIR (its spool, read cache and
// resumable uploads) in a directory of its own and its output in a log
// file whose end is shown when the test fails. Starting waits until
// /healthz answers 200, within a deadline; nothing waits a fixed time.
// Nodes can be killed (SIGKILL), stopped (SIGTERM) and started again on
// the same address. Everything is stopped when the test ends (and, on
// Linux, killed by the kernel if the test binary dies first).
//
// Missing tools fail the test, they never skip it: MinIO is built by
// `make minio`, redis-server, nginx and ffmpeg are installed by `make
// deps`; `go` must be on PATH to build jitstream.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/minio"
	"github.com/jitstream/jitstream/internal/testutil/redis"
	miniogo "github.com/minio/minio-go/v7"
)

// Bucket is the bucket of every cluster's store (each cluster has a MinIO
// server of its own). The nodes create it (create=1).
const Bucket = "jitstream"

// cliTimeout bounds one run of the command line.
const cliTimeout = 2 * time.Minute

var build struct {
	mu     sync.Mutex
	inMain bool
	dir    string
	bin    string
	err    error
}

// Main runs the tests of m, then removes the jitstream binary that Binary
// built, and returns m.Run's exit code. Call it from TestMain.
func Main(m *testing.M) int {
	build.mu.Lock()
	build.inMain = true
	build.mu.Unlock()
	code := m.Run()
	build.mu.Lock()
	defer build.mu.Unlock()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	build.dir, build.bin, build.err, build.inMain = "", "", nil, false
	return code
}

// Binary returns the path of the jitstream binary, building it on the
// first call of the test binary (go build ./cmd/jitstream, from the
// module's root). The package's TestMain must call Main. Failures fail tb.
func Binary(tb testing.TB) string {
	tb.Helper()
	build.mu.Lock()
	defer build.mu.Unlock()
	if !build.inMain {
		tb.Fatal("cluster: Binary needs the package's TestMain to call cluster.Main, which removes the binary: func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }")
	}
	if build.bin == "" && build.err == nil {
		build.bin, build.dir, build.err = buildBinary()
	}
	if build.err != nil {
		tb.Fatalf("cluster: %v", build.err)
	}
	return build.bin
}

// buildBinary builds cmd/jitstream into a new temporary directory.
func buildBinary() (bin, dir string, err error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", "", fmt.Errorf("building jitstream: go not found on PATH: %w", err)
	}
	root, err := fixtures.RepoRoot()
	if err != nil {
		return "", "", fmt.Errorf("building jitstream: %w", err)
	}
	dir, err = os.MkdirTemp("", "jitstream-cluster-bin-")
	if err != nil {
		return "", "", fmt.Errorf("building jitstream: %w", err)
	}
	bin = filepath.Join(dir, "jitstream")
	cmd := exec.Command(gobin, "build", "-o", bin, "./cmd/jitstream")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("go build ./cmd/jitstream in %s: %w\n%s", root, err, out)
	}
	return bin, dir, nil
}

// Options configure a cluster.
type Options struct {
	// Nodes is the number of jitstream nodes; default 2.
	Nodes int
	// Serve are more flags of every node's `jitstream serve`.
	Serve []string
	// StoreParams are more query parameters of the s3:// store URL, for
	// the nodes and the command line (for example max_retries).
	StoreParams url.Values
}

// Cluster is a running MinIO, Redis and jitstream nodes.
type Cluster struct {
	// MinIO is the store's server, Redis the shared state's: tests may
	// Stop and Restart them.
	MinIO *minio.Server
	Redis *redis.Server
	// Nodes are the jitstream nodes, in the order they were started.
	Nodes []*Node

	tb       testing.TB
	bin      string
	dir      string
	storeURL string
}

// Start starts MinIO, Redis and o.Nodes jitstream nodes (in parallel),
// and returns once every node answers /healthz with 200. Everything is
// stopped when the test ends; if it failed, the end of every node's log is
// logged first. Failures fail tb.
func Start(tb testing.TB, o Options) *Cluster {
	tb.Helper()
	if o.Nodes <= 0 {
		o.Nodes = 2
	}
	bin := Binary(tb)
	dir := tb.TempDir() // removed after everything below has stopped
	c := &Cluster{tb: tb, bin: bin, dir: dir}
	c.MinIO = minio.Start(tb)
	c.Redis = redis.Start(tb)
	q := url.Values{"endpoint": {c.MinIO.Endpoint()}, "create": {"1"}, "region": {minio.Region}}
	for k, v := range o.StoreParams {
		q[k] = v
	}
	c.storeURL = "s3://" + Bucket + "?" + q.Encode()

	for i := range o.Nodes {
		n, err := c.newNode(i, o.Serve)
		if err != nil {
			tb.Fatalf("cluster: %v", err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	tb.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range c.Nodes {
			wg.Go(n.stop)
		}
		wg.Wait()
	})
	tb.Cleanup(func() { // runs first: logs while the nodes still run
		if tb.Failed() {
			for _, n := range c.Nodes {
				tb.Logf("cluster: end of the log of node %d (%s):\n%s", n.Index, n.LogPath(), n.LogTail())
			}
		}
	})
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Go(func() { errs[i] = n.launch(true) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatalf("cluster: %v", err)
	}
	return c
}

// StoreURL is the --store setting of the nodes and the command line.
func (c *Cluster) StoreURL() string { return c.storeURL }

// StateURL is the --state setting of the nodes and the command line.
func (c *Cluster) StateURL() string { return c.Redis.URL() }

// Addrs returns the nodes' host:port addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// env returns the environment of a jitstream process with TMPDIR tmp: the
// test's, without settings that would change what jitstream does, with
// the store's credentials.
func (c *Cluster) env(tmp string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") || strings.HasPrefix(name, "JITSTREAM_") ||
			strings.HasPrefix(name, "MINIO_") || name == "TMPDIR" {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"AWS_ACCESS_KEY_ID="+c.MinIO.AccessKey(),
		"AWS_SECRET_ACCESS_KEY="+c.MinIO.SecretKey(),
		"TMPDIR="+tmp,
	)
}

// withBackends returns args, a command line of jitstream (its first
// element the command), with --store and --state after the command.
func (c *Cluster) withBackends(args []string) []string {
	out := []string{args[0], "--store", c.storeURL, "--state", c.StateURL()}
	return append(out, args[1:]...)
}

// CLI runs the jitstream command line (args[0] is the command: users,
// tokens, links, ingest, ls, rm, gc...) on the cluster's store and state,
// and returns its standard output and error. err is set when it could not
// run or exited with a non-zero status (an *exec.ExitError).
func (c *Cluster) CLI(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	if len(args) == 0 {
		return "", "", errors.New("cluster: CLI without a command")
	}
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	tmp := filepath.Join(c.dir, "cli")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", "", fmt.Errorf("cluster: %w", err)
	}
	cmd := exec.CommandContext(ctx, c.bin, c.withBackends(args)...)
	cmd.Env = c.env(tmp)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("cluster: jitstream %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), err
}

// MustCLI runs the command line like CLI and returns its standard output;
// a failure fails tb, with the standard error.
func (c *Cluster) MustCLI(tb testing.TB, args ...string) string {
	tb.Helper()
	stdout, stderr, err := c.CLI(tb.Context(), args...)
	if err != nil {
		tb.Fatalf("%v\nstderr: %s", err, stderr)
	}
	return stdout
}

// Object is one object of the store's bucket.
type Object struct {
	Key  string
	Size int64
}

// Objects lists the objects of the bucket whose keys start with prefix,
// sorted by key. Failures fail tb.
func (c *Cluster) Objects(tb testing.TB, prefix string) []Object {
	tb.Helper()
	var out []Object
	for oi := range c.MinIO.Client(tb).ListObjects(tb.Context(), Bucket, miniogo.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			tb.Fatalf("cluster: listing the bucket: %v", oi.Err)
		}
		out = append(out, Object{Key: oi.Key, Size: oi.Size})
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// IncompleteUploads returns the object names of the bucket's multipart
// uploads that were neither completed nor aborted. Failures fail tb.
func (c *Cluster) IncompleteUploads(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for u := range c.MinIO.Client(tb).ListIncompleteUploads(tb.Context(), Bucket, "", true) {
		if u.Err != nil {
			tb.Fatalf("cluster: listing incomplete uploads: %v", u.Err)
		}
		out = append(out, u.Key)
	}
	slices.Sort(out)
	return out
}
