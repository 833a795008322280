package imaged

import (
	"sort"
	"strconv"
	"strings"
)

// Label names checked by ValidateLabels besides those in container.go.
const (
	LabelRole          = "ai.backend.role"
	LabelServicePorts  = "ai.backend.service-ports"
	LabelEndpointPorts = "ai.backend.endpoint-ports"
	LabelModelPath     = "ai.backend.model-path"
	LabelModelFormat   = "ai.backend.model-format"
)

// servicePort is one entry of the service-ports label.
type servicePort struct {
	name     string
	protocol string
	ports    []int
}

// parseServicePorts parses "name:proto:port" or "name:proto:[p1,p2]"
// entries separated by commas (commas inside brackets belong to the
// entry), as Backend.AI's parse_service_ports does.
func parseServicePorts(v string) ([]servicePort, error) {
	var out []servicePort
	names := map[string]bool{}
	used := map[int]bool{}
	rest := strings.TrimSpace(v)
	for rest != "" {
		var entry string
		if i := strings.IndexByte(rest, '['); i >= 0 && (strings.IndexByte(rest, ',') < 0 || i < strings.IndexByte(rest, ',')) {
			j := strings.IndexByte(rest, ']')
			if j < i {
				return nil, Errorf(EINVALID, "label %s: unterminated '[' in %s", LabelServicePorts, quoteShort(rest))
			}
			entry, rest = rest[:j+1], rest[j+1:]
			if rest != "" && rest[0] != ',' {
				return nil, Errorf(EINVALID, "label %s: unexpected %s after %s", LabelServicePorts, quoteShort(rest), quoteShort(entry))
			}
			rest = strings.TrimPrefix(rest, ",")
		} else {
			entry, rest, _ = strings.Cut(rest, ",")
		}
		entry = strings.TrimSpace(entry)
		parts := strings.SplitN(entry, ":", 3)
		if len(parts) != 3 {
			return nil, Errorf(EINVALID, "label %s: entry %s is not name:protocol:port", LabelServicePorts, quoteShort(entry))
		}
		sp := servicePort{name: parts[0], protocol: parts[1]}
		if sp.name == "" || strings.Trim(sp.name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			return nil, Errorf(EINVALID, "label %s: invalid service name %s (letters, digits, '_' or '-')", LabelServicePorts, quoteShort(sp.name))
		}
		switch sp.protocol {
		case "tcp", "http", "pty", "preopen":
		default:
			return nil, Errorf(EINVALID, "label %s: service %s has unknown protocol %s (want tcp, http, pty or preopen)", LabelServicePorts, quoteShort(sp.name), quoteShort(sp.protocol))
		}
		ports := parts[2]
		if strings.HasPrefix(ports, "[") && strings.HasSuffix(ports, "]") {
			ports = ports[1 : len(ports)-1]
		}
		for _, p := range strings.Split(ports, ",") {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 || p[0] == '+' || p[0] == '0' {
				return nil, Errorf(EINVALID, "label %s: service %s has invalid port %s (want 1..65535)", LabelServicePorts, quoteShort(sp.name), quoteShort(p))
			}
			if used[n] {
				return nil, Errorf(EINVALID, "label %s: port %d is declared twice", LabelServicePorts, n)
			}
			used[n] = true
			sp.ports = append(sp.ports, n)
		}
		if names[sp.name] {
			return nil, Errorf(EINVALID, "label %s: service %s is declared twice", LabelServicePorts, quoteShort(sp.name))
		}
		names[sp.name] = true
		out = append(out, sp)
	}
	return out, nil
}

