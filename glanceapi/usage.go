package glanceapi

import (
	"net/http"
	"strconv"

	"github.com/imaged/imaged"
)

// usageOrder is the order Glance 25.1 renders the quotas in
// (glance/quota/keystone.py get_usage).
var usageOrder = []string{
	imaged.QuotaImageSizeTotal,
	imaged.QuotaImageStageTotal,
	imaged.QuotaImageCountTotal,
	imaged.QuotaImageCountUploading,
}

// mebibyteQuotas are the quotas Glance reports in MiB (its unified limits
// count bytes // units.Mi); the service counts bytes.
var mebibyteQuotas = map[string]bool{imaged.QuotaImageSizeTotal: true, imaged.QuotaImageStageTotal: true}

// getUsage is GET /v2/info/usage: the caller's project's quotas, each with
// its usage and limit, as Glance with use_keystone_limits answers, sizes in
// MiB (rounded down, as Glance does; -1 = unlimited). A service without
// quotas answers {"usage": {}}, as Glance without use_keystone_limits.
// Other methods are a plain 404 there (the route matches GET only).
func (a *api) getUsage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeAPIError(w, r, &apiError{status: http.StatusNotFound, text: defaultExplanation(http.StatusNotFound)})
		return
	}
	us, ok := a.svc.(imaged.UsageService)
	if !ok {
		writeJSON(w, r, http.StatusOK, []byte(`{"usage": {}}`))
		return
	}
	usage, err := us.ProjectUsage(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	// Built by hand to keep Glance's key order and json.dumps spacing.
	b := []byte(`{"usage": {`)
	first := true
	for _, name := range usageOrder {
		q, ok := usage[name]
		if !ok {
			continue
		}
		if mebibyteQuotas[name] {
			q.Usage >>= 20
			if q.Limit > 0 {
				q.Limit >>= 20
			}
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = strconv.AppendQuote(b, name)
		b = append(b, `: {"usage": `...)
		b = strconv.AppendInt(b, q.Usage, 10)
		b = append(b, `, "limit": `...)
		b = strconv.AppendInt(b, q.Limit, 10)
		b = append(b, '}')
	}
	b = append(b, "}}"...)
	writeJSON(w, r, http.StatusOK, b)
}
