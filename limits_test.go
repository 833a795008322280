package imaged

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseBinarySize(t *testing.T) {
	t.Parallel()
	const gi = 1 << 30
	ok := map[string]int64{
		"0":                   0,
		"1073741824":          gi,
		"1GiB":                gi,
		"1gib":                gi,
		"1G":                  gi,
		"1g":                  gi,
		"1gb":                 gi,
		"512m":                512 << 20,
		"256m":                256 << 20,
		"32G":                 32 * gi,
		"4k":                  4096,
		"1.5g":                gi + gi/2,
		"0.5k":                512,
		"1t":                  1 << 40,
		"1p":                  1 << 50,
		"1e":                  1 << 60,
		"7e":                  7 << 60,
		"100b":                100,
		"100bytes":            100,
		"2kbytes":             2048,
		" 8g ":                8 * gi,
		"inf":                 math.MaxInt64,
		"INF":                 math.MaxInt64,
		"0z":                  0,
		"9223372036854775807": math.MaxInt64,
	}
	for in, want := range ok {
		got, err := ParseBinarySize(in)
		if err != nil || got != want {
			t.Errorf("ParseBinarySize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                      "want a number",
		"g":                     "want a number",
		"1.5":                   "fractional bytes",
		"1.5b":                  "fractional bytes",
		"0.1k":                  "fractional bytes",
		"-1":                    "negative",
		"-1g":                   "negative",
		"8e":                    "too large",
		"1z":                    "too large",
		"9223372036854775808":   "too large",
		"1ib":                   "want a number",
		"1x":                    "want a number",
		"1e3":                   "want a number",
		"1 g":                   "want a number",
		"0x10":                  "want a number",
		"1.":                    "want a number",
		".5g":                   "want a number",
		strings.Repeat("9", 70): "want a number",
	}
	for in, msg := range bad {
		_, err := ParseBinarySize(in)
		if ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), msg) {
			t.Errorf("ParseBinarySize(%q) = %v, want EINVALID containing %q", in, err, msg)
		}
	}
}

func TestCompareResourceValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		slot, a, b string
		want       int
	}{
		{"cpu", "10", "2", 1}, // upstream compared strings and got this wrong
		{"cpu", "2", "10", -1},
		{"cpu", "2", "2.0", 0},
		{"cpu", "0.5", "1", -1},
		{"cpu", "inf", "1000", 1},
		{"cuda.shares", "0.1", "0.10", 0},
		{"mem", "1g", "1073741824", 0},
		{"mem", "512m", "1073741824", -1},
		{"mem", "4g", "512m", 1},
		{"mem", "inf", "1e", 1},
		{"cuda.mem", "2g", "1g", 1},
	}
	for _, c := range cases {
		got, err := CompareResourceValues(c.slot, c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("CompareResourceValues(%q, %q, %q) = %d, %v; want %d", c.slot, c.a, c.b, got, err, c.want)
		}
	}
	for _, c := range [][3]string{{"cpu", "1g", "1"}, {"cpu", "1", "-1"}, {"mem", "x", "1"}, {"cpu", "1/2", "1"}} {
		if _, err := CompareResourceValues(c[0], c[1], c[2]); ErrorCode(err) != EINVALID {
			t.Errorf("CompareResourceValues(%q) = %v, want EINVALID", c, err)
		}
	}
}

func TestValidateResourceLimits(t *testing.T) {
	t.Parallel()
	good := []map[string]ResourceLimit{
		nil,
		{"cpu": {Min: "2", Max: "8"}},
		{"cpu": {Min: "2", Max: "10"}}, // numeric, not string order
		{"mem": {Min: "512m", Max: "8g"}, "cuda.device": {Min: "1"}, "cuda.shares": {Min: "0.5", Max: "inf"}},
		{"mem": {Min: "1g", Max: "1073741824"}},
	}
	for _, l := range good {
		if err := ValidateResourceLimits(l); err != nil {
			t.Errorf("ValidateResourceLimits(%v) = %v", l, err)
		}
	}
	bad := []struct {
		limits map[string]ResourceLimit
		msg    string
	}{
		{map[string]ResourceLimit{"CPU": {Min: "1"}}, "invalid resource slot name \"CPU\""},
		{map[string]ResourceLimit{"": {Min: "1"}}, "invalid resource slot name"},
		{map[string]ResourceLimit{"cpu": {}}, "resource limit \"cpu\": min is required"},
		{map[string]ResourceLimit{"cpu": {Min: "two"}}, "resource limit \"cpu\": invalid min"},
		{map[string]ResourceLimit{"cpu": {Min: "8", Max: "2"}}, "resource limit \"cpu\": max \"2\" is below min \"8\""},
		{map[string]ResourceLimit{"cpu": {Min: "10", Max: "9"}}, "is below min"},
		{map[string]ResourceLimit{"mem": {Min: "1g", Max: "512m"}}, "resource limit \"mem\": max"},
		{map[string]ResourceLimit{"mem": {Min: "1g", Max: "lots"}}, "resource limit \"mem\": invalid max"},
		{map[string]ResourceLimit{"cpu": {Min: "1"}, "mem": {Min: "1.5"}}, "resource limit \"mem\": invalid min"},
	}
	for _, c := range bad {
		err := ValidateResourceLimits(c.limits)
		if ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), c.msg) {
			t.Errorf("ValidateResourceLimits(%v) = %v, want EINVALID containing %q", c.limits, err, c.msg)
		}
	}
}

