package imaged

import (
	"math"
	"math/big"
	"regexp"
	"sort"
	"strings"
)

// Resource values keep their text form ("2", "0.5", "512m", "32G"); these
// functions give them numeric meaning. Memory slots ("mem" and any
// "<device>.mem") are byte sizes; every other slot is a non-negative
// decimal. Unlike upstream (spec §4.5), cpu minimums compare numerically:
// "10" > "2".

const (
	defaultCPUMin = "1"
	defaultMemMin = "1073741824" // 1 GiB
	maxNumberLen  = 64           // digits in a value; longer cannot be a sane resource amount
)

var (
	decimalRE  = regexp.MustCompile(`^[0-9]+(?:\.[0-9]+)?$`)
	slotNameRE = regexp.MustCompile(`^[a-z0-9._-]+$`)
)

// binaryUnits are the size suffixes; a suffix at index i means 1024^(i+1).
const binaryUnits = "kmgtpezy"

// ParseBinarySize parses a byte size: a non-negative decimal with an
// optional k/m/g/t/p/e/z/y suffix (powers of 1024, any case) and an
// optional "b", "ib" or "bytes" ending: "1073741824", "512m", "32G",
// "1GiB", "1.5g", "100bytes". The result must be whole bytes and fit in an
// int64. "inf" is math.MaxInt64. Errors are EINVALID.
func ParseBinarySize(s string) (int64, error) {
	e := strings.ToLower(strings.TrimSpace(s))
	if e == "inf" || e == "infinity" {
		return math.MaxInt64, nil
	}
	if strings.HasPrefix(e, "-") {
		return 0, Errorf(EINVALID, "invalid size %s: negative sizes are not allowed", quoteShort(s))
	}
	needUnit := false
	switch {
	case strings.HasSuffix(e, "bytes"):
		e = strings.TrimSuffix(e, "bytes")
	case strings.HasSuffix(e, "ib"):
		e, needUnit = strings.TrimSuffix(e, "ib"), true // "ib" only follows a unit: "kib", never "1ib"
	case strings.HasSuffix(e, "b"):
		e = strings.TrimSuffix(e, "b")
	}
	exp := 0
	if e != "" {
		if x := strings.IndexByte(binaryUnits, e[len(e)-1]); x >= 0 {
			exp, e = x+1, e[:len(e)-1]
		} else if needUnit {
			e = "" // reported below
		}
	}
	if e == "" || len(e) > maxNumberLen || !decimalRE.MatchString(e) {
		return 0, Errorf(EINVALID, "invalid size %s: want a number with an optional k/m/g/t/p/e suffix (powers of 1024), e.g. \"512m\", \"32G\", \"1GiB\"", quoteShort(s))
	}
	v, _ := new(big.Rat).SetString(e)
	v.Mul(v, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), uint(10*exp))))
	if !v.IsInt() {
		return 0, Errorf(EINVALID, "invalid size %s: fractional bytes are not allowed", quoteShort(s))
	}
	n := v.Num()
	if !n.IsInt64() {
		return 0, Errorf(EINVALID, "invalid size %s: too large", quoteShort(s))
	}
	return n.Int64(), nil
}

// isByteSlot says whether a slot's values are byte sizes.
func isByteSlot(slot string) bool {
	return slot == "mem" || strings.HasSuffix(slot, ".mem")
}

// resourceValue parses a value of slot into a number; inf reports an
// unbounded value ("inf").
func resourceValue(slot, v string) (r *big.Rat, inf bool, err error) {
	if isByteSlot(slot) {
		n, err := ParseBinarySize(v)
		if err != nil {
			return nil, false, err
		}
		if n == math.MaxInt64 {
			return nil, true, nil
		}
		return new(big.Rat).SetInt64(n), false, nil
	}
	t := strings.ToLower(strings.TrimSpace(v))
	if t == "inf" || t == "infinity" {
		return nil, true, nil
	}
	if len(t) > maxNumberLen || !decimalRE.MatchString(t) {
		return nil, false, Errorf(EINVALID, "invalid value %s for slot %s: want a non-negative decimal number", quoteShort(v), quoteShort(slot))
	}
	r, _ = new(big.Rat).SetString(t)
	return r, false, nil
}

