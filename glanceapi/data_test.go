package glanceapi_test

import (
	"bufio"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// putData uploads body to an image's file with the given Content-Type.
func putData(t *testing.T, e *env, id, token, ctype, body string) resp {
	t.Helper()
	return e.do(t, req{method: "PUT", path: "/v2/images/" + id + "/file", token: token, body: body,
		header: map[string]string{"Content-Type": ctype, "Accept": "application/json"}})
}

// newDataImage creates a raw/bare image of alice's and returns its id.
func newDataImage(t *testing.T, e *env) string {
	t.Helper()
	img := createImage(t, e, alice, `{"name":"data","disk_format":"raw","container_format":"bare"}`)
	return img["id"].(string)
}

// requireData skips while the service has no image-data backend (501):
// the handlers are then only reachable through the 415 path.
func requireData(t *testing.T, e *env, id string) {
	t.Helper()
	r := e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: alice})
	if r.status == 501 {
		t.Skip("the service has no image data yet (501)")
	}
}

// TestUploadContentType: Glance checks the media type first (before the
// image is looked up), exactly, parameters cut off, and calls a missing
// one text/plain.
func TestUploadContentType(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	unknown := "00000000-0000-0000-0000-000000000000"
	for _, tc := range []struct {
		ctype  string // "" = no header
		status int
		shown  string
	}{
		{"application/json", 415, "application/json"},
		{"", 415, "text/plain"},
		{"text/plain; charset=utf-8", 415, "text/plain; charset=utf-8"},
		{"Application/Octet-Stream", 415, "Application/Octet-Stream"},
		{"application/octet-stream ;x=y", 415, "application/octet-stream ;x=y"},
		{"application/octet-stream,text/plain", 415, "application/octet-stream,text/plain"},
		{"application/octet-stream", 404, ""},
		{"application/octet-stream; charset=x", 404, ""},
	} {
		r := putData(t, e, unknown, alice, tc.ctype, "x")
		if r.status != tc.status {
			t.Errorf("%q: %d %s", tc.ctype, r.status, r.body)
			continue
		}
		want := `{"message": "No image found with ID ` + unknown + `<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}`
		if tc.status == 415 {
			want = `{"message": "The request media type ` + tc.shown + ` is not supported by this server.\n<br /><br />\n", "code": "415 Unsupported Media Type", "title": "Unsupported Media Type"}`
		}
		if string(r.body) != want {
			t.Errorf("%q: body %s\nwant %s", tc.ctype, r.body, want)
		}
	}
	// The HTML rendering escapes the media type.
	r := e.do(t, req{method: "PUT", path: "/v2/images/" + unknown + "/file", token: alice, body: "x",
		header: map[string]string{"Content-Type": "<b>", "Accept": "*/*"}})
	if r.status != 415 || !strings.Contains(string(r.body), "The request media type &lt;b&gt; is not supported") {
		t.Errorf("html 415: %d %s", r.status, r.body)
	}
}

func TestUploadDownload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := newDataImage(t, e)
	requireData(t, e, id)

	// No data yet: 204 without a Content-Type, as Glance.
	r := e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: alice})
	// (Glance also sends Content-Length: 0; net/http never sends one
	// with a 204.)
	if r.status != 204 || r.header.Get("Content-Type") != "" || len(r.body) != 0 {
		t.Fatalf("queued download: %d %v", r.status, r.header)
	}
	// A valid range on an image without data: still 204 (Glance: 500).
	r = e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: alice, header: map[string]string{"Range": "bytes=0-1"}})
	if r.status != 204 {
		t.Errorf("queued ranged download: %d", r.status)
	}

	data := make([]byte, 1<<20+1)
	_, _ = rand.Read(data)
	r = putData(t, e, id, alice, "application/octet-stream", string(data))
	if r.status != 204 || r.header.Get("Content-Type") != "text/html; charset=UTF-8" || len(r.body) != 0 {
		t.Fatalf("upload: %d %v %s", r.status, r.header, r.body)
	}
	sum := md5.Sum(data)
	sha := sha512.Sum512(data)
	img := jsonOf(t, e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice}).body)
	if img["status"] != "active" || img["size"] != float64(len(data)) || img["checksum"] != hex.EncodeToString(sum[:]) ||
		img["os_hash_algo"] != "sha512" || img["os_hash_value"] != hex.EncodeToString(sha[:]) {
		t.Errorf("image after upload: %v", img)
	}

	r = e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: alice})
	if r.status != 200 || string(r.body) != string(data) {
		t.Fatalf("download: %d, %d bytes", r.status, len(r.body))
	}
	for k, v := range map[string]string{
		"Content-Type":   "application/octet-stream",
		"Content-Length": fmt.Sprint(len(data)),
		"Content-Md5":    hex.EncodeToString(sum[:]),
		"Content-Range":  "",
	} {
		if got := r.header.Get(k); got != v {
			t.Errorf("download %s: %q, want %q", k, got, v)
		}
	}

	// A second upload: Glance's state-machine conflict.
	r = putData(t, e, id, alice, "application/octet-stream", "again")
	if r.status != 409 {
		t.Errorf("second upload: %d %s", r.status, r.body)
	}
	// Someone who cannot see the image: 404 for both directions.
	if r := putData(t, e, newDataImage(t, e), bob, "application/octet-stream", "x"); r.status != 404 {
		t.Errorf("upload by a stranger: %d %s", r.status, r.body)
	}
	if r := e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: bob}); r.status != 404 {
		t.Errorf("download by a stranger: %d %s", r.status, r.body)
	}
}

