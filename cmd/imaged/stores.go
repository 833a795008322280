package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/imaged/imaged"
	blobfs "github.com/imaged/imaged/blob/fs"
	blobs3 "github.com/imaged/imaged/blob/s3"
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

// storeSpec is one named store: a local directory (Dir) or a bucket of an
// S3-compatible object store (S3, from an s3:// value).
type storeSpec struct {
	Name, Dir, Description string
	S3                     *blobs3.Config
}

// location describes where a store keeps its blobs, for messages: an s3
// store's URL with its secret key hidden.
func (s storeSpec) location() string {
	if s.S3 != nil {
		return s.S3.String()
	}
	return s.Dir
}

// String keeps a store's secret out of anything that prints it.
func (s storeSpec) String() string { return s.Name + "=" + s.location() }

// redactEntry hides the credentials of an s3:// value quoted in an error
// about a --stores entry (the URL's user information, up to its last @).
func redactEntry(item string) string {
	i := strings.Index(item, "://")
	if i < 0 {
		return item
	}
	if j := strings.LastIndex(item, "@"); j > i {
		return item[:i+3] + "xxxxx" + item[j:]
	}
	return item
}

// register adds the store flags to fs; the returned function parses their
// values once fs.Parse has run.
func (f *storeFlags) register(fs *flag.FlagSet, env func(name, def string) string) func() error {
	// IMAGED_STORES is not the flag's default, which -h would print with
	// the credentials an s3:// value may hold.
	var stores string
	fs.StringVar(&stores, "stores", "", "named image stores, name=dir or name=s3://[ACCESS:SECRET@]host[:port]/bucket[/prefix][?region=R&insecure=true&part_size=N] (credentials otherwise from IMAGED_S3_ACCESS_KEY and IMAGED_S3_SECRET_KEY or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), comma-separated (Glance's enabled_backends); unset: one implicit store in --store-dir (IMAGED_STORES)")
	def := env("DEFAULT_STORE", "")
	fs.StringVar(&def, "default-store", def, "the store uploads and imports use when a request names none (default: the first of --stores) (IMAGED_DEFAULT_STORE)")
	descs := env("STORE_DESCRIPTIONS", "")
	fs.StringVar(&descs, "store-descriptions", descs, "descriptions shown by /v2/info/stores, name=text[;name=text...] (IMAGED_STORE_DESCRIPTIONS)")
	// s3:// values read their credentials from IMAGED_S3_* (through env)
	// or from the AWS tools' variables, which env, being for IMAGED_
	// names only, cannot read.
	getenv := func(name string) string {
		if n, ok := strings.CutPrefix(name, "IMAGED_"); ok {
			return env(n, "")
		}
		return os.Getenv(name)
	}
	return func() error {
		if !isSet(fs, "stores") {
			stores = env("STORES", "")
		}
		return f.parse(stores, def, descs, getenv)
	}
}

func (f *storeFlags) parse(stores, def, descs string, getenv func(string) string) error {
	f.Stores, f.Default = nil, ""
	for _, item := range split(stores) {
		name, dir, ok := strings.Cut(item, "=")
		name, dir = strings.TrimSpace(name), strings.TrimSpace(dir)
		if !ok || name == "" || dir == "" {
			return fmt.Errorf("invalid --stores entry %q: want name=dir or name=s3://...", redactEntry(item))
		}
		if slices.ContainsFunc(f.Stores, func(s storeSpec) bool { return s.Name == name }) {
			return fmt.Errorf("invalid --stores: store %q given twice", name)
		}
		spec := storeSpec{Name: name}
		if strings.HasPrefix(dir, "s3://") {
			cfg, err := blobs3.ParseURL(dir, getenv)
			if err != nil { // ParseURL's errors never quote the secret
				return fmt.Errorf("invalid --stores entry for store %q: %w", name, err)
			}
			spec.S3 = &cfg
		} else {
			spec.Dir = filepath.Clean(dir)
		}
		f.Stores = append(f.Stores, spec)
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
		b, err := openStore(s)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot open image store %s (%s): %w", s.Name, s.location(), err)
		}
		named = append(named, catalog.NamedStore{Name: s.Name, Description: s.Description, Blobs: b})
		all = append(all, b)
	}
	return named, all, nil
}

// s3CheckTimeout bounds the start-up check that an s3 store's bucket is
// reachable.
const s3CheckTimeout = 30 * time.Second

// openStore opens one named store. An s3 store is checked (its bucket
// reachable with its credentials) so that a wrong URL fails the start
// rather than the first upload.
func openStore(s storeSpec) (imaged.BlobStore, error) {
	if s.S3 == nil {
		return blobfs.New(s.Dir, blobfs.WithBufferSize(0))
	}
	b, err := blobs3.New(*s.S3)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s3CheckTimeout)
	defer cancel()
	if err := b.Check(ctx); err != nil {
		return nil, err
	}
	return b, nil
}
