// Command sink is the loopback reference of bench.sh's data benchmark: the
// least an HTTP server can do with a body. PUT reads and discards it (204);
// GET /N sends N bytes from one reused buffer with a Content-Length (200),
// and GET /file (with -file) serves a file through net/http's file server,
// which sends it with sendfile from the page cache as imaged does: the
// buffer stays in the CPU's cache, a GiB file does not, so the second is
// the fair limit for downloading a stored image. Uploads and downloads
// through imaged are compared with both.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9496", "listen address (loopback)")
	file := flag.String("file", "", "serve this file at GET /file with net/http's file server (sendfile from the page cache, as imaged serves image data)")
	flag.Parse()
	buf := make([]byte, 256<<10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut, http.MethodPost:
			n, err := io.CopyBuffer(io.Discard, r.Body, buf[:cap(buf)])
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("X-Bytes", strconv.FormatInt(n, 10))
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet:
			if r.URL.Path == "/file" && *file != "" {
				http.ServeFile(w, r, *file)
				return
			}
			n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/"), 10, 64)
			if err != nil || n < 0 {
				http.Error(w, "GET /<bytes>", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			for n > 0 {
				m, err := w.Write(buf[:min(n, int64(len(buf)))])
				if err != nil {
					return
				}
				n -= int64(m)
			}
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	fmt.Println("sink listening on", *addr)
	log.Fatal(http.ListenAndServe(*addr, h))
}
