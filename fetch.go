package imaged

import (
	"context"
	"io"
)

// URLFetcher opens remote image data for the web-download import method.
// Implementations (webfetch) guard against server-side request forgery:
// they refuse schemes, hosts, ports and address ranges that operators have
// not allowed, re-check every redirect and every resolved address, bound
// redirects and time out. Errors: EINVALID for a URL that is malformed or
// not allowed (the message says which rule refused it), EUNAVAILABLE for a
// remote that cannot be reached or answers with an error status.
type URLFetcher interface {
	// Fetch starts a GET of rawURL and returns its body and its length
	// (-1 when the remote does not say).
	Fetch(ctx context.Context, rawURL string) (body io.ReadCloser, size int64, err error)
}
