package fs

import (
	"io"
	"os"
)

// section reads n bytes of a blob file from the file's current offset.
// It keeps the *os.File reachable for the kernel's fast paths: WriteTo
// hands io.Copy an io.LimitedReader over the file, which net's TCPConn
// (and so net/http's response writer, for responses with a
// Content-Length) sends with sendfile and os.File.ReadFrom copies with
// copy_file_range.
type section struct {
	f *os.File
	n int64 // bytes left
}

// Read implements io.Reader.
func (s *section) Read(p []byte) (int, error) {
	if s.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.n {
		p = p[:s.n]
	}
	m, err := s.f.Read(p)
	s.n -= int64(m)
	if err == io.EOF && s.n > 0 {
		// Committed blobs never shrink; someone truncated the file.
		err = io.ErrUnexpectedEOF
	}
	return m, err
}

// copyBufSize is the buffer WriteTo uses for writers that cannot take the
// file itself: bigger than io.Copy's 32 KiB, to halve the system calls.
const copyBufSize = 256 << 10

// WriteTo implements io.WriterTo.
func (s *section) WriteTo(w io.Writer) (int64, error) {
	if s.n <= 0 {
		return 0, nil
	}
	lr := &io.LimitedReader{R: s.f, N: s.n}
	var n int64
	var err error
	if _, ok := w.(io.ReaderFrom); ok {
		n, err = io.Copy(w, lr)
	} else {
		n, err = io.CopyBuffer(w, lr, make([]byte, min(s.n, copyBufSize)))
	}
	s.n = lr.N
	if err == nil && s.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Close implements io.Closer.
func (s *section) Close() error { return s.f.Close() }
