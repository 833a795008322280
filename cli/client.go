package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// APIError is a refusal by the server: its status, error code, message
// and request id (native API and Glance error shapes alike).
type APIError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
}

func (e *APIError) Error() string { return e.Describe() }

// Describe is the one-line message printed on stderr.
func (e *APIError) Describe() string {
	var b strings.Builder
	b.WriteString(e.Message)
	b.WriteString(" (HTTP ")
	fmt.Fprint(&b, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.RequestID != "" {
		b.WriteString(", request id " + e.RequestID)
	}
	b.WriteString(")")
	return b.String()
}

// client sends requests to one imaged.
type client struct {
	base  string // scheme://host[:port][/prefix], no trailing slash
	token string
	http  *http.Client
}

// request builds a request; body, when not nil, is JSON-encoded unless
// it is already an io.Reader.
func (c *client) request(ctx context.Context, method, path string, query url.Values, body any, ctype string) (*http.Request, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
	case json.RawMessage:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("bad request URL: %w", err)
	}
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		if ctype == "" {
			ctype = "application/json"
		}
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("User-Agent", "imaged-cli")
	return req, nil
}

// send runs req and turns an error status into an *APIError; on success
// the caller owns the body.
func (c *client) send(req *http.Request) (*http.Response, error) {
	res, err := c.http.Do(req)
	if err != nil {
		// The error names the URL, never the token (a header).
		return nil, fmt.Errorf("cannot reach imaged: %w", err)
	}
	if res.StatusCode >= 400 {
		defer res.Body.Close()
		return nil, decodeError(res)
	}
	return res, nil
}

// call sends a JSON request and decodes a JSON answer into out (a
// *json.RawMessage keeps it verbatim); out may be nil.
func (c *client) call(ctx context.Context, method, path string, query url.Values, body, out any) (http.Header, error) {
	return c.callType(ctx, method, path, query, body, "", out)
}

func (c *client) callType(ctx context.Context, method, path string, query url.Values, body any, ctype string, out any) (http.Header, error) {
	return c.callHeader(ctx, method, path, query, body, ctype, nil, out)
}

// callHeader is callType with extra request headers (If-Match).
func (c *client) callHeader(ctx context.Context, method, path string, query url.Values, body any, ctype string, hdr http.Header, out any) (http.Header, error) {
	req, err := c.request(ctx, method, path, query, body, ctype)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	// Answers of the JSON APIs are small; 64 MiB bounds a runaway one.
	data, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s %s: %w", method, path, err)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("the answer of %s %s is not the expected JSON: %w", method, path, err)
		}
	}
	return res.Header, nil
}

// decodeError reads an error response: the native shape
// {"error":{"code","message","request_id"}}, Glance's
// {"message","code","title"}, or plain text.
func decodeError(res *http.Response) *APIError {
	e := &APIError{Status: res.StatusCode, RequestID: res.Header.Get("X-Request-Id")}
	if e.RequestID == "" {
		e.RequestID = res.Header.Get("X-Openstack-Request-Id")
	}
	data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var native struct {
		Error *struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	var glance struct {
		Message string `json:"message"`
		Title   string `json:"title"`
	}
	switch {
	case json.Unmarshal(data, &native) == nil && native.Error != nil:
		e.Code, e.Message = native.Error.Code, native.Error.Message
		if native.Error.RequestID != "" {
			e.RequestID = native.Error.RequestID
		}
	case json.Unmarshal(data, &glance) == nil && glance.Message != "":
		e.Message = glanceMessage(glance.Message)
		e.Code = strings.ToLower(strings.ReplaceAll(glance.Title, " ", "_"))
	default:
		e.Message = strings.TrimSpace(string(data))
	}
	if e.Message == "" {
		e.Message = http.StatusText(res.StatusCode)
	}
	return e
}

// glanceMessage turns webob's "explanation<br /><br />detail" into
// "explanation: detail" (either part may be empty).
func glanceMessage(m string) string {
	var parts []string
	for _, p := range strings.Split(m, "<br /><br />") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ": ")
}

// pathEscape escapes each "/"-separated segment of p (aliases and
// references may hold slashes that the server routes as one name).
func pathEscape(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
