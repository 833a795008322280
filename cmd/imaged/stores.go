package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/imaged/imaged"
	blobfs "github.com/imaged/imaged/blob/fs"
	"github.com/imaged/imaged/catalog"
)

// storeFlags are the named stores of `imaged serve` (Glance's
// enabled_backends and default_backend). Without --stores the service has
// one implicit store (--store-dir) and behaves as Glance without
// enabled_backends.
type storeFlags struct {
	// Stores are the named stores, in the order given; empty = the
	// implicit single store.
	Stores []storeSpec
	// Default names the store used when a request names none.
	Default string
}

// storeSpec is one named store: a local directory for now.
type storeSpec struct {
	Name, Dir, Description string
}

// register adds the store flags to fs; the returned function parses their
// values once fs.Parse has run.
func (f *storeFlags) register(fs *flag.FlagSet, env func(name, def string) string) func() error {
	stores := env("STORES", "")
	fs.StringVar(&stores, "stores", stores, "named image stores, name=dir[,name=dir...] (Glance's enabled_backends); unset: one implicit store in --store-dir (IMAGED_STORES)")
	def := env("DEFAULT_STORE", "")
	fs.StringVar(&def, "default-store", def, "the store uploads and imports use when a request names none (default: the first of --stores) (IMAGED_DEFAULT_STORE)")
	descs := env("STORE_DESCRIPTIONS", "")
	fs.StringVar(&descs, "store-descriptions", descs, "descriptions shown by /v2/info/stores, name=text[;name=text...] (IMAGED_STORE_DESCRIPTIONS)")
	return func() error {
		return f.parse(stores, def, descs)
	}
}

func (f *storeFlags) parse(stores, def, descs string) error {
	f.Stores, f.Default = nil, ""
	for _, item := range split(stores) {
		name, dir, ok := strings.Cut(item, "=")
		name, dir = strings.TrimSpace(name), strings.TrimSpace(dir)
		if !ok || name == "" || dir == "" {
			return fmt.Errorf("invalid --stores entry %q: want name=dir", item)
		}
		if slices.ContainsFunc(f.Stores, func(s storeSpec) bool { return s.Name == name }) {
			return fmt.Errorf("invalid --stores: store %q given twice", name)
		}
		f.Stores = append(f.Stores, storeSpec{Name: name, Dir: filepath.Clean(dir)})
	}
	for _, item := range strings.Split(descs, ";") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		name, text, ok := strings.Cut(item, "=")
		i := slices.IndexFunc(f.Stores, func(s storeSpec) bool { return s.Name == strings.TrimSpace(name) })
		if !ok || i < 0 {
			return fmt.Errorf("invalid --store-descriptions entry %q: want name=text for a store of --stores", item)
		}
		f.Stores[i].Description = strings.TrimSpace(text)
	}
	if len(f.Stores) == 0 {
		if def != "" {
			return fmt.Errorf("--default-store %q needs --stores", def)
		}
		return nil
	}
	f.Default = def
	if f.Default == "" {
		f.Default = f.Stores[0].Name
	}
	if !slices.ContainsFunc(f.Stores, func(s storeSpec) bool { return s.Name == f.Default }) {
		return fmt.Errorf("invalid --default-store %q: not one of --stores", f.Default)
	}
	return nil
}

// openStores opens the blob stores: the named ones, or the implicit one in
// storeDir. It returns the catalog's view of them (nil for the implicit
// store) and every blob store, for housekeeping.
func openStores(f storeFlags, storeDir string) ([]catalog.NamedStore, []imaged.BlobStore, error) {
	if len(f.Stores) == 0 {
		// Unbuffered: the catalog already writes in large chunks, and
		// each chunk reaching the file keeps a slow upload's file young
		// for PurgeUploads.
		b, err := blobfs.New(storeDir, blobfs.WithBufferSize(0))
		if err != nil {
			return nil, nil, fmt.Errorf("cannot open image store %s: %w", storeDir, err)
		}
		return nil, []imaged.BlobStore{b}, nil
	}
	var named []catalog.NamedStore
	var all []imaged.BlobStore
	for _, s := range f.Stores {
		b, err := blobfs.New(s.Dir, blobfs.WithBufferSize(0))
		if err != nil {
			return nil, nil, fmt.Errorf("cannot open image store %s (%s): %w", s.Name, s.Dir, err)
		}
		named = append(named, catalog.NamedStore{Name: s.Name, Description: s.Description, Blobs: b})
		all = append(all, b)
	}
	return named, all, nil
}
