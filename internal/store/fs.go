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
	"syscall"
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
	n, err := io.Copy(tmp, ContextReader{Ctx: ctx, R: r})
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

// ContextReader reads from R until Ctx is done, then fails with Ctx's
// error: backends wrap their readers in it so that a copy stops when its
// request ends.
type ContextReader struct {
	Ctx context.Context
	R   io.Reader
}

func (c ContextReader) Read(p []byte) (int, error) {
	if err := c.Ctx.Err(); err != nil {
		return 0, err
	}
	return c.R.Read(p)
}

// Get implements Store. It fails at once, before anything is read, when
// ctx is done, when key names no object (missing, a directory, or a path
// below an object), and when off is negative or beyond the end of the
// object; a range that starts at the end reads nothing. Reads from the
// returned reader fail once ctx is done.
func (s *FS) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("store: get %s: negative offset %d", key, off)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: get %s: %w", key, err)
	}
	f, fi, err := s.open(key)
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if off > size {
		f.Close()
		return nil, fmt.Errorf("store: get %s: offset %d beyond the end (size %d)", key, off, size)
	}
	if n < 0 || n > size-off {
		n = size - off
	}
	return &fileReader{ctx: ctx, key: key, r: io.NewSectionReader(f, off, n), f: f}, nil
}

// fileReader reads a range of an object's file; its reads fail once ctx is
// done.
type fileReader struct {
	ctx context.Context
	key string
	r   *io.SectionReader
	f   *os.File
}

func (r *fileReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, fmt.Errorf("store: read %s: %w", r.key, err)
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("store: read %s: %w", r.key, err)
	}
	return n, err
}

func (r *fileReader) Close() error { return r.f.Close() }

// OpenFile implements FileOpener. A key that names a directory, or a path
// below an object, is not found.
func (s *FS) OpenFile(_ context.Context, key string) (*os.File, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	f, _, err := s.open(key)
	return f, err
}

// open opens the file of the object key (which must be well formed) and
// returns it with its description.
func (s *FS) open(key string) (*os.File, fs.FileInfo, error) {
	f, err := os.Open(filepath.Join(s.root, filepath.FromSlash(key)))
	if err != nil {
		if notExist(err) {
			return nil, nil, fmt.Errorf("store: %s: %w", key, ErrNotFound)
		}
		return nil, nil, fmt.Errorf("store: open %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("store: open %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		// A directory holds objects but is not one.
		f.Close()
		return nil, nil, fmt.Errorf("store: %s: %w", key, ErrNotFound)
	}
	return f, fi, nil
}

// notExist reports whether err, from a file system call on the path of a
// key, says that there is no such object: the path is missing, or one of
// its directories is an object's file (ENOTDIR), as in "a/b/c" when "a/b"
// is an object.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Stat implements Store. A key that names a directory, or a path below an
// object, is not found.
func (s *FS) Stat(_ context.Context, key string) (Info, error) {
	p, err := s.path(key)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if notExist(err) {
			return Info{}, fmt.Errorf("store: %s: %w", key, ErrNotFound)
		}
		return Info{}, fmt.Errorf("store: stat %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
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
			if notExist(err) {
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

// Delete implements Store. Empty parent directories are removed. A key
// that names a directory (holding objects, which are left alone) or a path
// below an object is missing, and deleting it is not an error.
func (s *FS) Delete(_ context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		if err := os.Remove(p); err != nil && !notExist(err) {
			return fmt.Errorf("store: delete %s: %w", key, err)
		}
	case errors.Is(err, syscall.ENOTDIR):
		return nil // below an object's file
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	s.removeEmptyDirs(filepath.Dir(p))
	return nil
}

// removeEmptyDirs removes dir and its parents below the root as long as
// they are empty directories. It checks that each is a directory first:
// os.Remove would remove an object's file as well.
func (s *FS) removeEmptyDirs(dir string) {
	for d := dir; d != s.root && strings.HasPrefix(d, s.root); d = filepath.Dir(d) {
		if fi, err := os.Lstat(d); err != nil || !fi.IsDir() || os.Remove(d) != nil {
			return
		}
	}
}
