package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// stormWriters is the number of concurrent writers of the SQLite storm
// tests (issue 4: no "database is locked" under 16 concurrent writers).
const stormWriters = 16

// stormImage is what a writer expects to find of one image afterwards.
type stormImage struct {
	id      string
	deleted bool
	name    string
	tags    []string
	members map[string]imaged.MemberStatus
}

// stormMin is the number of images each writer completes at least, however
// slow the machine (the storm then outlasts its nominal duration).
const stormMin = 3

// stormWriter creates, patches, shares and deletes its own images on s
// until soft has passed and it has completed stormMin images (or ctx ends),
// and returns what it wrote and the errors it got.
// Each image gets every kind of write: create, two patches (name, tags,
// properties), two members with a status change and a removal, and every
// third image a delete.
func stormWriter(ctx context.Context, soft time.Time, s *sqlstore.Store, w int) ([]stormImage, []error) {
	var out []stormImage
	var errs []error
	fail := func(op string, err error) bool {
		if err == nil {
			return false
		}
		if ctx.Err() != nil { // the storm ended mid-operation
			return true
		}
		errs = append(errs, fmt.Errorf("writer %d %s: %w", w, op, err))
		return true
	}
	for n := 0; ctx.Err() == nil && (n < stormMin || time.Now().Before(soft)); n++ {
		now := time.Now().UTC().Truncate(time.Microsecond)
		im := stormImage{id: fmt.Sprintf("%08x-0000-4000-8000-%012x", w, n), members: map[string]imaged.MemberStatus{}}
		img := &imaged.Image{ID: im.id, Status: imaged.StatusQueued, Visibility: imaged.VisibilityShared,
			Owner: fmt.Sprintf("project-%02d", w), CreatedAt: now, UpdatedAt: now,
			Tags: []string{"storm"}, Properties: map[string]string{"writer": fmt.Sprint(w)}}
		if fail("create", s.CreateImage(ctx, img)) {
			break
		}
		im.tags = []string{"storm"}
		for p := 0; p < 2; p++ {
			name := fmt.Sprintf("w%d-n%d-p%d", w, n, p)
			tag := fmt.Sprintf("patch-%d", p)
			_, err := s.UpdateImage(ctx, im.id, func(i *imaged.Image) error {
				i.Name = &name
				i.Tags = append(i.Tags, tag)
				i.Properties["patch"] = fmt.Sprint(p)
				i.UpdatedAt = time.Now().UTC()
				return nil
			})
			if fail("patch", err) {
				break
			}
			im.name = name
			im.tags = append(im.tags, tag)
		}
		for _, member := range []string{"member-a", "member-b"} {
			m := &imaged.Member{ImageID: im.id, MemberID: member, Status: imaged.MemberPending, CreatedAt: now, UpdatedAt: now}
			if fail("add member", s.CreateMember(ctx, m)) {
				break
			}
			im.members[member] = imaged.MemberPending
		}
		if _, ok := im.members["member-a"]; ok {
			m := &imaged.Member{ImageID: im.id, MemberID: "member-a", Status: imaged.MemberAccepted, UpdatedAt: time.Now().UTC()}
			if !fail("accept member", s.UpdateMember(ctx, m)) {
				im.members["member-a"] = imaged.MemberAccepted
			}
		}
		if _, ok := im.members["member-b"]; ok {
			if !fail("remove member", s.DeleteMember(ctx, im.id, "member-b")) {
				delete(im.members, "member-b")
			}
		}
		if n%3 == 2 {
			if _, err := s.DeleteImage(ctx, im.id, nil); !fail("delete", err) {
				im.deleted = true
			}
		}
		// An interrupted image may be half written (e.g. created, not
		// yet patched); check only the completed ones.
		if ctx.Err() == nil {
			out = append(out, im)
		}
	}
	return out, errs
}

