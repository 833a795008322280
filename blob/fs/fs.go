// Package fs is an imaged.BlobStore over a local directory, one file per
// blob, safe for several goroutines and several processes sharing the
// directory.
//
// Layout under the root: a key's last segment is a file; every other
// segment is a directory named after it with a "+" suffix, a character
// keys cannot hold, so that the keys "a" and "a/b" coexist (files "a" and
// "a+/b"). Uncommitted writes are temporary files in "_uploads" named
// "<creation unix nanoseconds>-<random>"; Commit fsyncs the file, renames
// it into place and fsyncs the directory, so a reader never sees a partial
// blob and a crash leaves only temporary files, which PurgeUploads removes.
//
// Large images never pass through memory whole: writes go through a buffer
// of BufferSize bytes, io.Copy from a file or a socket into a writer uses
// copy_file_range or splice, and the readers Open returns implement
// io.WriterTo so that io.Copy to a socket, or to an http.ResponseWriter of
// a response with a Content-Length, uses sendfile.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blob"
)

// BufferSize is the default size of a writer's buffer: large enough that
// a stream of small writes (io.Copy's 32 KiB) costs few system calls,
// small enough for many concurrent uploads.
const BufferSize = 1 << 20

// uploadsDir is the directory, under the root, of uncommitted writes. No
// key can name it (blob.ReservedPrefix), nor can any key's directory,
// whose names end in dirSuffix.
const uploadsDir = blob.ReservedPrefix

// dirSuffix ends the name of every directory that holds keys.
const dirSuffix = "+"

// Store is a BlobStore in a local directory. Its methods are safe for
// concurrent use.
type Store struct {
	root     string
	uploads  string
	clock    imaged.Clock
	filePerm os.FileMode
	dirPerm  os.FileMode
	bufSize  int
	// writeback is the chunk size of early writeback; 0 leaves it all
	// to Commit's fsync.
	writeback int64
}

var _ imaged.BlobStore = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock PurgeUploads measures ages against.
func WithClock(c imaged.Clock) Option { return func(s *Store) { s.clock = c } }

// WithPerm sets the permissions of blob files and of directories (before
// the umask for directories). The defaults, 0600 and 0700, keep private
// images private from other local users.
func WithPerm(file, dir os.FileMode) Option {
	return func(s *Store) { s.filePerm, s.dirPerm = file.Perm(), dir.Perm() }
}

// WithBufferSize sets the size of each writer's buffer (default
// BufferSize); 0 writes through unbuffered.
func WithBufferSize(n int) Option { return func(s *Store) { s.bufSize = max(n, 0) } }

// WithWriteback sets how many bytes a writer lets pile up before it has
// the disk write them (default 8 MiB where the system can, Linux); 0
// leaves all the writing to the fsync in Commit.
func WithWriteback(chunk int64) Option { return func(s *Store) { s.writeback = max(chunk, 0) } }

// New returns a Store rooted at root, creating the directory if needed.
func New(root string, opts ...Option) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blob store root %q: %w", root, err)
	}
	s := &Store{root: abs, uploads: filepath.Join(abs, uploadsDir), clock: imaged.SystemClock{},
		filePerm: 0o600, dirPerm: 0o700, bufSize: BufferSize, writeback: writebackChunk}
	for _, o := range opts {
		o(s)
	}
	if err := os.MkdirAll(s.uploads, s.dirPerm); err != nil {
		return nil, fmt.Errorf("blob store root: %w", err)
	}
	return s, nil
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

// path returns the file of a valid key.
// Path returns the file holding a committed blob, which file://
// locations name.
func (s *Store) Path(key string) string { return s.path(key) }

func (s *Store) path(key string) string {
	segs := strings.Split(key, "/")
	for i := range segs[:len(segs)-1] {
		segs[i] += dirSuffix
	}
	return filepath.Join(s.root, filepath.Join(segs...))
}

// Create implements imaged.BlobStore. The upload lives as long as ctx:
// once ctx is done, Write fails and Commit discards the upload, as when
// the request that carries the bytes goes away.
func (s *Store) Create(ctx context.Context, key string) (imaged.BlobWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := blob.ValidKey(key); err != nil {
		return nil, err
	}
	pattern := strconv.FormatInt(time.Now().UnixNano(), 10) + "-*"
	f, err := os.CreateTemp(s.uploads, pattern)
	if errors.Is(err, iofs.ErrNotExist) {
		// Someone removed the uploads directory (an operator cleaning
		// up); make it again rather than fail every upload.
		if err = os.MkdirAll(s.uploads, s.dirPerm); err == nil {
			f, err = os.CreateTemp(s.uploads, pattern)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("blob create %s: %w", key, err)
	}
	if s.filePerm != 0o600 { // CreateTemp's mode
		if err := f.Chmod(s.filePerm); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, fmt.Errorf("blob create %s: %w", key, err)
		}
	}
	w := &writer{s: s, ctx: ctx, key: key, f: f}
	if s.bufSize > 0 {
		w.buf = make([]byte, 0, s.bufSize)
	}
	return w, nil
}

