package agentapi

import (
	"net/http"
	"sort"
)

// Routes returns "METHOD pattern" for every route of a handler New made.
func Routes(h http.Handler) []string {
	a := h.(*api)
	var out []string
	for p, ms := range a.routes {
		for _, m := range ms {
			out = append(out, m+" "+p)
		}
	}
	sort.Strings(out)
	return out
}