// storm runs stormWriters writers for d, writer w on stores[w%len], plus a
// reader listing on each store, and checks that no operation failed and
// that every write is visible afterwards through check.
func storm(t *testing.T, stores []*sqlstore.Store, check *sqlstore.Store, d time.Duration) {
	t.Helper()
	// The hard limit only guards against a hung test; the writers stop
	// after d once each has completed stormMin images.
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	start := time.Now()
	soft := start.Add(d)
	var writers, readers sync.WaitGroup
	written := make([][]stormImage, stormWriters)
	errs := make([][]error, stormWriters+len(stores))
	for w := range stormWriters {
		writers.Go(func() { written[w], errs[w] = stormWriter(ctx, soft, stores[w%len(stores)], w) })
	}
	// Readers keep WAL snapshots open while the writers commit, as the
	// API's listings do.
	readCtx, stopReaders := context.WithCancel(ctx)
	for r, s := range stores {
		readers.Go(func() {
			for readCtx.Err() == nil {
				_, err := s.ListImages(readCtx, imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, Visibility: "all", Tags: []string{"storm"}, Limit: 50})
				if err != nil && readCtx.Err() == nil {
					errs[stormWriters+r] = append(errs[stormWriters+r], fmt.Errorf("reader %d: %w", r, err))
				}
			}
		})
	}
	writers.Wait()
	elapsed := time.Since(start)
	stopReaders()
	readers.Wait()
	var all []error
	for _, e := range errs {
		all = append(all, e...)
	}
	locked := 0
	for _, err := range all {
		if msg := strings.ToLower(err.Error()); strings.Contains(msg, "locked") || strings.Contains(msg, "busy") {
			locked++
		}
	}
	if len(all) > 0 {
		t.Errorf("%d failed operations (%d of them database is locked/SQLITE_BUSY), first: %v", len(all), locked, all[0])
	}
	total, deleted := 0, 0
	bg := context.Background()
	for w, imgs := range written {
		if len(imgs) < stormMin {
			t.Errorf("writer %d completed %d images, want at least %d", w, len(imgs), stormMin)
		}
		for _, want := range imgs {
			total++
			got, err := check.GetImage(bg, want.id)
			if want.deleted {
				deleted++
				if imaged.ErrorCode(err) != imaged.ENOTFOUND {
					t.Errorf("%s: deleted image: got %v, %v; want not found", want.id, got, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", want.id, err)
				continue
			}
			wantTags := slices.Sorted(slices.Values(want.tags))
			if got.Name == nil || *got.Name != want.name || !slices.Equal(got.Tags, wantTags) || got.Properties["patch"] != "1" {
				t.Errorf("%s: got name %v tags %v properties %v; want name %s tags %v patch 1", want.id, strPtr(got.Name), got.Tags, got.Properties, want.name, wantTags)
			}
			ms, err := check.ListMembers(bg, want.id)
			if err != nil {
				t.Errorf("%s: members: %v", want.id, err)
				continue
			}
			gotMs := map[string]imaged.MemberStatus{}
			for _, m := range ms {
				gotMs[m.MemberID] = m.Status
			}
			if fmt.Sprint(gotMs) != fmt.Sprint(want.members) {
				t.Errorf("%s: members %v, want %v", want.id, gotMs, want.members)
			}
		}
	}
	// Every live image of the storm is listed; the only others are the at
	// most one image per writer that the deadline interrupted.
	var listed int
	q := imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, Visibility: "all", Tags: []string{"storm"}, Limit: 500}
	for {
		page, err := check.ListImages(bg, q)
		if err != nil {
			t.Fatal(err)
		}
		listed += len(page)
		if len(page) < q.Limit {
			break
		}
		q.After = page[len(page)-1]
	}
	if live := total - deleted; listed < live || listed > live+stormWriters {
		t.Errorf("listed %d live storm images, want %d to %d", listed, live, live+stormWriters)
	}
	t.Logf("%d writers on %d store(s) for %v: %d images (%d deleted), %d operations failed", stormWriters, len(stores), elapsed.Round(time.Millisecond), total, deleted, len(all))
}

func openSQLitePath(t *testing.T, path string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Sixteen writers in one process share the store's single writer
// connection: none may see "database is locked".
func TestConcurrentWritersSQLite(t *testing.T) {
	t.Parallel()
	path := sqltest.SQLite(t)
	s := openSQLitePath(t, path)
	storm(t, []*sqlstore.Store{s}, s, 3*time.Second)
}

// Two stores on one file are what two imaged processes sharing a SQLite
// file do: two writer connections contend for SQLite's write lock, which
// busy_timeout and BEGIN IMMEDIATE must turn into waiting, not errors.
func TestConcurrentWritersTwoStoresSQLite(t *testing.T) {
	t.Parallel()
	path := sqltest.SQLite(t)
	a := openSQLitePath(t, path)
	b := openSQLitePath(t, path)
	storm(t, []*sqlstore.Store{a, b}, openSQLitePath(t, path), 3*time.Second)
}

// strPtr renders a nullable string for messages.
func strPtr(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}
