package fs_test

import (
	"context"
	"crypto/md5"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blob/fs"
)

// Run: go test ./blob/fs -run '^$' -bench . -benchtime 3x
// Every benchmark moves 1 GiB per op; SetBytes makes the tool print MB/s
// and ReportAllocs shows that nothing grows with the blob.

const benchSize = 1 << 30

// zeroReader yields n bytes without touching the buffer: a source that
// costs nothing.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	m := int(min(int64(len(p)), z.n))
	z.n -= int64(m)
	return m, nil
}

// sink discards bytes and has no ReadFrom, so a copy into it shows the
// reader's own WriterTo or Read path.
type sink struct{}

func (sink) Write(p []byte) (int, error) { return len(p), nil }

// benchStore makes a store in a temporary directory, under
// $BLOBFS_BENCH_DIR if set: point it at a tmpfs (/dev/shm) to see the
// store's own cost without the disk's.
func benchStore(b *testing.B, opts ...fs.Option) *fs.Store {
	dir := b.TempDir()
	if base := os.Getenv("BLOBFS_BENCH_DIR"); base != "" {
		var err error
		if dir, err = os.MkdirTemp(base, "blobfs-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	s, err := fs.New(dir, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func writeBlob(b *testing.B, s imaged.BlobStore, key string, src io.Reader, chunk int) (commitTime time.Duration) {
	ctx := context.Background()
	w, err := s.Create(ctx, key)
	if err != nil {
		b.Fatal(err)
	}
	if chunk == 0 {
		_, err = io.Copy(w, src)
	} else {
		// As io.Copy through an io.MultiWriter (the upload path that
		// also hashes) does: writes of 32 KiB.
		_, err = io.CopyBuffer(struct{ io.Writer }{w}, src, make([]byte, chunk))
	}
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := w.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkMD5 is the upload target's yardstick: the store should write
// at least 90% as fast as MD5 hashes.
func BenchmarkMD5(b *testing.B) {
	b.SetBytes(benchSize)
	b.ReportAllocs()
	buf := make([]byte, 32<<10)
	for b.Loop() {
		h := md5.New()
		for range benchSize / len(buf) {
			h.Write(buf)
		}
		h.Sum(nil)
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, bc := range []struct {
		name  string
		opts  []fs.Option
		chunk int
	}{
		{"ReadFrom", nil, 0},
		{"Write32K", nil, 32 << 10},
		{"Write32KUnbuffered", []fs.Option{fs.WithBufferSize(0)}, 32 << 10},
		{"ReadFromNoWriteback", []fs.Option{fs.WithWriteback(0)}, 0},
		{"Write32KNoWriteback", []fs.Option{fs.WithWriteback(0)}, 32 << 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := benchStore(b, bc.opts...)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			var commit time.Duration
			for b.Loop() {
				commit += writeBlob(b, s, "bench/img", &zeroReader{benchSize}, bc.chunk)
			}
			// The fsync share: what durability costs on this disk.
			b.ReportMetric(float64(commit.Milliseconds())/float64(b.N), "commit-ms/op")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	s := benchStore(b)
	writeBlob(b, s, "bench/img", &zeroReader{benchSize}, 0)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		dst  io.Writer
	}{
		{"WriterTo", sink{}},
		{"Discard", io.Discard}, // io.Discard's own ReadFrom, 8 KiB reads
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				r, err := s.Open(ctx, "bench/img", 0, -1)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(bc.dst, r); err != nil || n != benchSize {
					b.Fatal(n, err)
				}
				r.Close()
			}
		})
	}
}

// BenchmarkLoopbackTCP is the download target's yardstick: 1 GiB over a
// loopback TCP connection from memory, nothing else.
func BenchmarkLoopbackTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1<<20)
				for sent := 0; sent < benchSize; sent += len(buf) {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	b.SetBytes(benchSize)
	b.ReportAllocs()
	buf := make([]byte, 1<<20)
	for b.Loop() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(sink{}, c, buf)
		c.Close()
		if err != nil || n != benchSize {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkHTTP moves 1 GiB through a loopback HTTP server backed by the
// store, as the image API's upload and download will, next to the same
// server moving the bytes from and to memory: the store's share is the
// difference.
func BenchmarkHTTP(b *testing.B) {
	s := benchStore(b)
	writeBlob(b, s, "bench/img", &zeroReader{benchSize}, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := req.Context()
		memory := req.URL.Query().Has("memory")
		switch req.Method {
		case http.MethodPut:
			var dst io.Writer = sink{}
			if !memory {
				bw, err := s.Create(ctx, "bench/up")
				if err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				defer bw.Cancel(ctx)
				defer func() {
					if _, err := bw.Commit(ctx); err != nil {
						b.Error(err)
					}
				}()
				dst = bw
			}
			if _, err := io.Copy(dst, req.Body); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet:
			var src io.Reader = &zeroReader{benchSize}
			if !memory {
				r, err := s.Open(ctx, "bench/img", 0, -1)
				if err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				defer r.Close()
				src = r
			}
			w.Header().Set("Content-Length", strconv.Itoa(benchSize))
			io.Copy(w, src)
		}
	}))
	defer srv.Close()
	// A client that costs little: large buffers, so that the server's
	// side, not 4 KiB client writes, sets the pace.
	client := &http.Client{Transport: &http.Transport{WriteBufferSize: 1 << 20, ReadBufferSize: 1 << 20}}
	for _, from := range []string{"Store", "Memory"} {
		url := srv.URL
		if from == "Memory" {
			url += "?memory"
		}
		b.Run("Download"+from, func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			buf := make([]byte, 1<<20)
			for b.Loop() {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(sink{}, resp.Body, buf)
				resp.Body.Close()
				if err != nil || n != benchSize {
					b.Fatal(n, err)
				}
			}
		})
		b.Run("Upload"+from, func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				req, err := http.NewRequest(http.MethodPut, url, &zeroReader{benchSize})
				if err != nil {
					b.Fatal(err)
				}
				req.ContentLength = benchSize
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}
