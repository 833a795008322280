package catalog_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blob/fs"
	"github.com/imaged/imaged/catalog"
)

// storesEnv is a catalog with three named stores, each a real directory:
// fast (the default, the dataEnv's blob store), slow and cold.
type storesEnv struct {
	*dataEnv
	svc    *catalog.Service
	stores map[string]imaged.BlobStore
}

func newStoresEnv(t *testing.T, extra ...catalog.NamedStore) *storesEnv {
	t.Helper()
	e := newDataEnv(t, "legacy", catalog.Config{UploadLease: 3 * time.Second})
	se := &storesEnv{dataEnv: e, stores: map[string]imaged.BlobStore{"fast": e.blobs}}
	named := []catalog.NamedStore{{Name: "fast", Description: "Fast store", Blobs: e.blobs}}
	for _, n := range []string{"slow", "cold"} {
		b, err := fs.New(t.TempDir(), fs.WithBufferSize(0))
		if err != nil {
			t.Fatal(err)
		}
		se.stores[n] = b
		named = append(named, catalog.NamedStore{Name: n, Blobs: b})
	}
	for _, x := range extra {
		se.stores[x.Name] = x.Blobs
		named = append(named, x)
	}
	svc, err := e.svc.WithStores(named, "fast")
	if err != nil {
		t.Fatal(err)
	}
	se.svc = svc.WithImports(e.store, catalog.ImportConfig{})
	t.Cleanup(func() { se.svc.Close(context.Background()) })
	return se
}

// keys lists the committed blobs of one store.
func (se *storesEnv) keys(store string) []string {
	se.t.Helper()
	var keys []string
	if err := se.stores[store].List(context.Background(), "", func(b imaged.BlobInfo) error {
		keys = append(keys, b.Key)
		return nil
	}); err != nil {
		se.t.Fatal(err)
	}
	return keys
}