// ValidateLabels checks the ai.backend.* labels of a Backend.AI image
// (spec §1.4, §4.5 rule 1). Only images carrying ai.backend.kernelspec
// are checked; foreign images pass as they are. Errors are EINVALID and
// name the label and what is wrong with it.
func ValidateLabels(labels map[string]string) error {
	ks, ok := labels[LabelKernelspec]
	if !ok {
		return nil
	}
	if n, err := strconv.Atoi(strings.TrimSpace(ks)); err != nil || n != 1 {
		return Errorf(EINVALID, "label %s: must be 1, got %s", LabelKernelspec, quoteShort(ks))
	}
	role := "COMPUTE"
	if r, ok := labels[LabelRole]; ok {
		role = strings.ToUpper(strings.TrimSpace(r))
		switch role {
		case "COMPUTE", "INFERENCE", "SYSTEM":
		default:
			return Errorf(EINVALID, "label %s: must be COMPUTE, INFERENCE or SYSTEM, got %s", LabelRole, quoteShort(r))
		}
	}
	ports, err := parseServicePorts(labels[LabelServicePorts])
	if err != nil {
		return err
	}
	if role == "INFERENCE" {
		ep := strings.TrimSpace(labels[LabelEndpointPorts])
		if ep == "" {
			return Errorf(EINVALID, "label %s: required when %s is INFERENCE", LabelEndpointPorts, LabelRole)
		}
		for _, e := range strings.Split(ep, ",") {
			e = strings.TrimSpace(e)
			if !isPreopenPort(ports, e) {
				return Errorf(EINVALID, "label %s: %s is not a service port with protocol preopen in %s", LabelEndpointPorts, quoteShort(e), LabelServicePorts)
			}
		}
		for _, l := range []string{LabelModelPath, LabelModelFormat} {
			if strings.TrimSpace(labels[l]) == "" {
				return Errorf(EINVALID, "label %s: required when %s is INFERENCE", l, LabelRole)
			}
		}
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first error is the same on every call
	for _, k := range keys {
		slot, ok := strings.CutPrefix(k, LabelResourceMin)
		if !ok {
			continue
		}
		if !slotNameRE.MatchString(slot) {
			return Errorf(EINVALID, "label %s: invalid resource slot name %s", k, quoteShort(slot))
		}
		if _, _, err := resourceValue(slot, labels[k]); err != nil {
			return Errorf(EINVALID, "label %s: invalid minimum %s (%s)", k, quoteShort(labels[k]), ErrorMessage(err))
		}
	}
	if owner, ok := labels[LabelCustomizedOwner]; ok {
		if id, found := strings.CutPrefix(owner, "user:"); !found || id == "" {
			return Errorf(EINVALID, "label %s: must be \"user:<user id>\", got %s", LabelCustomizedOwner, quoteShort(owner))
		}
	}
	return nil
}

// isPreopenPort says whether e names (or numbers) a preopen service port.
func isPreopenPort(ports []servicePort, e string) bool {
	for _, p := range ports {
		if p.protocol != "preopen" {
			continue
		}
		if p.name == e {
			return true
		}
		for _, n := range p.ports {
			if strconv.Itoa(n) == e {
				return true
			}
		}
	}
	return false
}

// AcceleratorsFromLabels returns the accelerators an image supports (spec
// §4.5 rule 4): nil ("*", any) for a foreign image without kernelspec;
// otherwise the sorted union of the ai.backend.accelerators list and the
// device part of every ai.backend.resource.{min,max}.<device>.<x> key,
// cpu and mem excluded; an empty, non-nil slice when there are none.
func AcceleratorsFromLabels(labels map[string]string) []string {
	if _, ok := labels[LabelKernelspec]; !ok {
		return nil
	}
	set := map[string]bool{}
	for _, a := range strings.Split(labels[LabelAccelerators], ",") {
		if a = strings.TrimSpace(a); a != "" {
			set[a] = true
		}
	}
	for k := range labels {
		rest, ok := strings.CutPrefix(k, LabelResourceMin)
		if !ok {
			rest, ok = strings.CutPrefix(k, LabelResourceMax)
		}
		if !ok {
			continue
		}
		dev, _, _ := strings.Cut(rest, ".")
		if dev != "" && dev != "cpu" && dev != "mem" {
			set[dev] = true
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
