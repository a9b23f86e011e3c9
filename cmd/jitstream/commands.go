package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/live"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/playlist"
	"github.com/jitstream/jitstream/internal/sample"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/spool"
	"github.com/jitstream/jitstream/internal/store/readcache"
	"github.com/jitstream/jitstream/internal/transcode"
	"github.com/jitstream/jitstream/internal/tusupload"
)

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return errUsage
	}
	return nil
}

func (c *common) open() (*library.Library, *outputs.Outputs, error) {
	lib, _, _, err := c.openLibrary(context.Background())
	if err != nil {
		return nil, nil, err
	}
	return lib, outputs.New(lib, 0), nil
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("serve", stderr, &c)
	def := os.Getenv("JITSTREAM_ADDR")
	if def == "" {
		def = "127.0.0.1:8080"
	}
	addr := fs.String("addr", def, "listen address (env JITSTREAM_ADDR)")
	withSample := fs.Bool("sample", true, "ingest a generated sample recording for user \"demo\" when the store has no users")
	verbose := fs.Bool("v", false, "log every request")
	debug := fs.Bool("debug", false, "serve /debug/heap and /debug/pprof/")
	dc := delivery.DefaultConfig()
	fs.DurationVar(&dc.Burst, "burst", dc.Burst, "fast start: media sent at full speed at the start of each progressive response")
	fs.Float64Var(&dc.Factor, "pace-factor", dc.Factor, "after the burst, send at the content's bit rate times this (0: no pacing)")
	fs.BoolVar(&dc.PaceSegments, "pace-segments", dc.PaceSegments, "pace the segments of adaptive streams too")
	fs.Func("max-egress", "bandwidth budget of the server, e.g. 1Gbit, 500Mbit, 100MB/s (default 0: unlimited)", func(v string) error {
		r, err := delivery.ParseRate(v)
		dc.MaxEgress = r
		return err
	})
	uploads := fs.String("uploads", "", "directory of the partial resumable (tus) uploads (default: STORE/.tmp-uploads, or $TMPDIR/jitstream-uploads for an s3:// store)")
	uploadExpiry := fs.Duration("upload-expiry", tusupload.DefaultExpiry, "delete a resumable upload that received no byte for this long")
	maxUpload := fs.Int64("max-upload", 0, "largest resumable upload, in bytes (0: no limit)")
	liveIdle := fs.Duration("live-idle", live.DefaultIdleTimeout, "archive a live stream that received nothing for this long")
	liveDVR := fs.Duration("live-dvr", live.DefaultDVR, "sliding window of live manifests requested without ?dvr=")
	spoolDir := fs.String("spool-dir", os.TempDir(), "directory of the built segments kept, and of the disk read cache of an s3:// store, as unlinked temporary files")
	cacheMem := sizeFlag(fs, "cache-mem", readcache.DefaultMemBytes, "memory read cache of an s3:// store (originals and indexes), e.g. 64MiB")
	cacheDisk := sizeFlag(fs, "cache-disk", readcache.DefaultDiskBytes, "disk read cache of an s3:// store, in --spool-dir, e.g. 1GiB")
	authOn := fs.Bool("auth", true, "ask for a user's token (or a signed link) on every user's route; false serves everything to everyone")
	ladderFlag := fs.String("ladder", "default", `transcoded renditions offered beside each recording, e.g. "1080p=5000k,720p=3000k,480p=1200k,360p=700k" ("default": that ladder; "none": no transcoding)`)
	transcodeJobs := fs.Int("transcode-jobs", runtime.NumCPU(), "ffmpeg processes that transcode segments at once")
	transcodeCache := sizeFlag(fs, "transcode-cache", transcode.DefaultCacheBytes, "store space for transcoded segments, least recently used evicted first, e.g. 10GiB")
	beaconsFile := fs.String("beacons", "", "append the ad beacons of playlist sessions to this file, as JSON lines")
	beaconsHook := fs.String("beacons-webhook", "", "also POST each ad beacon, as JSON, to this URL")
	if err := parse(fs, args); err != nil {
		return err
	}
	dl, err := delivery.New(dc)
	if err != nil {
		fmt.Fprintln(stderr, "jitstream serve:", err)
		return errUsage
	}
	var ladder []transcode.Rung
	switch *ladderFlag {
	case "none", "default":
	default:
		if ladder, err = transcode.ParseLadder(*ladderFlag); err != nil {
			fmt.Fprintln(stderr, "jitstream serve: --ladder:", err)
			return errUsage
		}
	}
	if *transcodeJobs < 1 {
		fmt.Fprintln(stderr, "jitstream serve: --transcode-jobs: want at least 1")
		return errUsage
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logHandler := slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	log := slog.New(auth.NewRedactingHandler(logHandler)) // no token nor link signature is logged
	c.log, c.cacheMem, c.cacheDisk, c.cacheDir = log, *cacheMem, *cacheDisk, *spoolDir
	lib, st, storeDesc, err := c.openLibrary(ctx)
	if err != nil {
		return err
	}
	sampleMade := false
	if *withSample {
		if ok, err := sample.Ensure(ctx, lib); err != nil {
			log.Warn("no sample recording", "err", err)
		} else if ok {
			sampleMade = true
			log.Info("ingested a sample recording", "user", sample.User)
		}
	}
	au, sampleToken, err := serveAuth(ctx, st, c.shared, *authOn, sampleMade)
	if err != nil {
		return err
	}
	if *uploads == "" {
		*uploads = c.uploadsDir(st)
	}
	sp, err := spool.New(*spoolDir)
	if err != nil {
		log.Warn("built segments are kept in memory", "err", err)
		sp = nil
	}
	var beacons *playlist.Beacons
	if *beaconsFile != "" || *beaconsHook != "" {
		if beacons, err = playlist.NewBeacons(playlist.BeaconOptions{File: *beaconsFile, Webhook: *beaconsHook, Logger: log}); err != nil {
			fmt.Fprintln(stderr, "jitstream serve:", err)
			return errUsage
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			beacons.Close(cctx)
		}()
	}
	out := outputs.New(lib, 0)
	up, err := tusupload.New(out, tusupload.Options{Dir: *uploads, Expiry: *uploadExpiry, MaxSize: *maxUpload, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "jitstream serve:", err)
		return errUsage
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	sweepCtx, stopSweep := context.WithCancel(ctx)
	var sweep sync.WaitGroup
	sweep.Go(func() { up.Run(sweepCtx) }) // expires abandoned uploads
	var tc *transcode.Transcoder
	if *ladderFlag != "none" {
		if _, err := exec.LookPath("ffmpeg"); err != nil {
			log.Warn("no transcoded renditions: ffmpeg not found", "err", err)
		} else {
			tc = transcode.New(transcode.Options{Concurrency: *transcodeJobs, Store: st, CacheBytes: *transcodeCache,
				Locker: c.shared, Logger: log})
			defer tc.Close()
		}
	}
	lv := live.New(lib, live.Options{Logger: log, IdleTimeout: *liveIdle, DVR: *liveDVR})
	sweep.Go(func() { lv.Run(sweepCtx) }) // archives idle live streams, and those open at shutdown
	defer func() { stopSweep(); sweep.Wait() }()
	srv := &http.Server{
		Handler: server.New(out, server.Options{Logger: log, Debug: *debug, Delivery: dl, Uploads: up, Auth: au, Spool: sp,
			State: c.shared, Beacons: beacons, Live: lv, Transcoder: tc, Ladder: ladder}),
		// Against slow and oversized requests (see internal/server's
		// harden.go); no WriteTimeout: paced downloads last hours, and
		// a client that stops reading is dropped by httpserve's write
		// idle timeout.
		ReadHeaderTimeout: server.ReadHeaderTimeout,
		ReadTimeout:       server.ReadTimeout,
		IdleTimeout:       server.IdleTimeout,
		MaxHeaderBytes:    server.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       httpserve.WithConn, // small responses leave in one segment train
	}
	srv.Handler = server.Harden(srv.Handler, server.Limits{})
	log.Info("serving", "url", "http://"+ln.Addr().String()+"/", "store", storeDesc, "state", stateDesc(c.state), "auth", au != nil)
	logSampleURL(logHandler, log, ln.Addr().String(), au, sampleToken)
	budget := "unlimited"
	if dc.MaxEgress > 0 {
		budget = delivery.FormatRate(dc.MaxEgress)
	}
	log.Info("delivery", "burst", dc.Burst, "pace_factor", dc.Factor, "pace_segments", dc.PaceSegments, "max_egress", budget)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	log.Info("shutting down")
	return srv.Shutdown(shutdown)
}

func cmdIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("ingest", stderr, &c)
	user := fs.String("user", "", "owner of the new asset (created if new)")
	title := fs.String("title", "", "title (default: the first file's name)")
	asJSON := fs.Bool("json", false, "print the new asset's metadata as JSON")
	progress := fs.String("progress", "auto", "progress bar: auto (on a terminal), always, never")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *user == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: jitstream ingest --user NAME FILE...")
		return errUsage
	}
	files := fs.Args()
	var total int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory", f)
		}
		total += fi.Size()
	}
	lib, out, err := c.open()
	if err != nil {
		return err
	}
	if err := lib.AddUser(ctx, *user); err != nil {
		return err
	}
	if err := lib.CheckQuota(ctx, *user, total); err != nil {
		return err // before reading a byte
	}
	bar := newProgress(stderr, total, *progress)
	i := 0
	var open *os.File
	defer func() {
		if open != nil {
			open.Close()
		}
	}()
	a, err := lib.Ingest(ctx, *user, *title, func() (*library.Upload, error) {
		if open != nil {
			open.Close()
			open = nil
		}
		if i == len(files) {
			return nil, nil
		}
		f, err := os.Open(files[i])
		if err != nil {
			return nil, err
		}
		open = f
		i++
		return &library.Upload{Name: filepath.Base(f.Name()), R: bar.reader(f)}, nil
	})
	bar.done()
	if err != nil {
		return err
	}
	if *asJSON {
		d, err := out.Describe(ctx, a)
		if err != nil {
			return err
		}
		return writeJSON(stdout, d)
	}
	fmt.Fprintln(stdout, a.ID)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("ls", stderr, &c)
	user := fs.String("user", "", "whose files (default: list the users)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, append(args[:0:0], args...)); err != nil {
		return err
	}
	if *user == "" && fs.NArg() == 1 {
		*user = fs.Arg(0)
	}
	lib, out, err := c.open()
	if err != nil {
		return err
	}
	if *user == "" {
		users, err := lib.Users(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, map[string]any{"users": users})
		}
		for _, u := range users {
			fmt.Fprintln(stdout, u+"/")
		}
		return nil
	}
	entries, err := out.List(ctx, *user)
	if err != nil {
		return err
	}
	if *asJSON {
		if entries == nil {
			entries = []outputs.Entry{}
		}
		return writeJSON(stdout, map[string]any{"user": *user, "files": entries})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t %s\n", e.Size, e.ModTime.Local().Format("2006-01-02 15:04"), e.Kind, e.Name)
	}
	return tw.Flush()
}

