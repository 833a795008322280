package glanceapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// TestErrorBodies compares the three renderings with what Glance 25.1
// (webob) sent for the same errors, byte for byte.
func TestErrorBodies(t *testing.T) {
	t.Parallel()
	notFound := &apiError{status: 404, text: "No image found with ID x"}
	method := &apiError{status: 405, text: "DELETE", tmpl: tmpl405}
	media := &apiError{status: 415, text: "application/json", tmpl: tmpl415}
	quoted := &apiError{status: 400, text: `Invalid filter value "a. The quote is not closed.`}
	for _, tc := range []struct {
		name, accept string
		e            *apiError
		ctype, body  string
	}{
		{"plain", "", notFound, "text/plain; charset=UTF-8", "404 Not Found\n\nNo image found with ID x\n\n   "},
		{"html", "*/*", notFound, "text/html; charset=UTF-8",
			"<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  No image found with ID x<br /><br />\n\n\n\n </body>\n</html>"},
		{"json", "application/json", notFound, "application/json",
			`{"message": "No image found with ID x<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}`},
		{"405 json", "application/json", method, "application/json",
			`{"message": "The method DELETE is not allowed for this resource. <br /><br />\n", "code": "405 Method Not Allowed", "title": "Method Not Allowed"}`},
		{"405 html", "*/*", method, "text/html; charset=UTF-8",
			"<html>\n <head>\n  <title>405 Method Not Allowed</title>\n </head>\n <body>\n  <h1>405 Method Not Allowed</h1>\n  The method DELETE is not allowed for this resource. <br /><br />\n\n </body>\n</html>"},
		{"405 plain", "text/plain", &apiError{status: 405, text: "PUT", tmpl: tmpl405}, "text/plain; charset=UTF-8",
			"405 Method Not Allowed\n\nThe method PUT is not allowed for this resource. \n\n "},
		{"415 json", "application/json", media, "application/json",
			`{"message": "The request media type application/json is not supported by this server.\n<br /><br />\n", "code": "415 Unsupported Media Type", "title": "Unsupported Media Type"}`},
		{"html escaping", "text/html", quoted, "text/html; charset=UTF-8",
			"<html>\n <head>\n  <title>400 Bad Request</title>\n </head>\n <body>\n  <h1>400 Bad Request</h1>\n  Invalid filter value &quot;a. The quote is not closed.<br /><br />\n\n\n\n </body>\n</html>"},
		{"detail json", "application/json", &apiError{status: 403, text: "Access was denied to this resource.", detail: "Property name may not be removed."},
			"application/json", `{"message": "Access was denied to this resource.<br /><br />\nProperty name may not be removed.\n\n", "code": "403 Forbidden", "title": "Forbidden"}`},
		{"detail plain", "", &apiError{status: 409, text: "There was a conflict when trying to complete your request.", detail: "Property k does not exist."},
			"text/plain; charset=UTF-8", "409 Conflict\n\nThere was a conflict when trying to complete your request.\n\n Property k does not exist.  "},
		{"json ensure_ascii", "application/json", &apiError{status: 404, text: "No image found with ID é"}, "application/json",
			`{"message": "No image found with ID \u00e9<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeAPIError(w, r, tc.e) }))
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL, nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.e.status || res.Header.Get("Content-Type") != tc.ctype || string(b) != tc.body {
				t.Errorf("got %d %q\n%q\nwant %d %q\n%q", res.StatusCode, res.Header.Get("Content-Type"), b, tc.e.status, tc.ctype, tc.body)
			}
			if res.Header.Get("X-Content-Type-Options") != "" {
				t.Error("nosniff header leaked from net/http")
			}
		})
	}
}

// TestNegotiateError: the outcomes observed on Glance 25.1 for each Accept.
func TestNegotiateError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		accept []string
		want   string
	}{
		{nil, ""},
		{[]string{""}, ""},
		{[]string{"*/*"}, "text/html"},
		{[]string{"text/html"}, "text/html"},
		{[]string{"application/json"}, "application/json"},
		{[]string{"text/plain"}, ""},
		{[]string{"application/xml"}, ""},
		{[]string{"application/json, text/plain"}, "application/json"},
		{[]string{"text/html;q=0.5, application/json"}, "application/json"},
		{[]string{"garbage"}, "text/html"},
		{[]string{"text/*"}, "text/html"},
		{[]string{"application/*"}, "application/json"},
		{[]string{"*/*;q=0.5, application/json"}, "application/json"},
		{[]string{"application/json;q=0"}, ""},
		{[]string{"text/html;q=0, */*"}, "application/json"},
		{[]string{"application/json;q=0.5, text/html;q=0.5"}, "text/html"},
		{[]string{"application/json;q=0.5, text/html;q=0.4"}, "application/json"},
		{[]string{"*/*, application/json"}, "text/html"},
		{[]string{"application/JSON"}, "application/json"},
		{[]string{"text/plain, */*;q=0.1"}, "text/html"},
		{[]string{"application/json;charset=utf-8"}, ""},
	} {
		if got := negotiateError(tc.accept); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.accept, got, tc.want)
		}
	}
}

func TestParseListQuery(t *testing.T) {
	t.Parallel()
	ts := func(s string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return v }
	tr, fa := true, false
	n5 := int64(5)
	sk := func(k, d string) imaged.SortKey { return imaged.SortKey{Key: k, Dir: imaged.SortDir(d)} }
	for _, tc := range []struct {
		raw  string
		want imaged.ImageQuery
	}{
		{"", imaged.ImageQuery{MemberStatus: "accepted", Limit: 25, Sort: []imaged.SortKey{sk("created_at", "desc")}}},
		{"limit=5000&member_status=all&visibility=all", imaged.ImageQuery{MemberStatus: "all", Visibility: "all", Limit: 1000,
			Sort: []imaged.SortKey{sk("created_at", "desc")}}},
		{"limit=+1_0&sort=name:asc,size,id:desc", imaged.ImageQuery{MemberStatus: "accepted", Limit: 10,
			Sort: []imaged.SortKey{sk("name", "asc"), sk("size", "desc"), sk("id", "desc")}}},
		{"sort_key=name&sort_key=size&sort_dir=asc", imaged.ImageQuery{MemberStatus: "accepted", Limit: 25,
			Sort: []imaged.SortKey{sk("name", "asc"), sk("size", "asc")}}},
		{"sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc", imaged.ImageQuery{MemberStatus: "accepted", Limit: 25,
			Sort: []imaged.SortKey{sk("name", "asc"), sk("size", "desc")}}},
		{`name=in:"a,b",c,,"d\"e"&status=in:active&id=x&tag=+t1+&tag=t2&os_hidden=True&protected=false`, imaged.ImageQuery{
			MemberStatus: "accepted", Limit: 25, Sort: []imaged.SortKey{sk("created_at", "desc")},
			Names: []string{"a,b", "c", "", `d\"e`}, Statuses: []string{"active"}, IDs: []string{"x"},
			Tags: []string{"t1", "t2"}, OSHidden: &tr, Protected: &fa}},
		{"name=2026-01-01T00:00:00Z&disk_format=raw&container_format=in:bare,ovf", imaged.ImageQuery{
			MemberStatus: "accepted", Limit: 25, Sort: []imaged.SortKey{sk("created_at", "desc")},
			Names: []string{"2026-01-01T00:00:00Z"}, DiskFormat: []string{"raw"}, ContainerFormat: []string{"bare", "ovf"}}},
		{"created_at=gt:2026-11-22T08:00:00%2B01:00&created_at=lte:2026-11-22&updated_at=2026-11-22T08:00:00.5Z",
			imaged.ImageQuery{MemberStatus: "accepted", Limit: 25, Sort: []imaged.SortKey{sk("created_at", "desc")},
				CreatedAt: []imaged.TimeFilter{{Op: "lte", Value: ts("2026-11-22T00:00:00Z")}},
				UpdatedAt: []imaged.TimeFilter{{Op: "eq", Value: ts("2026-11-22T08:00:00.5Z")}}}},
		{"size_min=5&size_max=5&owner=projA&checksum=abc&os_hash_value=def&hw_x=1&hw_x=2", imaged.ImageQuery{
			MemberStatus: "accepted", Limit: 25, Sort: []imaged.SortKey{sk("created_at", "desc")},
			SizeMin: &n5, SizeMax: &n5, Owners: []string{"projA"}, Checksum: "abc", OSHashValue: "def",
			Properties: map[string]string{"hw_x": "2"}}},
	} {
		lq, err := parseListQuery(parseParams(tc.raw), 25, 1000)
		if err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		got, _ := json.Marshal(lq.q)
		want, _ := json.Marshal(tc.want)
		if string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.raw, got, want)
		}
	}
}

func TestParseISOTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"2026-11-22T08:00:00Z", "2026-11-22T08:00:00Z"},
		{"2026-11-22T08:00:00+01:00", "2026-11-22T07:00:00Z"},
		{"2026-11-22T08:00:00-0130", "2026-11-22T09:30:00Z"},
		{"2026-11-22 08:00", "2026-11-22T08:00:00Z"},
		{"2026-11-22", "2026-11-22T00:00:00Z"},
		{"20261122T080000Z", "2026-11-22T08:00:00Z"},
		{"2026-11-22T08:00:00.123456Z", "2026-11-22T08:00:00.123456Z"},
		{"2026-02-30", ""},
		{"2026-13-01", ""},
		{"yesterday", ""},
		{"2026-11-22T25:00:00Z", ""},
	} {
		got, err := parseISOTime(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s: accepted as %v", tc.in, got)
			}
			continue
		}
		if err != nil || got.Format(time.RFC3339Nano) != tc.want {
			t.Errorf("%s: %v %v, want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestSplitFilterValueForQuotes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{`a,b`, []string{"a", "b"}, ""},
		{`"a,b",c`, []string{"a,b", "c"}, ""},
		{`a,,b`, []string{"a", "", "b"}, ""},
		{`x"a"`, nil, `Invalid filter value x"a". There is no comma before opening quotation mark.`},
		{`"a"x`, nil, `Invalid filter value "a"x. There is no comma after closing quotation mark.`},
		{`"a`, nil, `Invalid filter value "a. The quote is not closed.`},
	} {
		got, err := splitFilterValueForQuotes(tc.in)
		if tc.err != "" {
			if imaged.ErrorMessage(err) != tc.err {
				t.Errorf("%s: err %v", tc.in, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q %v", tc.in, got, err)
		}
	}
}

// FuzzParseListQuery: the parser never panics and fails only with EINVALID.
func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{"", "limit=5&marker=x", `name=in:"a,b",c`, "sort=name:asc,size", "sort_key=a&sort_dir=b",
		"created_at=gt:2026-01-01T00:00:00Z", "size_min=1_000", "tag=a&tag=b", "%zz=%", "os_hidden=TRUE&protected=x",
		`status=in:"\"",`, "limit=99999999999999999999999", "x_min=1", "a=b=c&&&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		lq, err := parseListQuery(parseParams(raw), 25, 1000)
		if err != nil {
			if imaged.ErrorCode(err) != imaged.EINVALID {
				t.Fatalf("%q: %v", raw, err)
			}
			return
		}
		if lq.limit < 0 || lq.limit > 1000 || len(lq.q.Sort) == 0 {
			t.Fatalf("%q: limit %d sort %v", raw, lq.limit, lq.q.Sort)
		}
		_ = encodeParams(lastValues(parseParams(raw)))
	})
}

