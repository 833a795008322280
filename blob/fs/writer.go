package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/imaged/imaged"
)

// writer is an upload into a temporary file under _uploads. Its methods
// take a lock so that a Cancel from another goroutine (a request's
// cleanup) cannot race a Write.
type writer struct {
	s   *Store
	ctx context.Context
	key string

	mu   sync.Mutex
	f    *os.File // nil once committed or cancelled
	buf  []byte   // pending bytes, len(buf) of cap(buf) used
	size int64    // bytes accepted so far
	// written bytes reached the file; writeback was started up to wbOff.
	written, wbOff int64
	err            error  // sticky: the first write error
	done           string // why f is nil: "committed" or "cancelled"
}

var _ io.ReaderFrom = (*writer)(nil)

func (w *writer) usable() error {
	switch {
	case w.f == nil:
		return imaged.Errorf(imaged.ECONFLICT, "Blob upload of %s was already %s.", w.key, w.done)
	case w.err != nil:
		return w.err
	}
	return w.ctx.Err()
}

// Write implements io.Writer.
func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		if len(w.buf) == 0 && len(p) >= cap(w.buf) {
			// Large writes, or no buffer: write through, no copy.
			m, err := w.f.Write(p)
			n += m
			w.size += int64(m)
			w.wrote(m)
			if err != nil {
				w.err = err
				return n, err
			}
			return n, nil
		}
		m := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+m]
		p = p[m:]
		n += m
		w.size += int64(m)
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// ReadFrom implements io.ReaderFrom, for io.Copy: from a file or a socket
// it lets the kernel move the bytes (copy_file_range, splice); from any
// other reader it reads straight into the buffer, one copy fewer than
// io.Copy's own buffer would cost.
func (w *writer) ReadFrom(r io.Reader) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return 0, err
	}
	if zeroCopy(r) || cap(w.buf) == 0 {
		if err := w.flush(); err != nil {
			return 0, err
		}
		if !zeroCopy(r) {
			r = ctxReader{w.ctx, r}
		}
		n, err := w.f.ReadFrom(r)
		w.size += n
		w.written += n
		w.wbOff = w.written // the kernel moved it all: nothing to pace
		if err != nil {
			w.err = err
		}
		return n, err
	}
	var total int64
	for {
		if err := w.ctx.Err(); err != nil {
			return total, err
		}
		m, rerr := r.Read(w.buf[len(w.buf):cap(w.buf)])
		if m < 0 || m > cap(w.buf)-len(w.buf) {
			return total, fmt.Errorf("blob write %s: reader returned %d bytes", w.key, m)
		}
		w.buf = w.buf[:len(w.buf)+m]
		total += int64(m)
		w.size += int64(m)
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return total, err
			}
		}
		if rerr == io.EOF {
			return total, nil
		} else if rerr != nil {
			return total, rerr
		}
	}
}

// zeroCopy reports whether os.File.ReadFrom can move r's bytes in the
// kernel: r is (a LimitedReader over) a file or a socket.
func zeroCopy(r io.Reader) bool {
	if lr, ok := r.(*io.LimitedReader); ok {
		r = lr.R
	}
	_, ok := r.(syscall.Conn)
	return ok
}

// ctxReader stops a copy once ctx is done. It would hide a file or a
// socket from os.File.ReadFrom, so it wraps only other readers.
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

func (w *writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	m, err := w.f.Write(w.buf)
	w.wrote(m)
	w.buf = w.buf[:0]
	if err != nil {
		w.err = err
	}
	return err
}

// wrote accounts for m bytes written to the file and starts their
// writeback chunk by chunk.
func (w *writer) wrote(m int) {
	w.written += int64(m)
	if c := w.s.writeback; c > 0 {
		for w.written-w.wbOff >= c {
			writeback(w.f, w.wbOff, c)
			w.wbOff += c
		}
	}
}

// Commit implements imaged.BlobWriter. A failed Commit discards the upload
// (a later Cancel does nothing).
func (w *writer) Commit(ctx context.Context) (imaged.BlobInfo, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		if w.f != nil {
			w.discard()
		}
		return imaged.BlobInfo{}, err
	}
	info, err := w.commit(ctx)
	if err != nil {
		w.discard()
		return imaged.BlobInfo{}, err
	}
	w.f, w.done = nil, "committed"
	return info, nil
}

func (w *writer) commit(ctx context.Context) (imaged.BlobInfo, error) {
	if err := ctx.Err(); err != nil {
		return imaged.BlobInfo{}, err
	}
	if err := w.flush(); err != nil {
		return imaged.BlobInfo{}, fmt.Errorf("blob commit %s: %w", w.key, err)
	}
	if err := w.f.Sync(); err != nil {
		return imaged.BlobInfo{}, fmt.Errorf("blob commit %s: %w", w.key, err)
	}
	fi, err := w.f.Stat()
	if err != nil {
		return imaged.BlobInfo{}, fmt.Errorf("blob commit %s: %w", w.key, err)
	}
	if err := ctx.Err(); err != nil {
		return imaged.BlobInfo{}, err
	}
	tmp, dst := w.f.Name(), w.s.path(w.key)
	// A concurrent Delete of the last other key in a directory removes
	// the directory between our mkdir and our rename; make it again.
	for attempt := 0; ; attempt++ {
		err = w.s.ensureDirs(dst)
		if err == nil {
			err = os.Rename(tmp, dst)
		}
		if err == nil || !errors.Is(err, iofs.ErrNotExist) || attempt == 100 {
			break
		}
		if _, serr := os.Lstat(tmp); errors.Is(serr, iofs.ErrNotExist) {
			return imaged.BlobInfo{}, imaged.Errorf(imaged.ECONFLICT,
				"Blob upload of %s was purged before it was committed.", w.key)
		}
	}
	if err != nil {
		return imaged.BlobInfo{}, fmt.Errorf("blob commit %s: %w", w.key, err)
	}
	// The rename is done: the blob is visible. Closing our descriptor
	// and syncing the directory (for durability) can still fail, but
	// the rename cannot be undone, so report those as errors only.
	cerr := w.f.Close()
	if err := syncDir(filepath.Dir(dst)); err != nil && cerr == nil {
		cerr = err
	}
	w.f, w.done = nil, "committed"
	if cerr != nil {
		return imaged.BlobInfo{}, fmt.Errorf("blob commit %s: %w", w.key, cerr)
	}
	return imaged.BlobInfo{Key: w.key, Size: w.size, ModTime: fi.ModTime().UTC()}, nil
}

// discard closes and removes the temporary file.
func (w *writer) discard() {
	if w.f == nil {
		return
	}
	w.f.Close()
	os.Remove(w.f.Name())
	w.f, w.done, w.buf = nil, "cancelled", nil
}

// Cancel implements imaged.BlobWriter. It ignores ctx so that cleanup
// works after the request that started the upload was cancelled.
func (w *writer) Cancel(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.discard()
	return nil
}
