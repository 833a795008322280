package registrytest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/imaged/imaged/registry/registrytest"
)

// TestPushMany pushes 2,000 tags (the size of a rescan benchmark) and
// checks that the registry lists them all.
func TestPushMany(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 2,000 tags")
	}
	s := registrytest.Start(t, registrytest.Options{})
	start := time.Now()
	repos := registrytest.PushMany(t, s.Host, 4, 500)
	t.Logf("PushMany: 2,000 tags in %v", time.Since(start))
	if len(repos) != 4 || repos[0] != "many/r000" {
		t.Fatalf("repos = %v", repos)
	}
	for _, r := range repos {
		resp, body, err := s.Get(context.Background(), "/v2/"+r+"/tags/list", nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("tags of %s: %v %v", r, resp, err)
		}
		var tl struct{ Tags []string }
		if err := json.Unmarshal(body, &tl); err != nil || len(tl.Tags) != 500 {
			t.Fatalf("%s has %d tags (%v), want 500", r, len(tl.Tags), err)
		}
	}
}

// TestStartAuth: with credentials the registry refuses anonymous
// requests, and Server.Get (which sends them) is let in.
func TestStartAuth(t *testing.T) {
	t.Parallel()
	s := registrytest.Start(t, registrytest.Options{Username: "u", Password: "p", Filesystem: true})
	resp, err := http.Get(s.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous /v2/ = %d, want 401", resp.StatusCode)
	}
	got, _, err := s.Get(context.Background(), "/v2/", nil)
	if err != nil || got.StatusCode != http.StatusOK {
		t.Fatalf("authenticated /v2/ = %v, %v", got, err)
	}
}
