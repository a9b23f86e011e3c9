package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FS is a Store on a local directory. Objects are plain files under the root;
// Put writes to a temporary file under root/.tmp and renames it into place.
type FS struct {
	root string
}

var (
	_ Store      = (*FS)(nil)
	_ FileOpener = (*FS)(nil)
	_ Checker    = (*FS)(nil)
)

// NewFS opens (creating if needed) a directory store at root.
func NewFS(root string) (*FS, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(abs, ".tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", abs, err)
	}
	return &FS{root: abs}, nil
}

// Root is the directory holding the objects.
func (s *FS) Root() string { return s.root }

func (s *FS) path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put implements Store.
func (s *FS) Put(ctx context.Context, key string, r io.Reader) (Info, error) {
	p, err := s.path(key)
	if err != nil {
		return Info{}, err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, ".tmp"), "put-*")
	if err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, ctxReader{ctx, r})
	if err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	if err := tmp.Sync(); err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	done = true
	fi, err := os.Stat(p)
	if err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	return Info{Key: key, Size: n, ModTime: fi.ModTime()}, nil
}

// ctxReader stops a copy when the context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Get implements Store.
func (s *FS) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	f, err := s.OpenFile(ctx, key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		f.Close()
		return nil, fmt.Errorf("store: get %s: negative offset", key)
	}
	if n < 0 {
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("store: get %s: %w", key, err)
		}
		n = fi.Size() - off
		if n < 0 {
			n = 0
		}
	}
	return &sectionCloser{io.NewSectionReader(f, off, n), f}, nil
}

type sectionCloser struct {
	*io.SectionReader
	f *os.File
}

func (s *sectionCloser) Close() error { return s.f.Close() }

// OpenFile implements FileOpener.
func (s *FS) OpenFile(_ context.Context, key string) (*os.File, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store: %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("store: open %s: %w", key, err)
	}
	return f, nil
}

// Stat implements Store.
func (s *FS) Stat(_ context.Context, key string) (Info, error) {
	p, err := s.path(key)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, fmt.Errorf("store: %s: %w", key, ErrNotFound)
		}
		return Info{}, fmt.Errorf("store: stat %s: %w", key, err)
	}
	if fi.IsDir() {
		return Info{}, fmt.Errorf("store: %s: %w", key, ErrNotFound)
	}
	return Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Check implements Checker: the root directory and its .tmp directory
// (where Put writes) must be there; a Stat of a missing key cannot tell a
// missing object from a missing root.
func (s *FS) Check(_ context.Context) error {
	for _, dir := range []string{s.root, filepath.Join(s.root, ".tmp")} {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("store: %s is not a directory", dir)
		}
	}
	return nil
}

// List implements Store.
func (s *FS) List(ctx context.Context, prefix string) ([]Info, error) {
	// Walk only the deepest directory the prefix names.
	dir := prefix
	if i := strings.LastIndexByte(dir, '/'); i >= 0 {
		dir = dir[:i]
	} else {
		dir = ""
	}
	start := s.root
	if dir != "" {
		if err := CheckKey(dir); err != nil {
			return nil, err
		}
		start = filepath.Join(s.root, filepath.FromSlash(dir))
	}
	var out []Info
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".tmp") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		out = append(out, Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list %q: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete implements Store. Empty parent directories are removed.
func (s *FS) Delete(_ context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	for d := filepath.Dir(p); d != s.root && strings.HasPrefix(d, s.root); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
	}
	return nil
}