// TestEffectiveLimits covers every example of spec §4.5 and the limit
// scenarios 50-57 of §6.7 (as pure merges of labels and custom limits).
func TestEffectiveLimits(t *testing.T) {
	t.Parallel()
	defaults := map[string]ResourceLimit{"cpu": {Min: "1"}, "mem": {Min: "1073741824"}}
	with := func(extra map[string]ResourceLimit) map[string]ResourceLimit {
		m := map[string]ResourceLimit{}
		for k, v := range defaults {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name   string
		labels map[string]string
		custom map[string]ResourceLimit
		want   map[string]ResourceLimit
	}{
		{"4.5 custom cuda.device", map[string]string{}, map[string]ResourceLimit{"cuda.device": {Min: "1"}},
			with(map[string]ResourceLimit{"cuda.device": {Min: "1"}})},
		{"4.5/50/51/57 after clear", map[string]string{}, nil, defaults},
		{"4.5/52 cpu 2..8", nil, map[string]ResourceLimit{"cpu": {Min: "2", Max: "8"}},
			with(map[string]ResourceLimit{"cpu": {Min: "2", Max: "8"}})},
		{"4.5/53 mem below label default", nil, map[string]ResourceLimit{"mem": {Min: "536870912", Max: "8589934592"}},
			with(map[string]ResourceLimit{"mem": {Min: "1073741824", Max: "8589934592"}})},
		{"4.5 label mem replaces default", map[string]string{"ai.backend.resource.min.mem": "128m"}, nil,
			with(map[string]ResourceLimit{"mem": {Min: "128m"}})},
		{"4.5 custom mem above label", map[string]string{"ai.backend.resource.min.mem": "256m"},
			map[string]ResourceLimit{"mem": {Min: "512m", Max: "4g"}},
			with(map[string]ResourceLimit{"mem": {Min: "512m", Max: "4g"}})},
		{"54 cpu then cuda.device", nil, map[string]ResourceLimit{"cpu": {Min: "2", Max: "8"}, "cuda.device": {Min: "1", Max: "2"}},
			with(map[string]ResourceLimit{"cpu": {Min: "2", Max: "8"}, "cuda.device": {Min: "1", Max: "2"}})},
		{"55 second overwrites", nil, map[string]ResourceLimit{"cpu": {Min: "8", Max: "32"}},
			with(map[string]ResourceLimit{"cpu": {Min: "8", Max: "32"}})},
		{"cpu numeric not string", map[string]string{"ai.backend.resource.min.cpu": "2"},
			map[string]ResourceLimit{"cpu": {Min: "10"}}, with(map[string]ResourceLimit{"cpu": {Min: "10"}})},
		{"cpu label wins", map[string]string{"ai.backend.resource.min.cpu": "4"},
			map[string]ResourceLimit{"cpu": {Min: "2", Max: "8"}}, with(map[string]ResourceLimit{"cpu": {Min: "4", Max: "8"}})},
		{"tie keeps custom text", map[string]string{"ai.backend.resource.min.mem": "1g"},
			map[string]ResourceLimit{"mem": {Min: "1073741824"}}, with(map[string]ResourceLimit{"mem": {Min: "1073741824"}})},
		{"other slots custom wins", map[string]string{"ai.backend.resource.min.cuda.device": "2"},
			map[string]ResourceLimit{"cuda.device": {Min: "1"}}, with(map[string]ResourceLimit{"cuda.device": {Min: "1"}})},
		{"fixture cuda labels", fixtureLabels()["bai/cuda:12.1-py311"], nil, map[string]ResourceLimit{
			"cpu": {Min: "2"}, "mem": {Min: "4g"}, "cuda.device": {Min: "1"}, "cuda.shares": {Min: "0.1"}}},
		{"bad custom min yields to label", nil, map[string]ResourceLimit{"mem": {Min: "junk", Max: "4g"}},
			with(map[string]ResourceLimit{"mem": {Min: "1073741824", Max: "4g"}})},
	}
	for _, c := range cases {
		got := EffectiveLimits(c.labels, c.custom)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: EffectiveLimits = %v, want %v", c.name, got, c.want)
		}
	}
	// The inputs are not modified.
	custom := map[string]ResourceLimit{"mem": {Min: "1"}}
	EffectiveLimits(nil, custom)
	if custom["mem"].Min != "1" || len(custom) != 1 {
		t.Errorf("EffectiveLimits modified custom: %v", custom)
	}
}

func FuzzParseBinarySize(f *testing.F) {
	for _, s := range []string{"0", "1g", "1GiB", "1.5g", "512m", "inf", "-1", "8e", "1.5", "100bytes", "1ib"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBinarySize(s)
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("ParseBinarySize(%q) error code %q", s, ErrorCode(err))
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseBinarySize(%q) = %d < 0", s, n)
		}
		if n != math.MaxInt64 {
			// A plain byte count re-parses to itself.
			if again, err := ParseBinarySize(strconv.FormatInt(n, 10)); err != nil || again != n {
				t.Fatalf("re-parse of %d = %d, %v", n, again, err)
			}
		}
	})
}
