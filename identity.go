package imaged

import "context"

// Identity is who makes a request: a user acting in a project with roles.
// Auth backends (auth package) produce it; policy decides what it may do.
type Identity struct {
	UserID    string
	ProjectID string // the owner of images this identity creates; "" = none
	Roles     []string
	// ServiceRoles are the roles of a valid X-Service-Token sent with the
	// request (an OpenStack service acting for the user); nil = none.
	ServiceRoles []string
}

// HasRole reports whether the identity has the named role (case-insensitive,
// as Keystone role names are).
func (id *Identity) HasRole(role string) bool {
	if id == nil {
		return false
	}
	for _, r := range id.Roles {
		if equalFold(r, role) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// Authenticator turns a request's token into an identity. It returns an
// EUNAUTHORIZED error for a missing or unknown token, EUNAVAILABLE if the
// backend that validates tokens cannot be reached.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*Identity, error)
}

type contextKey int

const (
	identityKey contextKey = iota
	requestIDKey
)

// ServiceAuthenticator is implemented by authenticators that also honour
// an X-Service-Token (Keystone): surfaces call it instead of Authenticate
// when a request carries one.
type ServiceAuthenticator interface {
	AuthenticateWithService(ctx context.Context, token, serviceToken string) (*Identity, error)
}

// NewContextWithIdentity returns a context carrying id.
func NewContextWithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey, id)
}

// IdentityFromContext returns the identity in ctx, or nil.
func IdentityFromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey).(*Identity)
	return id
}

// NewContextWithRequestID returns a context carrying a request id, so that
// logs and background tasks can name the request that caused them.
func NewContextWithRequestID(ctx context.Context, rid string) context.Context {
	return context.WithValue(ctx, requestIDKey, rid)
}

// RequestIDFromContext returns the request id in ctx, or "".
func RequestIDFromContext(ctx context.Context) string {
	rid, _ := ctx.Value(requestIDKey).(string)
	return rid
}