// TestUploadChunkedAndEmpty: a chunked body (size unknown) and an empty
// body (Glance makes an active image of 0 bytes) are both uploads.
func TestUploadChunkedAndEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := newDataImage(t, e)
	requireData(t, e, id)

	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 3; i++ {
			_, _ = pw.Write([]byte("abc"))
		}
		pw.Close()
	}()
	hr, _ := http.NewRequest("PUT", e.srv.URL+"/v2/images/"+id+"/file", pr)
	hr.Header.Set("X-Auth-Token", alice)
	hr.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		t.Fatalf("chunked upload: %d", res.StatusCode)
	}
	r := e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: alice})
	if r.status != 200 || string(r.body) != "abcabcabc" || r.header.Get("Content-Length") != "9" {
		t.Errorf("download of chunked upload: %d %q %v", r.status, r.body, r.header)
	}

	empty := newDataImage(t, e)
	if r := putData(t, e, empty, alice, "application/octet-stream", ""); r.status != 204 {
		t.Fatalf("empty upload: %d %s", r.status, r.body)
	}
	img := jsonOf(t, e.do(t, req{method: "GET", path: "/v2/images/" + empty, token: alice}).body)
	if img["status"] != "active" || img["size"] != float64(0) || img["checksum"] != "d41d8cd98f00b204e9800998ecf8427e" {
		t.Errorf("empty image: %v", img)
	}
	r = e.do(t, req{method: "GET", path: "/v2/images/" + empty + "/file", token: alice})
	if r.status != 200 || r.header.Get("Content-Length") != "0" || r.header.Get("Content-Md5") != "d41d8cd98f00b204e9800998ecf8427e" {
		t.Errorf("empty download: %d %v", r.status, r.header)
	}
	r = e.do(t, req{method: "GET", path: "/v2/images/" + empty + "/file", token: alice, header: map[string]string{"Range": "bytes=-1", "Accept": "application/json"}})
	if r.status != 416 || r.header.Get("Content-Range") != "bytes */0" {
		t.Errorf("range on an empty image: %d %v %s", r.status, r.header, r.body)
	}
}

// TestDownloadRanges: the answers Glance 25.1 gave for a 10-byte image.
func TestDownloadRanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := newDataImage(t, e)
	requireData(t, e, id)
	if r := putData(t, e, id, alice, "application/octet-stream", "0123456789"); r.status != 204 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	const md5Hex = "781e5e245d69b566979b86e28d23f2c7"
	for _, tc := range []struct {
		header, value string
		status        int
		cr, body      string
	}{
		{"Range", "bytes=0-4", 206, "bytes 0-4/10", "01234"},
		{"Range", "bytes=5-", 206, "bytes 5-9/10", "56789"},
		{"Range", "bytes=-3", 206, "bytes 7-9/10", "789"},
		{"Range", "bytes=-11", 206, "bytes 0-9/10", "0123456789"},
		{"Range", "bytes=3-100", 206, "bytes 3-9/10", "3456789"},
		{"Range", "bytes=9-9", 206, "bytes 9-9/10", "9"},
		{"Range", "BYTES = 2 - 3", 206, "bytes 2-3/10", "23"},
		{"Content-Range", "bytes 1-3/*", 206, "bytes 1-3/10", "123"},
		{"Range", "bytes=10-", 416, "bytes */10",
			`{"message": "The Range requested is not available.<br /><br />\nInvalid start position in Range header. Start position MUST be in the inclusive range [0, 9].\n\n", "code": "416 Request Range Not Satisfiable", "title": "Request Range Not Satisfiable"}`},
		{"Range", "bytes=4-2", 416, "bytes */10",
			`{"message": "The Range requested is not available.<br /><br />\nInvalid Range header.\n\n", "code": "416 Request Range Not Satisfiable", "title": "Request Range Not Satisfiable"}`},
		{"Range", "garbage", 416, "bytes */10",
			`{"message": "The Range requested is not available.<br /><br />\nInvalid Range header.\n\n", "code": "416 Request Range Not Satisfiable", "title": "Request Range Not Satisfiable"}`},
		{"Content-Range", "bytes 0-10/*", 416, "bytes */10",
			`{"message": "The Range requested is not available.<br /><br />\nInvalid stop position in Content-Range header. The stop position MUST be in the inclusive range [0, 9].\n\n", "code": "416 Request Range Not Satisfiable", "title": "Request Range Not Satisfiable"}`},
		{"Range", "bytes=0-1,3-4", 400, "",
			`{"message": "Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead.<br /><br />\n\n\n", "code": "400 Bad Request", "title": "Bad Request"}`},
	} {
		r := e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: alice,
			header: map[string]string{tc.header: tc.value, "Accept": "application/json"}})
		if r.status != tc.status || r.header.Get("Content-Range") != tc.cr || string(r.body) != tc.body {
			t.Errorf("%s: %s: %d %q %s, want %d %q %s", tc.header, tc.value, r.status, r.header.Get("Content-Range"), r.body,
				tc.status, tc.cr, tc.body)
			continue
		}
		if tc.status == 206 {
			if r.header.Get("Content-Md5") != md5Hex || r.header.Get("Content-Length") != fmt.Sprint(len(tc.body)) ||
				r.header.Get("Content-Type") != "application/octet-stream" {
				t.Errorf("%s: headers %v", tc.value, r.header)
			}
		}
	}
}

