package imaged_test

import (
	"slices"
	"testing"

	"github.com/imaged/imaged"
)

func TestIfMatchVersions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		values      []string
		want        []int64
		conditional bool
	}{
		{"no header", nil, nil, false},
		{"star", []string{`*`}, nil, false},
		{"one", []string{`"img-3"`}, []int64{3}, true},
		{"list over two headers", []string{`"img-3", "other-4"`, `"img-7"`}, []int64{3, 7}, true},
		{"weak never matches", []string{`W/"img-3"`}, []int64{}, true},
		{"another row's", []string{`"img2-3"`}, []int64{}, true},
		{"not a number", []string{`"img-x"`, `"img-"`}, []int64{}, true},
		{"garbage skipped", []string{`foo, "img-5", bar`}, []int64{5}, true},
		{"unterminated", []string{`"img-5`}, []int64{}, true},
	} {
		got, cond := imaged.IfMatchVersions(tc.values, "img")
		if cond != tc.conditional || !slices.Equal(got, tc.want) || (tc.conditional && got == nil) {
			t.Errorf("%s: IfMatchVersions(%q) = %v, %v; want %v, %v", tc.name, tc.values, got, cond, tc.want, tc.conditional)
		}
	}
}

func TestNoneMatch(t *testing.T) {
	t.Parallel()
	cur := imaged.ETag("img", 2)
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{`*`}, true},
		{[]string{`"img-2"`}, true},
		{[]string{`W/"img-2"`}, true},
		{[]string{`"img-1", "img-2"`}, true},
		{[]string{`"img-1"`}, false},
		{[]string{`img-2`}, false},
	} {
		if got := imaged.NoneMatch(tc.values, cur); got != tc.want {
			t.Errorf("NoneMatch(%q, %s) = %v, want %v", tc.values, cur, got, tc.want)
		}
	}
}

func FuzzParseEntityTags(f *testing.F) {
	for _, s := range []string{`"a-1"`, `W/"a-1", "b"`, `*`, `"unterminated`, `,,"x"`, `W/`, `"a-9223372036854775808"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tags, _ := imaged.ParseEntityTags([]string{h})
		for _, tag := range tags {
			if len(tag) < 2 || tag[len(tag)-1] != '"' {
				t.Fatalf("bad tag %q from %q", tag, h)
			}
		}
		versions, cond := imaged.IfMatchVersions([]string{h}, "a")
		if cond && versions == nil {
			t.Fatalf("conditional If-Match %q with a nil version list", h)
		}
	})
}
