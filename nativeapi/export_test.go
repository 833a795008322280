package nativeapi

import "net/http"

// RouteList returns the "METHOD pattern" routes of a handler made by New,
// for the test that keeps them and openapi.json in step.
func RouteList(h http.Handler) []string { return h.(*api).routeList() }
