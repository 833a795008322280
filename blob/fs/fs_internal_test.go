package fs

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// readerFromRecorder records what io.Copy hands a ReaderFrom destination.
type readerFromRecorder struct {
	bytes.Buffer
	src io.Reader
}

func (r *readerFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.src = src
	return r.Buffer.ReadFrom(src)
}

// TestSectionKeepsFileForSendfile checks the shape net.TCPConn.ReadFrom
// needs for sendfile: an *io.LimitedReader directly over the *os.File.
func TestSectionKeepsFileForSendfile(t *testing.T) {
	t.Parallel()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Create(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("0123456789"))
	if _, err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(t.Context(), "k", 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rec readerFromRecorder
	if _, err := io.Copy(&rec, r); err != nil {
		t.Fatal(err)
	}
	lr, ok := rec.src.(*io.LimitedReader)
	if !ok {
		t.Fatalf("io.Copy handed the destination a %T, want *io.LimitedReader", rec.src)
	}
	if _, ok := lr.R.(*os.File); !ok {
		t.Fatalf("the LimitedReader reads a %T, want *os.File", lr.R)
	}
	if rec.String() != "3456" {
		t.Fatalf("copied %q, want 3456", rec.String())
	}
}
