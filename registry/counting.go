package registry

import (
	"net/http"
	"sync/atomic"
)

// CountingTransport is an http.RoundTripper that counts the requests it
// carries, for benchmarks and tests that measure requests per tag
// (Options.Transport). Next nil means http.DefaultTransport.
type CountingTransport struct {
	Next http.RoundTripper
	n    atomic.Int64
}

// RoundTrip implements http.RoundTripper.
func (t *CountingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.n.Add(1)
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(req)
}

// Requests returns the number of requests so far.
func (t *CountingTransport) Requests() int64 { return t.n.Load() }

// Reset sets the count back to zero.
func (t *CountingTransport) Reset() { t.n.Store(0) }

// countingView counts on parent's counter but sends through next (the
// client's insecure clone of parent's transport).
type countingView struct {
	parent *CountingTransport
	next   http.RoundTripper
}

func (v *countingView) RoundTrip(req *http.Request) (*http.Response, error) {
	v.parent.n.Add(1)
	return v.next.RoundTrip(req)
}