// TestUploadClientGone: a client that sends part of its announced body and
// hangs up leaves the image queued, logs no error, and a retry works.
func TestUploadClientGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := newDataImage(t, e)
	requireData(t, e, id)

	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /v2/images/%s/file HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n"+
		"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", id, alice, 4<<20)
	_, _ = conn.Write(make([]byte, 256<<10))
	// Wait until the server is saving, so the hang-up hits mid-upload.
	deadline := time.Now().Add(10 * time.Second)
	for {
		img := jsonOf(t, e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice}).body)
		if img["status"] == "saving" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saving: %v", img)
		}
		time.Sleep(10 * time.Millisecond)
	}
	conn.Close()
	for {
		img := jsonOf(t, e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice}).body)
		if img["status"] == "queued" && img["size"] == nil && img["checksum"] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not back to queued: %v", img)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if logs := e.log.String(); strings.Contains(logs, `"level":"ERROR"`) || strings.Contains(logs, `"status":500`) {
		t.Errorf("a client hang-up was logged as our error:\n%s", logs)
	}
	if r := putData(t, e, id, alice, "application/octet-stream", "retry"); r.status != 204 {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	if r := e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: alice}); string(r.body) != "retry" {
		t.Errorf("after retry: %q", r.body)
	}
}

// TestUploadShortBody: a client that announces more than it sends, then
// half-closes and still listens, gets a 400.
func TestUploadShortBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := newDataImage(t, e)
	requireData(t, e, id)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /v2/images/%s/file HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\nAccept: application/json\r\n"+
		"Content-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\nonly ten..", id, alice)
	_ = conn.(*net.TCPConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 400 {
		t.Errorf("short body: %d %s", res.StatusCode, b)
	}
	img := jsonOf(t, e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice}).body)
	if img["status"] != "queued" {
		t.Errorf("after a short body: %v", img)
	}
	if strings.Contains(e.log.String(), `"level":"ERROR"`) {
		t.Errorf("short body logged as an error:\n%s", e.log.String())
	}
}

// TestDownloadDeactivated: Glance forbids data of a deactivated image to
// everyone but admins.
func TestDownloadDeactivated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := newDataImage(t, e)
	requireData(t, e, id)
	if r := putData(t, e, id, alice, "application/octet-stream", "bytes"); r.status != 204 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	if r := e.do(t, req{method: "POST", path: "/v2/images/" + id + "/actions/deactivate", token: admin}); r.status != 204 {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	r := e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: alice, header: jsonAccept})
	if r.status != 403 || jsonErr(t, r) != "The requested image has been deactivated. Image data download is forbidden." {
		t.Errorf("member download of a deactivated image: %d %s", r.status, r.body)
	}
	if r := e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: admin}); r.status != 200 || string(r.body) != "bytes" {
		t.Errorf("admin download of a deactivated image: %d %s", r.status, r.body)
	}
}

// TestDownloadClientGone: a client that stops reading and hangs up
// mid-download is logged at info level, not as an error of ours.
func TestDownloadClientGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := newDataImage(t, e)
	requireData(t, e, id)
	data := make([]byte, 32<<20) // more than the socket buffers hold
	if r := putData(t, e, id, alice, "application/octet-stream", string(data)); r.status != 204 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /v2/images/%s/file HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n\r\n", id, alice)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, res.Body, 64<<10); err != nil || res.StatusCode != 200 {
		t.Fatalf("%d %v", res.StatusCode, err)
	}
	// SO_LINGER 0: the close sends a reset, as a killed client does.
	_ = conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.log.String(), "image download aborted by the client") {
		if time.Now().After(deadline) {
			t.Fatalf("no abort logged:\n%s", e.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(e.log.String(), `"level":"ERROR"`) {
		t.Errorf("a client hang-up was logged as an error:\n%s", e.log.String())
	}
}