// FuzzParsePatch: the patch parser never panics and fails only with
// EINVALID or EFORBIDDEN.
func FuzzParsePatch(f *testing.F) {
	for _, s := range []string{`[{"op":"add","path":"/a","value":1}]`, `[{"replace":"/name","value":"x"}]`, `[{"op":"remove","path":"/locations/0"}]`, `[{"op":"add","path":"/~01","value":null}]`} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, body string, v21 bool) {
		v, err := decodeJSON([]byte(body))
		if err != nil {
			return
		}
		ops, err := parsePatch(v, v21)
		if err != nil {
			if c := imaged.ErrorCode(err); c != imaged.EINVALID && c != imaged.EFORBIDDEN {
				t.Fatalf("%q: %v", body, err)
			}
			return
		}
		for _, op := range ops {
			if !strings.HasPrefix(op.Path, "/") || op.NoReplaceOnAdd == v21 {
				t.Fatalf("%q: %+v", body, op)
			}
		}
	})
}

func TestAppendPyString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"plain", `"plain"`},
		{"é<&>", `"é<&>"`},
		{"a\"b\\c\n\t\x01\x7f", `"a\"b\\c\n\t\u0001` + "\x7f" + `"`},
		{"bad\xffutf8", "\"bad\ufffdutf8\""},
	} {
		if got := string(appendPyString(nil, tc.in)); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.in, got, tc.want)
		}
	}
}