// read returns a blob's bytes.
func (se *storesEnv) read(store, key string) []byte {
	se.t.Helper()
	rc, err := se.stores[store].Open(context.Background(), key, 0, -1)
	if err != nil {
		se.t.Fatalf("open %s in %s: %v", key, store, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		se.t.Fatal(err)
	}
	return b
}

// locStores lists the stores of an image's locations, checking each
// location's Glance shape (metadata {"store": name}) and bytes.
func (se *storesEnv) locStores(img *imaged.Image, data []byte) []string {
	se.t.Helper()
	var out []string
	for _, l := range img.Locations {
		if l.Metadata["store"] != l.Store || l.Store == "" {
			se.t.Fatalf("location %+v: want the store in Store and metadata", l)
		}
		key, _ := strings.CutPrefix(l.URL, "blob:///")
		if got := se.read(l.Store, key); !bytes.Equal(got, data) {
			se.t.Fatalf("store %s holds %d bytes, want the image's %d", l.Store, len(got), len(data))
		}
		out = append(out, l.Store)
	}
	return out
}

// upload stores data into a new raw image, in store ("" = the default).
func (se *storesEnv) upload(store string, data []byte) *imaged.Image {
	se.t.Helper()
	img := se.image("raw")
	ctx := as(owner)
	if store != "" {
		ctx = imaged.WithStore(ctx, store)
	}
	out, err := se.svc.UploadImage(ctx, img.ID, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		se.t.Fatal(err)
	}
	return out
}

// importAndWait imports and waits for the task's end.
func (se *storesEnv) importAndWait(ctx context.Context, id string, body map[string]any) *imaged.Task {
	se.t.Helper()
	name := body["method"].(map[string]any)["name"].(string)
	tk, err := se.svc.ImportImage(ctx, id, imaged.ImportRequest{Method: name, Body: body})
	if err != nil {
		se.t.Fatalf("import: %v", err)
	}
	return waitTask(se.t, se.dataEnv, tk.ID)
}

func TestStoresConfig(t *testing.T) {
	t.Parallel()
	se := newStoresEnv(t)
	want := []imaged.StoreInfo{{ID: "fast", Description: "Fast store", Default: true}, {ID: "slow"}, {ID: "cold"}}
	if got := se.svc.Stores(); !slices.Equal(got, want) {
		t.Fatalf("Stores() = %+v, want %+v", got, want)
	}
	if m := se.svc.ImportMethods(); !slices.Contains(m, imaged.ImportCopyImage) {
		t.Fatalf("import methods %v lack copy-image with three stores", m)
	}
	// The implicit single store: no stores, no copy-image.
	single := se.dataEnv.svc.WithImports(se.store, catalog.ImportConfig{})
	if got := single.Stores(); got != nil {
		t.Fatalf("single store: Stores() = %+v, want nil", got)
	}
	if m := single.ImportMethods(); slices.Contains(m, imaged.ImportCopyImage) {
		t.Fatalf("single store announces copy-image: %v", m)
	}
	for _, tc := range []struct {
		name   string
		stores []catalog.NamedStore
		def    string
	}{
		{"none", nil, "a"},
		{"unknown default", []catalog.NamedStore{{Name: "a", Blobs: se.blobs}}, "b"},
		{"duplicate", []catalog.NamedStore{{Name: "a", Blobs: se.blobs}, {Name: "a", Blobs: se.blobs}}, "a"},
		{"bad name", []catalog.NamedStore{{Name: "a/b", Blobs: se.blobs}}, "a/b"},
		{"reserved name", []catalog.NamedStore{{Name: "os_glance_staging_store", Blobs: se.blobs}}, "os_glance_staging_store"},
		{"no blobs", []catalog.NamedStore{{Name: "a"}}, "a"},
	} {
		if _, err := se.dataEnv.svc.WithStores(tc.stores, tc.def); err == nil {
			t.Errorf("%s: WithStores accepted it", tc.name)
		}
	}
}

func TestStoresUploadToNamedStore(t *testing.T) {
	t.Parallel()
	se := newStoresEnv(t)
	data := randomBytes(21, 300<<10+5)
	for _, tc := range []struct{ header, want string }{{"", "fast"}, {"slow", "slow"}, {"cold", "cold"}} {
		img := se.upload(tc.header, data)
		if got := se.locStores(img, data); !slices.Equal(got, []string{tc.want}) {
			t.Fatalf("header %q: stores %v, want [%s]", tc.header, got, tc.want)
		}
		if back := download(t, se.svc, owner, img.ID, 0, -1); !bytes.Equal(back, data) {
			t.Fatalf("header %q: download differs", tc.header)
		}
	}
	if n := len(se.keys("slow")); n != 1 {
		t.Fatalf("slow holds %d blobs, want 1", n)
	}
	// An unknown store is Glance's 400, before anything moves.
	img := se.image("raw")
	_, err := se.svc.UploadImage(imaged.WithStore(as(owner), "nope"), img.ID, bytes.NewReader(data), int64(len(data)))
	if imaged.ErrorCode(err) != imaged.EINVALID || imaged.ErrorMessage(err) != "Store for identifier nope not found" {
		t.Fatalf("unknown store: %v", err)
	}
	if got := se.get(img.ID); got.Status != imaged.StatusQueued {
		t.Fatalf("after refusal: %s", got.Status)
	}
	// Glance's stage ignores the header: staged bytes go to its staging
	// area whatever it says, and the import decides the stores.
	if err := se.svc.StageImage(imaged.WithStore(as(owner), "nope"), img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("stage with a store header: %v", err)
	}
}

func TestStoresImport(t *testing.T) {
	t.Parallel()
	se := newStoresEnv(t)
	data := randomBytes(22, 1<<20+3)
	for _, tc := range []struct {
		name string
		body map[string]any
		ctx  context.Context
		want []string
	}{
		{"default", map[string]any{}, as(owner), []string{"fast"}},
		{"header", map[string]any{}, imaged.WithStore(as(owner), "cold"), []string{"cold"}},
		{"stores", map[string]any{"stores": []any{"slow", "cold"}}, as(owner), []string{"slow", "cold"}},
		{"all_stores", map[string]any{"all_stores": true}, as(owner), []string{"fast", "slow", "cold"}},
	} {
		img := se.image("raw")
		if err := se.svc.StageImage(as(owner), img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		tc.body["method"] = map[string]any{"name": "glance-direct"}
		tk := se.importAndWait(tc.ctx, img.ID, tc.body)
		if tk.Status != imaged.TaskSuccess {
			t.Fatalf("%s: task %s: %s", tc.name, tk.Status, tk.Message)
		}
		got := se.get(img.ID)
		wantHashes(t, got, data)
		if s := se.locStores(got, data); !slices.Equal(s, tc.want) {
			t.Fatalf("%s: stores %v, want %v", tc.name, s, tc.want)
		}
		if v := got.Properties["os_glance_importing_to_stores"]; v != "" {
			t.Fatalf("%s: os_glance_importing_to_stores = %q after the import", tc.name, v)
		}
		wantBackend := make([]any, len(tc.want))
		for i, n := range tc.want {
			wantBackend[i] = n
		}
		if b, _ := tk.Input["backend"].([]any); !slices.Equal(b, wantBackend) {
			t.Fatalf("%s: task backend %v, want %v", tc.name, tk.Input["backend"], wantBackend)
		}
	}
	// Glance's refusals of the stores asked for.
	img := se.image("raw")
	if err := se.svc.StageImage(as(owner), img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	gd := map[string]any{"name": "glance-direct"}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		body map[string]any
		code string
		msg  string
	}{
		{"unknown", as(owner), map[string]any{"method": gd, "stores": []any{"fast", "nope"}}, imaged.ECONFLICT, "Store for identifier nope not found"},
		{"unknown header", imaged.WithStore(as(owner), "nope"), map[string]any{"method": gd}, imaged.ECONFLICT, "Store for identifier nope not found"},
		{"all and stores", as(owner), map[string]any{"method": gd, "all_stores": true, "stores": []any{"fast"}}, imaged.EINVALID, "All_stores parameter can't be used with x-image-meta-store header or stores parameter"},
		{"stores and header", imaged.WithStore(as(owner), "fast"), map[string]any{"method": gd, "stores": []any{"fast"}}, imaged.EINVALID, "Stores parameter and x-image-meta-store header can't be both specified"},
	} {
		_, err := se.svc.ImportImage(tc.ctx, img.ID, imaged.ImportRequest{Method: "glance-direct", Body: tc.body})
		if imaged.ErrorCode(err) != tc.code || imaged.ErrorMessage(err) != tc.msg {
			t.Errorf("%s: %v; want %s %q", tc.name, err, tc.code, tc.msg)
		}
	}
	if got := se.get(img.ID); got.Status != imaged.StatusUploading {
		t.Fatalf("refused imports moved the image to %s", got.Status)
	}
}

// brokenStore is a real directory store whose writes fail once a blob
// has received limit bytes: a disk that fills up.
type brokenStore struct {
	imaged.BlobStore
	limit int
}

type brokenWriter struct {
	imaged.BlobWriter
	left int
}

func (b brokenStore) Create(ctx context.Context, key string) (imaged.BlobWriter, error) {
	w, err := b.BlobStore.Create(ctx, key)
	if err != nil {
		return nil, err
	}
	return &brokenWriter{BlobWriter: w, left: b.limit}, nil
}

func (w *brokenWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		return 0, errors.New("no space left on device")
	}
	w.left -= len(p)
	return w.BlobWriter.Write(p)
}

func TestStoresImportPartialFailure(t *testing.T) {
	t.Parallel()
	fsb, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	se := newStoresEnv(t, catalog.NamedStore{Name: "full", Blobs: brokenStore{BlobStore: fsb, limit: 512 << 10}})
	data := randomBytes(23, 2<<20)
	gd := map[string]any{"name": "glance-direct"}

	// all_stores_must_succeed false: the import succeeds without the
	// full store, which os_glance_failed_import names.
	img := se.image("raw")
	if err := se.svc.StageImage(as(owner), img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	tk := se.importAndWait(as(owner), img.ID, map[string]any{"method": gd, "stores": []any{"slow", "full"}, "all_stores_must_succeed": false})
	if tk.Status != imaged.TaskSuccess {
		t.Fatalf("task %s: %s", tk.Status, tk.Message)
	}
	got := se.get(img.ID)
	if s := se.locStores(got, data); !slices.Equal(s, []string{"slow"}) {
		t.Fatalf("stores %v, want [slow]", s)
	}
	if v := got.Properties["os_glance_failed_import"]; v != "full" {
		t.Fatalf("os_glance_failed_import = %q, want full", v)
	}

	// must succeed (the default): the whole import fails, nothing is
	// kept in any store, the image is back to queued.
	img = se.image("raw")
	if err := se.svc.StageImage(as(owner), img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	before := len(se.keys("slow"))
	tk = se.importAndWait(as(owner), img.ID, map[string]any{"method": gd, "stores": []any{"slow", "full"}})
	if tk.Status != imaged.TaskFailure {
		t.Fatalf("task %s, want failure", tk.Status)
	}
	got = se.get(img.ID)
	if got.Status != imaged.StatusQueued || len(got.Locations) != 0 {
		t.Fatalf("after the failure: %s, %v", got.Status, got.Locations)
	}
	if v := got.Properties["os_glance_failed_import"]; v != "full" {
		t.Fatalf("os_glance_failed_import = %q, want full", v)
	}
	if n := len(se.keys("slow")); n != before {
		t.Fatalf("slow keeps %d blobs, want %d", n, before)
	}
	if n := len(se.keys("full")); n != 0 {
		t.Fatalf("full keeps %d blobs", n)
	}
}

func TestStoresCopyImage(t *testing.T) {
	t.Parallel()
	se := newStoresEnv(t)
	data := randomBytes(24, 700<<10+1)
	img := se.upload("", data)
	copyTo := func(who *imaged.Identity, body map[string]any) (*imaged.Task, error) {
		body["method"] = map[string]any{"name": "copy-image"}
		return se.svc.ImportImage(as(who), img.ID, imaged.ImportRequest{Method: "copy-image", Body: body})
	}
	// Glance's copy_image rule: admins only, by default.
	if _, err := copyTo(owner, map[string]any{"stores": []any{"slow"}}); imaged.ErrorCode(err) != imaged.EFORBIDDEN {
		t.Fatalf("owner copies: %v", err)
	}
	if _, err := copyTo(admin, map[string]any{"stores": []any{"fast"}}); imaged.ErrorCode(err) != imaged.EINVALID ||
		imaged.ErrorMessage(err) != "Image is already present at store 'fast'" {
		t.Fatalf("copy into its own store: %v", err)
	}
	tk, err := copyTo(admin, map[string]any{"stores": []any{"slow"}})
	if err != nil {
		t.Fatal(err)
	}
	if done := waitTask(t, se.dataEnv, tk.ID); done.Status != imaged.TaskSuccess {
		t.Fatalf("copy: %s %s", done.Status, done.Message)
	}
	got := se.get(img.ID)
	wantHashes(t, got, data)
	if s := se.locStores(got, data); !slices.Equal(s, []string{"fast", "slow"}) {
		t.Fatalf("stores after copy %v", s)
	}
	if got.Lease != nil || got.Properties["os_glance_importing_to_stores"] != "" {
		t.Fatalf("copy left lease %+v, props %v", got.Lease, got.Properties)
	}
	// all_stores copies only where the image is missing.
	tk, err = copyTo(admin, map[string]any{"all_stores": true})
	if err != nil {
		t.Fatal(err)
	}
	if done := waitTask(t, se.dataEnv, tk.ID); done.Status != imaged.TaskSuccess || !slices.Equal(done.Input["backend"].([]any), []any{"cold"}) {
		t.Fatalf("all_stores copy: %s %s %v", done.Status, done.Message, done.Input["backend"])
	}
	if s := se.locStores(se.get(img.ID), data); !slices.Equal(s, []string{"fast", "slow", "cold"}) {
		t.Fatalf("stores after all_stores copy %v", s)
	}
	// Everywhere already: Glance answers 202 and starts nothing.
	if tk, err := copyTo(admin, map[string]any{"all_stores": true}); err != nil || tk != nil {
		t.Fatalf("copy to no store: %v, %v", tk, err)
	}
	// Only active images are copied.
	queued := se.image("raw")
	_, err = se.svc.ImportImage(as(admin), queued.ID, imaged.ImportRequest{Method: "copy-image",
		Body: map[string]any{"method": map[string]any{"name": "copy-image"}, "stores": []any{"slow"}}})
	if imaged.ErrorCode(err) != imaged.ECONFLICT || imaged.ErrorMessage(err) != "Only images with status active can be targeted for copying" {
		t.Fatalf("copy of a queued image: %v", err)
	}
}

func TestStoresCopyVerifiesHashes(t *testing.T) {
	t.Parallel()
	se := newStoresEnv(t)
	data := randomBytes(25, 400<<10)
	img := se.upload("", data)
	// The bytes rot in the source store: same length, other content.
	key, _ := strings.CutPrefix(img.Locations[0].URL, "blob:///")
	rotten := bytes.Clone(data)
	rotten[1000] ^= 0xff
	w, err := se.stores["fast"].Create(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(rotten)
	if _, err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	tk := se.importAndWait(as(admin), img.ID, map[string]any{"method": map[string]any{"name": "copy-image"}, "stores": []any{"slow"}})
	if tk.Status != imaged.TaskFailure || !strings.Contains(tk.Message, "os_hash_value") {
		t.Fatalf("copy of rotten bytes: %s %q", tk.Status, tk.Message)
	}
	got := se.get(img.ID)
	if got.Status != imaged.StatusActive || len(got.Locations) != 1 || got.Lease != nil {
		t.Fatalf("after a refused copy: %s %v lease %+v", got.Status, got.Locations, got.Lease)
	}
	if v := got.Properties["os_glance_failed_import"]; v != "slow" {
		t.Fatalf("os_glance_failed_import = %q, want slow", v)
	}
	if _, locked := got.Properties["os_glance_import_task"]; locked {
		t.Fatal("lock left behind")
	}
	if n := len(se.keys("slow")); n != 0 {
		t.Fatalf("slow keeps %d blobs of a refused copy", n)
	}
}

func TestStoresDeleteFromStore(t *testing.T) {
	t.Parallel()
	se := newStoresEnv(t)
	data := randomBytes(26, 100<<10)
	img := se.upload("", data)
	tk := se.importAndWait(as(admin), img.ID, map[string]any{"method": map[string]any{"name": "copy-image"}, "stores": []any{"slow"}})
	if tk.Status != imaged.TaskSuccess {
		t.Fatalf("copy: %s", tk.Message)
	}
	queued := se.image("raw")
	for _, tc := range []struct {
		name, store, id string
		who             *imaged.Identity
		code, msg       string
	}{
		{"unknown store", "nope", img.ID, owner, imaged.ECONFLICT, "The selected store nope is not available on this node."},
		{"unknown image", "slow", "00000000-0000-0000-0000-0000000000aa", owner, imaged.ENOTFOUND, "Failed to find image 00000000-0000-0000-0000-0000000000aa"},
		{"not active", "slow", queued.ID, owner, imaged.ECONFLICT, "It's not allowed to remove image data from store if image status is not 'active'"},
		{"not stored there", "cold", img.ID, owner, imaged.ENOTFOUND, "Image " + img.ID + " is not stored in store cold."},
		{"other project", "slow", img.ID, other, imaged.ENOTFOUND, "Failed to find image " + img.ID},
	} {
		err := se.svc.DeleteFromStore(as(tc.who), tc.store, tc.id)
		if imaged.ErrorCode(err) != tc.code || imaged.ErrorMessage(err) != tc.msg {
			t.Errorf("%s: %v; want %s %q", tc.name, err, tc.code, tc.msg)
		}
	}
	if err := se.svc.DeleteFromStore(as(owner), "slow", img.ID); err != nil {
		t.Fatal(err)
	}
	got := se.get(img.ID)
	if s := se.locStores(got, data); !slices.Equal(s, []string{"fast"}) {
		t.Fatalf("stores after delete %v", s)
	}
	if n := len(se.keys("slow")); n != 0 {
		t.Fatalf("slow keeps %d blobs", n)
	}
	err := se.svc.DeleteFromStore(as(owner), "fast", img.ID)
	if imaged.ErrorCode(err) != imaged.EFORBIDDEN || imaged.ErrorMessage(err) != "Cannot delete image data from the only store containing it. Consider deleting the image instead." {
		t.Fatalf("last location: %v", err)
	}
	// Without named stores the route does not exist (Glance's bare 404).
	if err := se.dataEnv.svc.DeleteFromStore(as(owner), "fast", img.ID); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Fatalf("single store: %v", err)
	}
}

func TestStoresSweepAndDelete(t *testing.T) {
	t.Parallel()
	se := newStoresEnv(t)
	ctx := context.Background()
	data := randomBytes(27, 10<<10)
	live := se.upload("cold", data)
	liveKey, _ := strings.CutPrefix(live.Locations[0].URL, "blob:///")
	gone := se.upload("slow", data)
	goneKey, _ := strings.CutPrefix(gone.Locations[0].URL, "blob:///")
	// Orphans in every store: another image's key, a stale key of the
	// live image, and the live key in a store that does not hold it.
	orphans := map[string]string{"fast": liveKey, "slow": "images/" + live.ID + "/stale", "cold": "images/00000000-0000-0000-0000-00000000000b/z"}
	for store, key := range orphans {
		w, err := se.stores[store].Create(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("x"))
		if _, err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Deleting an image removes its bytes from its store.
	if err := se.svc.DeleteImage(as(owner), gone.ID); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(se.keys("slow"), goneKey) {
		t.Fatal("deleted image's bytes kept")
	}
	if n, err := se.svc.SweepOrphans(ctx); err != nil || n != 0 {
		t.Fatalf("swept %d, %v within the grace period", n, err)
	}
	se.skew.Store(int64(time.Minute))
	n, err := se.svc.SweepOrphans(ctx)
	if err != nil || n != len(orphans) {
		t.Fatalf("swept %d, %v; want %d", n, err, len(orphans))
	}
	for store, keys := range map[string][]string{"fast": se.keys("fast"), "slow": se.keys("slow"), "cold": se.keys("cold")} {
		want := []string(nil)
		if store == "cold" {
			want = []string{liveKey}
		}
		if !slices.Equal(keys, want) {
			t.Errorf("%s holds %v, want %v", store, keys, want)
		}
	}
	if back := download(t, se.svc, owner, live.ID, 0, -1); !bytes.Equal(back, data) {
		t.Fatal("live data damaged")
	}
}
