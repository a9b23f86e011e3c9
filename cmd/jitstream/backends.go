package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/spool"
	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/store/readcache"
	"github.com/jitstream/jitstream/internal/store/s3"
	"github.com/jitstream/jitstream/internal/tusupload"
)

// common holds the flags every command shares: where the store is, where
// the shared state is, and the local read cache of a remote store.
type common struct {
	store string
	state string
	// Read cache of an S3 store (serve sets them from its flags).
	cacheMem, cacheDisk int64
	cacheDir            string
	log                 *slog.Logger
	// shared is the state openLibrary opened, for access control's
	// creation of the link secret.
	shared state.State
}

func newFlags(name string, stderr io.Writer, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet("jitstream "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("JITSTREAM_STORE")
	if def == "" {
		def = "./data"
	}
	fs.StringVar(&c.store, "store", def, "store: a directory, or s3://BUCKET[/PREFIX]?endpoint=URL&region=R with the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (env JITSTREAM_STORE)")
	fs.StringVar(&c.state, "state", os.Getenv("JITSTREAM_STATE"), "shared state of several nodes: redis://HOST:PORT/DB (env JITSTREAM_STATE; default: in memory, one node)")
	return fs
}

// isRemote reports whether the store setting names an object store.
func (c *common) isRemote() bool { return strings.HasPrefix(c.store, "s3://") }

// openStore opens the store of the settings: a local directory, or an S3
// bucket behind a local read cache (memory and disk) of the originals and
// indexes. It returns the store and a description for logs (no secrets).
func (c *common) openStore(ctx context.Context) (store.Store, string, error) {
	if !c.isRemote() {
		st, err := store.NewFS(c.store)
		if err != nil {
			return nil, "", err
		}
		return st, st.Root(), nil
	}
	cfg, err := s3.ParseURL(c.store)
	if err != nil {
		return nil, "", err
	}
	remote, err := s3.New(ctx, cfg)
	if err != nil {
		return nil, "", err
	}
	log := c.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := c.cacheDir
	if dir == "" {
		dir = os.TempDir()
	}
	sp, err := spool.New(dir)
	if err != nil {
		log.Warn("read cache in memory only", "err", err)
		sp = nil
	}
	return readcache.New(remote, readcache.Options{Immutable: library.ImmutableKey, MemBytes: c.cacheMem,
		DiskBytes: c.cacheDisk, Spool: sp, Logger: log}), remote.String(), nil
}

// openState opens the shared state of the settings.
func (c *common) openState(ctx context.Context) (state.State, error) {
	return state.Open(ctx, c.state)
}

// openLibrary opens the store, the state and the library over them; it
// also returns the store's description.
func (c *common) openLibrary(ctx context.Context) (*library.Library, store.Store, string, error) {
	st, desc, err := c.openStore(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	sh, err := c.openState(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	c.shared = sh
	return library.New(st, library.Options{Logger: c.log, State: sh}), st, desc, nil
}

// stateDesc describes a --state setting for logs, without its password.
func stateDesc(spec string) string {
	if spec == "" || spec == "memory" {
		return "memory (one node)"
	}
	u, err := url.Parse(spec)
	if err != nil {
		return "(invalid)"
	}
	u.User = nil
	return u.String()
}

// sizeFlag defines a flag of a byte size (library.ParseSize: 64MiB, 1GB...).
func sizeFlag(fs *flag.FlagSet, name string, def int64, usage string) *int64 {
	v := def
	fs.Func(name, usage+" (default "+library.FormatSize(def)+")", func(s string) error {
		n, err := library.ParseSize(s)
		if err != nil {
			return err
		}
		v = n
		return nil
	})
	return &v
}

// uploadsDir is the default directory of partial resumable uploads: in the
// store for a local store, else a local temporary directory.
func (c *common) uploadsDir(st store.Store) string {
	if fs, ok := st.(*store.FS); ok {
		return tusupload.DefaultDir(fs.Root())
	}
	return filepath.Join(os.TempDir(), "jitstream-uploads")
}
