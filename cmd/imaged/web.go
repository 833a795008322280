package main

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/console"
	"github.com/imaged/imaged/metrics"
	"github.com/imaged/imaged/uploadapi"
)

// withWeb adds what people use from a browser or a monitoring system:
// the browser upload endpoint, the web console and /metrics; every
// request (these and the APIs behind next) is measured. It matches paths
// itself rather than with a ServeMux, whose path cleaning and redirects
// would change paths that glanceapi inspects.
func withWeb(next http.Handler, reg *metrics.Registry, images imaged.ImageService, authn imaged.Authenticator, authURI, metricsToken string, log *slog.Logger) http.Handler {
	up := uploadapi.New(uploadapi.Config{Images: images, Auth: authn, AuthURI: authURI, Logger: log})
	con, met := console.Handler(), reg.TokenHandler(metricsToken)
	return reg.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == uploadapi.Path:
			up.ServeHTTP(w, r)
		case p == "/console" || strings.HasPrefix(p, console.Prefix):
			con.ServeHTTP(w, r)
		case p == "/metrics":
			met.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	}))
}