func benchImage() *imaged.Image {
	name := "cirros-0.6.2-x86_64-disk"
	size, vsize := int64(21430272), int64(117440512)
	ts := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	return &imaged.Image{ID: "0e282ae9-b5ca-4187-aee7-8d91c7acb543", Name: &name, Status: imaged.StatusActive,
		Visibility: imaged.VisibilityPublic, Owner: "projA", DiskFormat: "qcow2", ContainerFormat: "bare",
		Size: &size, VirtualSize: &vsize, Checksum: "c8fc807773e5354afe61636071771906", OSHashAlgo: "sha512",
		OSHashValue: strings.Repeat("ab", 64), MinDisk: 1, MinRAM: 64, CreatedAt: ts, UpdatedAt: ts,
		Tags: []string{"cirros", "test"}, Properties: map[string]string{"os_distro": "cirros", "hw_disk_bus": "virtio", "description": "tiny"}}
}

// BenchmarkRenderImageList measures one page of 20 images, the hot path of
// listings, against encoding/json over the equivalent maps.
func BenchmarkRenderImageList(b *testing.B) {
	imgs := make([]*imaged.Image, 20)
	for i := range imgs {
		imgs[i] = benchImage()
	}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 32<<10)
		for b.Loop() {
			buf = appendImageList(buf[:0], imgs, "/v2/images?limit=20", "/v2/images?limit=20&marker=x")
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding_json_maps", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			list := make([]map[string]any, len(imgs))
			for i, img := range imgs {
				m := map[string]any{"name": *img.Name, "disk_format": img.DiskFormat, "container_format": img.ContainerFormat,
					"visibility": img.Visibility, "size": img.Size, "virtual_size": img.VirtualSize, "status": img.Status,
					"checksum": img.Checksum, "protected": img.Protected, "min_ram": img.MinRAM, "min_disk": img.MinDisk,
					"owner": img.Owner, "os_hidden": img.OSHidden, "os_hash_algo": img.OSHashAlgo, "os_hash_value": img.OSHashValue,
					"id": img.ID, "created_at": img.CreatedAt.Format(glanceTime), "updated_at": img.UpdatedAt.Format(glanceTime),
					"tags": img.Tags, "self": "/v2/images/" + img.ID, "file": "/v2/images/" + img.ID + "/file", "schema": "/v2/schemas/image"}
				for k, v := range img.Properties {
					m[k] = v
				}
				list[i] = m
			}
			_, _ = json.Marshal(map[string]any{"images": list, "first": "/v2/images?limit=20", "schema": "/v2/schemas/images"})
		}
	})
}

// TestRenderAllocs keeps the renderer cheap: only the sorted property keys
// of each image allocate.
func TestRenderAllocs(t *testing.T) {
	imgs := []*imaged.Image{benchImage(), benchImage()}
	buf := make([]byte, 0, 16<<10)
	allocs := testing.AllocsPerRun(100, func() { buf = appendImageList(buf[:0], imgs, "/v2/images", "") })
	if allocs > 2 {
		t.Errorf("%v allocations for 2 images", allocs)
	}
}