func cmdRm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("rm", stderr, &c)
	user := fs.String("user", "", "owner")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *user == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: jitstream rm --user NAME ID...")
		return errUsage
	}
	lib, _, err := c.open()
	if err != nil {
		return err
	}
	for _, id := range fs.Args() {
		if err := lib.Delete(ctx, *user, id); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "removed", id)
	}
	return nil
}

func cmdGC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("gc", stderr, &c)
	grace := fs.Duration("older-than", 24*time.Hour, "only objects older than this: an ingest in progress writes its originals before its metadata (give more than the longest upload)")
	dry := fs.Bool("dry-run", false, "list what would be removed, remove nothing")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *grace < 0 {
		fmt.Fprintln(stderr, "usage: jitstream gc [--older-than 24h] [--dry-run] [--json]")
		return errUsage
	}
	lib, _, err := c.open()
	if err != nil {
		return err
	}
	rep, err := lib.GC(ctx, *grace, *dry)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	verb := "removed"
	if *dry {
		verb = "would remove"
	}
	for _, k := range rep.Orphans {
		fmt.Fprintln(stdout, verb, k)
	}
	abort := "aborted"
	if *dry {
		abort = "would abort"
	}
	for _, k := range rep.Uploads {
		fmt.Fprintln(stdout, abort, "the unfinished upload of", k)
	}
	fmt.Fprintf(stdout, "%s %d objects (%s), %s %d unfinished uploads; %d newer than %v left alone\n",
		verb, len(rep.Orphans), library.FormatSize(rep.Bytes), abort, len(rep.Uploads), rep.Young, *grace)
	return nil
}

func cmdInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("inspect", stderr, &c)
	user := fs.String("user", "", "owner of the asset; without it, the arguments are local files")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: jitstream inspect --user NAME ID | jitstream inspect FILE...")
		return errUsage
	}
	var d *outputs.Describe
	if *user == "" {
		ix, err := parseFiles(ctx, fs.Args())
		if err != nil {
			return err
		}
		a := &library.Asset{ID: strings.TrimSuffix(filepath.Base(fs.Arg(0)), filepath.Ext(fs.Arg(0)))}
		for _, ch := range ix.Chapters {
			a.Chapters = append(a.Chapters, library.Chapter{Name: ch.Name, Object: ch.Object, Size: ch.Size})
		}
		a.Created = ix.Created
		d = outputs.DescribeIndex(a, ix)
		d.URLs = nil
	} else {
		lib, out, err := c.open()
		if err != nil {
			return err
		}
		a, err := lib.Asset(ctx, *user, fs.Arg(0))
		if err != nil {
			return err
		}
		if d, err = out.Describe(ctx, a); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, d)
	}
	printDescribe(stdout, d)
	return nil
}

func parseFiles(ctx context.Context, names []string) (*media.Index, error) {
	var srcs []media.Source
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, media.Source{Object: n, Name: filepath.Base(n), R: f, Size: fi.Size()})
	}
	return media.Parse(ctx, srcs)
}

