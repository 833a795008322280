package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/imaged/imaged"
)

// failure maps an error of a registry operation to an *imaged.Error. what
// names the thing operated on ("repository bai/python", "bai/python:3.9")
// for ENOTFOUND messages. The result wraps the imaged error and keeps the
// cause's text (with the password, should it ever appear, blanked) for
// logs.
func failure(reg *imaged.Registry, what string, err error) error {
	if err == nil {
		return nil
	}
	var ie *imaged.Error
	if errors.As(err, &ie) {
		return err
	}
	code, msg := classify(reg, what, err)
	return fmt.Errorf("%w (%s)", imaged.Errorf(code, "%s", msg), redact(reg, err.Error()))
}

func classify(reg *imaged.Registry, what string, err error) (code, msg string) {
	var te *transport.Error
	if errors.As(err, &te) {
		return classifyHTTP(reg, what, te.StatusCode, diagCodes(te))
	}
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce x509.CertificateInvalidError
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ue) || errors.As(err, &he) || errors.As(err, &ce) || errors.As(err, &ve) {
		return imaged.EUNAVAILABLE, fmt.Sprintf("registry %s presented a certificate that cannot be verified (verify_tls false skips the check)", reg.Name)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return imaged.EUNAVAILABLE, fmt.Sprintf("registry %s did not answer in time", reg.Name)
	}
	if errors.Is(err, context.Canceled) {
		return imaged.EUNAVAILABLE, fmt.Sprintf("request to registry %s was cancelled", reg.Name)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) {
		return imaged.EUNAVAILABLE, fmt.Sprintf("registry %s is unreachable", reg.Name)
	}
	// Anything else (the ping's joined errors, a broken connection, a
	// response that is not what the protocol promises) means the
	// registry cannot be used right now.
	return imaged.EUNAVAILABLE, fmt.Sprintf("registry %s failed", reg.Name)
}

// classifyHTTP maps a status and the registry's error codes.
func classifyHTTP(reg *imaged.Registry, what string, status int, codes []string) (string, string) {
	has := func(c string) bool {
		for _, x := range codes {
			if x == c {
				return true
			}
		}
		return false
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden || has("UNAUTHORIZED") || has("DENIED"):
		if reg.Username == "" && reg.Password == "" {
			return imaged.EUNAUTHORIZED, fmt.Sprintf("registry %s requires credentials", reg.Name)
		}
		return imaged.EUNAUTHORIZED, fmt.Sprintf("registry %s refused the credentials", reg.Name)
	case status == http.StatusMethodNotAllowed || has("UNSUPPORTED"):
		return imaged.EREFUSED, fmt.Sprintf("registry %s does not support this operation (%d)", reg.Name, status)
	case status == http.StatusNotFound || has("NAME_UNKNOWN") || has("MANIFEST_UNKNOWN") || has("BLOB_UNKNOWN"):
		return imaged.ENOTFOUND, fmt.Sprintf("%s not found in registry %s", what, reg.Name)
	case status == http.StatusTooManyRequests || status >= 500:
		return imaged.EUNAVAILABLE, fmt.Sprintf("registry %s is failing (HTTP %d)", reg.Name, status)
	case status == http.StatusBadRequest:
		return imaged.EINVALID, fmt.Sprintf("registry %s rejected the request for %s (%s)", reg.Name, what, strings.Join(codes, ", "))
	}
	return imaged.EUNAVAILABLE, fmt.Sprintf("registry %s answered HTTP %d", reg.Name, status)
}

func diagCodes(te *transport.Error) []string {
	var out []string
	for _, d := range te.Errors {
		out = append(out, string(d.Code))
	}
	return out
}

// redact blanks the registry's password in text that may be logged.
func redact(reg *imaged.Registry, s string) string {
	if reg.Password != "" {
		s = strings.ReplaceAll(s, reg.Password, "***")
	}
	return s
}

func invalidf(format string, args ...any) error {
	return imaged.Errorf(imaged.EINVALID, format, args...)
}