// Open implements imaged.BlobStore. The reader implements io.WriterTo
// with the zero-copy paths described in the package comment.
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := blob.ValidKey(key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, imaged.Errorf(imaged.EINVALID, "Blob offset must not be negative.")
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, notFound(key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = imaged.Errorf(imaged.ENOTFOUND, "Blob %s not found.", key)
	}
	if err == nil && offset > fi.Size() {
		err = imaged.Errorf(imaged.ERANGE, "Offset %d is past the end of blob %s (%d bytes).", offset, key, fi.Size())
	}
	if err == nil && offset > 0 {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	n := fi.Size() - offset
	if length >= 0 && length < n {
		n = length
	}
	return &section{f: f, n: n}, nil
}

// Stat implements imaged.BlobStore.
func (s *Store) Stat(ctx context.Context, key string) (imaged.BlobInfo, error) {
	if err := ctx.Err(); err != nil {
		return imaged.BlobInfo{}, err
	}
	if err := blob.ValidKey(key); err != nil {
		return imaged.BlobInfo{}, err
	}
	fi, err := os.Stat(s.path(key))
	if err != nil {
		return imaged.BlobInfo{}, notFound(key, err)
	}
	if !fi.Mode().IsRegular() {
		return imaged.BlobInfo{}, imaged.Errorf(imaged.ENOTFOUND, "Blob %s not found.", key)
	}
	return imaged.BlobInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime().UTC()}, nil
}

// Delete implements imaged.BlobStore. It also removes the key's
// directories that it leaves empty.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := blob.ValidKey(key); err != nil {
		return err
	}
	p := s.path(key)
	if err := os.Remove(p); err != nil {
		if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("blob delete %s: %w", key, err)
	}
	dir := filepath.Dir(p)
	if err := syncDir(dir); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("blob delete %s: %w", key, err)
	}
	// Best effort: rmdir fails on a directory another key still uses,
	// and a writer racing us re-creates the directory (see commit).
	for dir != s.root && strings.HasSuffix(dir, dirSuffix) {
		if os.Remove(dir) != nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	return nil
}

// List implements imaged.BlobStore. It reads one directory at a time, so
// it holds at most one directory listing per key segment in memory.
func (s *Store) List(ctx context.Context, prefix string, fn func(imaged.BlobInfo) error) error {
	parts := strings.Split(prefix, "/")
	dir := s.root
	for _, seg := range parts[:len(parts)-1] {
		if !blob.ValidSegment(seg) {
			return ctx.Err() // no key can start with prefix
		}
		dir = filepath.Join(dir, seg+dirSuffix)
	}
	keyPrefix := strings.TrimSuffix(prefix, parts[len(parts)-1])
	return s.walk(ctx, dir, keyPrefix, parts[len(parts)-1], fn)
}

// walk lists the keys under dir, whose keys start with keyPrefix, whose
// next segment starts with namePrefix. Keys sort as strings, so a
// directory "a+" sorts as "a/": after a file "a" but also after "a.b",
// as '.' < '/'.
func (s *Store) walk(ctx context.Context, dir, keyPrefix, namePrefix string, fn func(imaged.BlobInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil // removed while we walked, or never there
		}
		return fmt.Errorf("blob list %s: %w", keyPrefix, err)
	}
	type item struct {
		sortKey string
		entry   iofs.DirEntry
	}
	items := make([]item, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir() && strings.HasSuffix(name, dirSuffix):
			seg := strings.TrimSuffix(name, dirSuffix)
			if blob.ValidSegment(seg) && strings.HasPrefix(seg, namePrefix) {
				items = append(items, item{seg + "/", e})
			}
		case e.Type().IsRegular():
			// At the root this skips nothing valid: "_uploads" is a
			// directory without the suffix.
			if blob.ValidSegment(name) && strings.HasPrefix(name, namePrefix) {
				items = append(items, item{name, e})
			}
		}
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.sortKey, b.sortKey) })
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		if it.entry.IsDir() {
			if err := s.walk(ctx, filepath.Join(dir, it.entry.Name()), keyPrefix+it.sortKey, "", fn); err != nil {
				return err
			}
			continue
		}
		fi, err := it.entry.Info()
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				continue // deleted while we walked
			}
			return fmt.Errorf("blob list %s: %w", keyPrefix, err)
		}
		if err := fn(imaged.BlobInfo{Key: keyPrefix + it.sortKey, Size: fi.Size(), ModTime: fi.ModTime().UTC()}); err != nil {
			return err
		}
	}
	return nil
}

// PurgeUploads implements imaged.BlobStore. An upload's age is the time
// since its last write reached the file (its mtime), so an upload still
// being written is never purged, however long it has been running.
func (s *Store) PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	cutoff := s.clock.Now().Add(-olderThan)
	entries, err := os.ReadDir(s.uploads)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("blob purge: %w", err)
	}
	n := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue // gone already (another purger), or young
		}
		if err := os.Remove(filepath.Join(s.uploads, e.Name())); err == nil {
			n++
		} else if !errors.Is(err, iofs.ErrNotExist) {
			return n, fmt.Errorf("blob purge: %w", err)
		}
	}
	return n, nil
}

// ensureDirs makes the directories of path p (a key's file), fsyncing the
// parent of each directory it creates so that the new entry survives a
// crash.
func (s *Store) ensureDirs(p string) error {
	rel, err := filepath.Rel(s.root, filepath.Dir(p))
	if err != nil || rel == "." {
		return err
	}
	dir := s.root
	for seg := range strings.SplitSeq(rel, string(filepath.Separator)) {
		sub := filepath.Join(dir, seg)
		if err := os.Mkdir(sub, s.dirPerm); err == nil {
			if err := syncDir(dir); err != nil {
				return err
			}
		} else if !errors.Is(err, iofs.ErrExist) {
			return err
		}
		dir = sub
	}
	return nil
}

// syncDir fsyncs a directory, making the entries added to or removed from
// it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func notFound(key string, err error) error {
	if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return imaged.Errorf(imaged.ENOTFOUND, "Blob %s not found.", key)
	}
	return fmt.Errorf("blob %s: %w", key, err)
}