func printDescribe(w io.Writer, d *outputs.Describe) {
	fmt.Fprintf(w, "asset     %s\n", d.ID)
	if d.Title != "" && d.Title != d.ID {
		fmt.Fprintf(w, "title     %s\n", d.Title)
	}
	if !d.Created.IsZero() {
		fmt.Fprintf(w, "created   %s\n", d.Created.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "duration  %.3f s\n", d.Duration)
	fmt.Fprintf(w, "size      %d bytes\n", d.Size)
	fmt.Fprintf(w, "bit rate  %d kbit/s\n", d.Bitrate/1000)
	fmt.Fprintf(w, "segments  %d (target %v)\n", d.Segments, media.DefaultSegmentDuration)
	fmt.Fprintf(w, "chapters  %d\n", len(d.Chapters))
	for i, ch := range d.Chapters {
		fmt.Fprintf(w, "  %d  %s  %d bytes\n", i+1, ch.Name, ch.Size)
	}
	fmt.Fprintln(w, "tracks")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  id\tkind\tcodec\tlang\tduration\tbit rate\tsamples\tdetail")
	for _, t := range d.Tracks {
		detail := ""
		switch {
		case t.Width > 0:
			detail = fmt.Sprintf("%dx%d", t.Width, t.Height)
		case t.SampleRate > 0:
			detail = fmt.Sprintf("%d Hz, %d ch", t.SampleRate, t.Channels)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%.3f s\t%d kbit/s\t%d\t%s\n", t.ID, t.Kind, t.Codec, t.Language, t.Duration, t.Bitrate/1000, t.Samples, detail)
	}
	tw.Flush()
}