// CompareResourceValues compares two values of a slot numerically and
// returns -1, 0 or +1. Errors (EINVALID) name the value that does not
// parse.
func CompareResourceValues(slot, a, b string) (int, error) {
	ra, ia, err := resourceValue(slot, a)
	if err != nil {
		return 0, err
	}
	rb, ib, err := resourceValue(slot, b)
	if err != nil {
		return 0, err
	}
	switch {
	case ia && ib:
		return 0, nil
	case ia:
		return 1, nil
	case ib:
		return -1, nil
	}
	return ra.Cmp(rb), nil
}

// ValidateResourceLimits checks operator-set limits: slot names of
// [a-z0-9._-], a parseable min, and an optional max not below min.
// Errors are EINVALID and name the slot.
func ValidateResourceLimits(limits map[string]ResourceLimit) error {
	slots := make([]string, 0, len(limits))
	for s := range limits {
		slots = append(slots, s)
	}
	sort.Strings(slots) // the first error is the same on every call
	for _, slot := range slots {
		l := limits[slot]
		if !slotNameRE.MatchString(slot) {
			return Errorf(EINVALID, "invalid resource slot name %s: want lowercase letters, digits, '.', '_' or '-'", quoteShort(slot))
		}
		if strings.TrimSpace(l.Min) == "" {
			return Errorf(EINVALID, "resource limit %s: min is required", quoteShort(slot))
		}
		if _, _, err := resourceValue(slot, l.Min); err != nil {
			return Errorf(EINVALID, "resource limit %s: invalid min %s", quoteShort(slot), quoteShort(l.Min))
		}
		if l.Max == "" {
			continue
		}
		c, err := CompareResourceValues(slot, l.Max, l.Min)
		if err != nil {
			return Errorf(EINVALID, "resource limit %s: invalid max %s", quoteShort(slot), quoteShort(l.Max))
		}
		if c < 0 {
			return Errorf(EINVALID, "resource limit %s: max %s is below min %s", quoteShort(slot), quoteShort(l.Max), quoteShort(l.Min))
		}
	}
	return nil
}

// EffectiveLimits merges the label-derived minimums with the operator's
// custom limits (spec §4.5). Label side: cpu min "1" and mem min
// "1073741824" by default, overridden and extended by every
// ai.backend.resource.min.<slot> label. Merge: custom limits first, slots
// missing from custom filled from the labels; for cpu and mem the min is
// the larger of the two, compared numerically (ties and unparseable
// label values keep the custom text), so an operator cannot lower a
// minimum the image needs. The result is a fresh map, never nil.
func EffectiveLimits(labels map[string]string, custom map[string]ResourceLimit) map[string]ResourceLimit {
	fromLabels := map[string]ResourceLimit{
		"cpu": {Min: defaultCPUMin},
		"mem": {Min: defaultMemMin},
	}
	for k, v := range labels {
		if slot, ok := strings.CutPrefix(k, LabelResourceMin); ok && slot != "" {
			fromLabels[slot] = ResourceLimit{Min: v}
		}
	}
	out := make(map[string]ResourceLimit, len(custom)+len(fromLabels))
	for slot, l := range custom {
		out[slot] = l
	}
	for slot, l := range fromLabels {
		c, ok := out[slot]
		if !ok {
			out[slot] = l
			continue
		}
		if slot != "cpu" && slot != "mem" {
			continue
		}
		if cmp, err := CompareResourceValues(slot, l.Min, c.Min); err == nil && cmp > 0 {
			c.Min = l.Min
			out[slot] = c
		} else if err != nil {
			// Keep whichever side parses: a custom min that does not
			// parse must not hide a valid label minimum.
			if _, _, cerr := resourceValue(slot, c.Min); cerr != nil {
				if _, _, lerr := resourceValue(slot, l.Min); lerr == nil {
					c.Min = l.Min
					out[slot] = c
				}
			}
		}
	}
	return out
}
