package metrics

import "strings"

// OtherRoute is the route label of every path no pattern matches, so that
// scanners probing random paths cannot grow the number of series.
const OtherRoute = "other"

// DefaultRoutes are the path patterns of imaged's HTTP surfaces: the Glance
// API (/v2), the native API (/api/v1, agents included), the browser upload
// endpoint, the console and /metrics itself. A segment "{x}" matches any one
// non-empty segment; a last segment "{x...}" matches one or more. Literal
// segments win over wildcards (/container-images/scan is not
// /container-images/{id}), as in net/http's mux.
var DefaultRoutes = []string{
	"/",
	"/versions",
	"/v2",
	"/v2/",
	"/v2/images",
	"/v2/images/{id}",
	"/v2/images/{id}/file",
	"/v2/images/{id}/stage",
	"/v2/images/{id}/import",
	"/v2/images/{id}/tasks",
	"/v2/images/{id}/members",
	"/v2/images/{id}/members/{member}",
	"/v2/images/{id}/tags/{tag}",
	"/v2/images/{id}/actions/deactivate",
	"/v2/images/{id}/actions/reactivate",
	"/v2/schemas/{schema}",
	"/v2/schemas/metadefs/{schema}",
	"/v2/info/usage",
	"/v2/info/import",
	"/v2/info/stores",
	"/v2/stores/{store}/{id}",
	"/v2/tasks",
	"/v2/tasks/{id}",
	"/v2/cache",
	"/v2/cache/{id}",
	"/v2/metadefs/namespaces",
	"/v2/metadefs/namespaces/{ns}",
	"/v2/metadefs/namespaces/{ns}/objects",
	"/v2/metadefs/namespaces/{ns}/objects/{name}",
	"/v2/metadefs/namespaces/{ns}/properties",
	"/v2/metadefs/namespaces/{ns}/properties/{name}",
	"/v2/metadefs/namespaces/{ns}/tags",
	"/v2/metadefs/namespaces/{ns}/tags/{name}",
	"/v2/metadefs/namespaces/{ns}/resource_types",
	"/v2/metadefs/namespaces/{ns}/resource_types/{rt}",
	"/v2/metadefs/resource_types",

	"/api/v1/openapi.json",
	"/api/v1/registries",
	"/api/v1/registries/{name}",
	"/api/v1/registries/{name}/rescan",
	"/api/v1/container-images",
	"/api/v1/container-images/resolve",
	"/api/v1/container-images/scan",
	"/api/v1/container-images/forget",
	"/api/v1/container-images/bulk/forget",
	"/api/v1/container-images/bulk/restore",
	"/api/v1/container-images/bulk/purge",
	"/api/v1/container-images/{id}",
	"/api/v1/container-images/{id}/forget",
	"/api/v1/container-images/{id}/restore",
	"/api/v1/container-images/{id}/untag",
	"/api/v1/container-images/{id}/resource-limits",
	"/api/v1/aliases",
	"/api/v1/aliases/{alias...}",
	"/api/v1/tasks/{id}",
	"/api/v1/tasks/{id}/events",
	"/api/v1/audit",
	"/api/v1/agents",
	"/api/v1/agents/purge-images",
	"/api/v1/agents/preload-images",
	"/api/v1/agents/{id}",
	"/api/v1/agents/{id}/token",
	"/api/v1/agents/{id}/register",
	"/api/v1/agents/{id}/heartbeat",
	"/api/v1/uploads",

	"/console",
	"/console/",
	"/console/{file}",
	"/metrics",
}

// node is one segment position of the route trie.
type node struct {
	lits  []edge // literal children, few: a linear scan beats a map
	wild  *node  // "{x}" child
	rest  int    // route index of a "{x...}" child; -1 = none
	route int    // route index ending here; -1 = none
}

type edge struct {
	seg string
	n   *node
}

func newNode() *node { return &node{rest: -1, route: -1} }

// router maps request paths to route indexes; index 0 is OtherRoute.
type router struct {
	root   *node
	labels []string
}

func newRouter(patterns []string) *router {
	rt := &router{root: newNode(), labels: []string{OtherRoute}}
	seen := map[string]bool{}
	for _, p := range patterns {
		if seen[p] || !strings.HasPrefix(p, "/") {
			continue
		}
		seen[p] = true
		idx := len(rt.labels)
		rt.labels = append(rt.labels, p)
		n := rt.root
		segs := strings.Split(p[1:], "/")
		for i, s := range segs {
			if i == len(segs)-1 && strings.HasPrefix(s, "{") && strings.HasSuffix(s, "...}") {
				n.rest = idx
				n = nil
				break
			}
			if len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}' {
				if n.wild == nil {
					n.wild = newNode()
				}
				n = n.wild
				continue
			}
			var next *node
			for _, e := range n.lits {
				if e.seg == s {
					next = e.n
					break
				}
			}
			if next == nil {
				next = newNode()
				n.lits = append(n.lits, edge{s, next})
			}
			n = next
		}
		if n != nil {
			n.route = idx
		}
	}
	return rt
}

// match returns the route index of path, 0 when none matches. It does not
// allocate: segments are substrings of path.
func (rt *router) match(path string) int {
	if path == "" || path[0] != '/' {
		return 0
	}
	path = path[1:]
	// Glance negotiates minor versions in the path: /v2.1/images is
	// /v2/images.
	if strings.HasPrefix(path, "v2.") {
		i := 3
		for i < len(path) && path[i] >= '0' && path[i] <= '9' {
			i++
		}
		if i > 3 && (i == len(path) || path[i] == '/') {
			path = "v2" + path[i:]
			// Only reached for /v2.N paths; the concatenation allocates,
			// which the common /v2 paths never pay.
		}
	}
	if r := matchNode(rt.root, path); r > 0 {
		return r
	}
	return 0
}

func matchNode(n *node, path string) int {
	// strings.IndexByte, not strings.Cut: Cut's general search costs a
	// third of the middleware's time on short segments.
	seg, rest, more := path, "", false
	if i := strings.IndexByte(path, '/'); i >= 0 {
		seg, rest, more = path[:i], path[i+1:], true
	}
	for _, e := range n.lits {
		if e.seg == seg {
			if !more {
				if e.n.route >= 0 {
					return e.n.route
				}
			} else if r := matchNode(e.n, rest); r > 0 {
				return r
			}
			break
		}
	}
	if seg == "" {
		return 0
	}
	if n.wild != nil {
		if !more {
			if n.wild.route >= 0 {
				return n.wild.route
			}
		} else if r := matchNode(n.wild, rest); r > 0 {
			return r
		}
	}
	if n.rest >= 0 {
		return n.rest
	}
	return 0
}
