package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/imagecache"
	"github.com/imaged/imaged/metadefs"
	"github.com/imaged/imaged/metrics"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/webfetch"
)

// serveConfig is the configuration of `imaged serve`.
type serveConfig struct {
	Addr       string
	DataDir    string
	Database   string
	Auth       string
	TokensFile string
	Policy     string
	LogFormat  string
	LogLevel   string
	ShutdownIn time.Duration
	// Glance's quota and paging options (image_property_quota,
	// image_tag_quota, image_member_quota, api_limit_max); < 0 = unlimited.
	PropertyQuota int
	TagQuota      int
	MemberQuota   int
	LimitMax      int
	// Image data: the blob store's directory, Glance's image_size_cap
	// and the upload lease (also the period of the recovery sweep).
	StoreDir     string
	ImageSizeCap int64
	UploadLease  time.Duration
	// Per-project quotas (Glance's unified limits); -1 = unlimited.
	Quotas catalog.Quotas
	// Import: enabled methods and web-download's SSRF rules.
	Import importFlags
	// Stores: named stores (--stores), or one implicit store in StoreDir.
	Stores storeFlags
	// DBMaxConns is the database pool size (PostgreSQL: connections per
	// process; SQLite: the read pool); 0 = the store's default.
	DBMaxConns int
	// DBMaxIdleConns caps the pool's idle connections (0 = keep them all);
	// DBConnMaxLifetime recycles connections (0 = never).
	DBMaxIdleConns    int
	DBConnMaxLifetime time.Duration
	// Locations (Glance's show_multiple_locations, show_image_direct_url)
	// and the local image cache (image_cache_dir, image_cache_max_size).
	ShowMultipleLocations bool
	ShowImageDirectURL    bool
	ImageCacheDir         string
	ImageCacheMaxSize     int64
	// Keystone: --auth keystone's endpoint and service user.
	Keystone keystoneFlags
	// Native: the container catalog and node agents (/api/v1).
	Native nativeFlags
	// MetricsToken, when set, is the bearer token /metrics requires.
	MetricsToken string
}

// parseServeFlags reads flags, falling back to IMAGED_* environment
// variables, then to defaults. It validates values so that a bad setting
// stops the process before anything is opened.
func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (*serveConfig, error) {
	fs := flag.NewFlagSet("imaged serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c serveConfig
	env := func(name, def string) string {
		if v := getenv("IMAGED_" + name); v != "" {
			return v
		}
		return def
	}
	envErrs := map[string]error{}
	intFlag := func(fs *flag.FlagSet, p *int, name, envName string, def int, help string) {
		if v := env(envName, ""); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				envErrs[name] = fmt.Errorf("invalid IMAGED_%s %q: want an integer", envName, v)
			} else {
				def = n
			}
		}
		fs.IntVar(p, name, def, help+" (IMAGED_"+envName+")")
	}
	fs.StringVar(&c.Addr, "addr", env("ADDR", "127.0.0.1:9292"), "address to listen on (IMAGED_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", env("DATA_DIR", "./imaged-data"), "directory for the database and image data; created if missing (IMAGED_DATA_DIR)")
	fs.StringVar(&c.Database, "database", env("DATABASE", ""), "metadata database: a SQLite file path or postgres://... (default: imaged.db in the data dir) (IMAGED_DATABASE)")
	fs.StringVar(&c.Auth, "auth", env("AUTH", "none"), "authentication: none (single-user development mode), tokens (a tokens file) or keystone (OpenStack Keystone tokens) (IMAGED_AUTH)")
	c.Keystone.register(fs, env)
	c.Native.register(fs, env)
	fs.StringVar(&c.MetricsToken, "metrics-token", env("METRICS_TOKEN", ""), "when set, /metrics requires Authorization: Bearer <token> (IMAGED_METRICS_TOKEN); unset, /metrics is open: keep it on a private network")
	fs.StringVar(&c.TokensFile, "tokens-file", env("TOKENS_FILE", ""), "YAML or JSON tokens file for --auth tokens; reloaded on SIGHUP (IMAGED_TOKENS_FILE)")
	fs.StringVar(&c.Policy, "policy", env("POLICY", "secure"), "authorization rules: secure (Glance's secure RBAC) or legacy (Glance 25.1 defaults) (IMAGED_POLICY)")
	fs.StringVar(&c.LogFormat, "log-format", env("LOG_FORMAT", "text"), "log format: text or json (IMAGED_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", env("LOG_LEVEL", "info"), "log level: debug, info, warn, error (IMAGED_LOG_LEVEL)")
	defaults := catalog.DefaultConfig()
	intFlag(fs, &c.PropertyQuota, "image-property-quota", "IMAGE_PROPERTY_QUOTA", defaults.ImagePropertyQuota, "most additional properties an image may have; -1 = unlimited")
	intFlag(fs, &c.TagQuota, "image-tag-quota", "IMAGE_TAG_QUOTA", defaults.ImageTagQuota, "most tags an image may have; -1 = unlimited")
	intFlag(fs, &c.MemberQuota, "image-member-quota", "IMAGE_MEMBER_QUOTA", defaults.ImageMemberQuota, "most members an image may have; -1 = unlimited")
	intFlag(fs, &c.DBMaxConns, "db-max-conns", "DB_MAX_CONNS", 0, "most database connections this process opens (PostgreSQL: all of them, 16 if 0, half for writes and image lookups, half for listings; SQLite: the read pool, 4 if 0); mind max_connections when running several processes")
	intFlag(fs, &c.DBMaxIdleConns, "db-max-idle-conns", "DB_MAX_IDLE_CONNS", 0, "most idle database connections kept open (0: as many as --db-max-conns); fewer frees server connections between bursts")
	connLifetime := env("DB_CONN_MAX_LIFETIME", "0s")
	fs.StringVar(&connLifetime, "db-conn-max-lifetime", connLifetime, "close database connections this old (0: never), e.g. behind a connection balancer or for credential rotation (IMAGED_DB_CONN_MAX_LIFETIME)")
	intFlag(fs, &c.LimitMax, "api-limit-max", "API_LIMIT_MAX", defaults.APILimitMax, "largest page a listing returns")
	fs.StringVar(&c.StoreDir, "store-dir", env("STORE_DIR", ""), "directory for image data (default: images in the data dir) (IMAGED_STORE_DIR)")
	sizeCap := env("IMAGE_SIZE_CAP", strconv.FormatInt(defaults.ImageSizeCap, 10))
	fs.StringVar(&sizeCap, "image-size-cap", sizeCap, "largest image an upload may store, in bytes (IMAGED_IMAGE_SIZE_CAP)")
	lease := env("UPLOAD_LEASE", defaults.UploadLease.String())
	fs.StringVar(&lease, "upload-lease", lease, "how long an upload's claim on an image lasts unrenewed; abandoned uploads are recovered after it, and the recovery sweep runs this often (IMAGED_UPLOAD_LEASE)")
	quotas := []struct {
		p          *int64
		name, help string
		v          string
	}{
		{&c.Quotas.ImageCountTotal, "quota-image-count", "most images a project may have (image_count_total); -1 = unlimited", ""},
		{&c.Quotas.ImageSizeTotal, "quota-image-size-total", "most bytes a project's images may hold (image_size_total); -1 = unlimited", ""},
		{&c.Quotas.ImageStageTotal, "quota-image-stage-total", "most bytes a project may have staged for import (image_stage_total); -1 = unlimited", ""},
		{&c.Quotas.ImageCountUploading, "quota-image-count-uploading", "most images a project may upload, stage or import at once (image_count_uploading); -1 = unlimited", ""},
	}
	for i := range quotas {
		q := &quotas[i]
		envName := strings.ToUpper(strings.ReplaceAll(q.name, "-", "_"))
		q.v = env(envName, "-1")
		fs.StringVar(&q.v, q.name, q.v, q.help+" (IMAGED_"+envName+")")
	}
	fs.BoolVar(&c.ShowMultipleLocations, "show-multiple-locations", env("SHOW_MULTIPLE_LOCATIONS", "") == "true", "show image locations and let owners change them by PATCH (http(s) URLs, under the web-download rules) (IMAGED_SHOW_MULTIPLE_LOCATIONS)")
	fs.BoolVar(&c.ShowImageDirectURL, "show-image-direct-url", env("SHOW_IMAGE_DIRECT_URL", "") == "true", "show an image's first location as direct_url (IMAGED_SHOW_IMAGE_DIRECT_URL)")
	fs.StringVar(&c.ImageCacheDir, "image-cache-dir", env("IMAGE_CACHE_DIR", ""), "directory of the local image cache (/v2/cache; downloads served from it); empty = no cache (IMAGED_IMAGE_CACHE_DIR)")
	cacheMax := env("IMAGE_CACHE_MAX_SIZE", "10737418240")
	fs.StringVar(&cacheMax, "image-cache-max-size", cacheMax, "most bytes the image cache holds; least recently used images are evicted (IMAGED_IMAGE_CACHE_MAX_SIZE)")
	shutdown := env("SHUTDOWN_TIMEOUT", "30s")
	fs.StringVar(&shutdown, "shutdown-timeout", shutdown, "how long in-flight requests may take to finish at shutdown (IMAGED_SHUTDOWN_TIMEOUT)")
	parseImport := c.Import.register(fs, env)
	parseStores := c.Stores.register(fs, env)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := parseImport(); err != nil {
		return nil, err
	}
	if err := parseStores(); err != nil {
		return nil, err
	}
	if len(c.Stores.Stores) > 0 && c.StoreDir != "" {
		return nil, errors.New("--store-dir and --stores exclude each other: name every store in --stores")
	}
	for name, err := range envErrs {
		if fs.Lookup(name) != nil && !isSet(fs, name) {
			return nil, err
		}
	}
	if c.DBMaxConns < 0 {
		return nil, fmt.Errorf("invalid --db-max-conns %d: want 0 (default) or more", c.DBMaxConns)
	}
	if c.DBMaxIdleConns < 0 {
		return nil, fmt.Errorf("invalid --db-max-idle-conns %d: want 0 (default) or more", c.DBMaxIdleConns)
	}
	if d, err := time.ParseDuration(connLifetime); err != nil || d < 0 {
		return nil, fmt.Errorf("invalid --db-conn-max-lifetime %q: want 0 or a duration such as 30m", connLifetime)
	} else {
		c.DBConnMaxLifetime = d
	}
	if c.LimitMax < 1 {
		return nil, fmt.Errorf("invalid --api-limit-max %d: want at least 1", c.LimitMax)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := c.Native.validate(); err != nil {
		return nil, err
	}
	var err error
	if c.ShutdownIn, err = time.ParseDuration(shutdown); err != nil || c.ShutdownIn < 0 {
		return nil, fmt.Errorf("invalid --shutdown-timeout %q: want a duration such as 30s", shutdown)
	}
	if c.ImageCacheMaxSize, err = strconv.ParseInt(cacheMax, 10, 64); err != nil || c.ImageCacheMaxSize < 1 {
		return nil, fmt.Errorf("invalid --image-cache-max-size %q: want a positive number of bytes", cacheMax)
	}
	if c.ImageSizeCap, err = strconv.ParseInt(sizeCap, 10, 64); err != nil || c.ImageSizeCap < 1 {
		return nil, fmt.Errorf("invalid --image-size-cap %q: want a positive number of bytes", sizeCap)
	}
	for _, q := range quotas {
		if *q.p, err = strconv.ParseInt(q.v, 10, 64); err != nil || *q.p < -1 {
			return nil, fmt.Errorf("invalid --%s %q: want a number, at least 0, or -1 for unlimited", q.name, q.v)
		}
	}
	if c.UploadLease, err = time.ParseDuration(lease); err != nil || c.UploadLease < 10*time.Millisecond {
		return nil, fmt.Errorf("invalid --upload-lease %q: want a duration of at least 10ms, such as 60s", lease)
	}
	switch c.Auth {
	case "none":
	case "keystone":
		if err := c.Keystone.validate(); err != nil {
			return nil, err
		}
	case "tokens":
		if c.TokensFile == "" {
			return nil, errors.New("--auth tokens needs --tokens-file (or IMAGED_TOKENS_FILE)")
		}
	default:
		return nil, fmt.Errorf("invalid --auth %q: want none, tokens or keystone", c.Auth)
	}
	if c.Import.GlanceDownloadListed && c.Auth != "keystone" {
		return nil, errors.New("--import-methods glance-download needs --auth keystone (it imports with the caller's Keystone token)")
	}
	if c.Policy != "secure" && c.Policy != "legacy" {
		return nil, fmt.Errorf("invalid --policy %q: want secure or legacy", c.Policy)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return nil, fmt.Errorf("invalid --log-format %q: want text or json", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return nil, fmt.Errorf("invalid --addr %q: want host:port", c.Addr)
	}
	if c.Database == "" {
		c.Database = filepath.Join(c.DataDir, "imaged.db")
	}
	if c.StoreDir == "" {
		c.StoreDir = filepath.Join(c.DataDir, "images")
	}
	return &c, nil
}

// isSet reports whether the flag was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(c *serveConfig, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs the service until ctx is cancelled (SIGINT/SIGTERM), then shuts
// down gracefully: in-flight requests finish, then the database closes.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := parseServeFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		fmt.Fprintf(stderr, "imaged serve: %v\n", err)
		return 2
	}
	log := newLogger(c, stderr)
	if err := serveWith(ctx, c, log, stdout); err != nil {
		fmt.Fprintf(stderr, "imaged serve: %v\n", err)
		return 1
	}
	return 0
}

func serveWith(ctx context.Context, c *serveConfig, log *slog.Logger, stdout io.Writer) error {
	if err := prepareDataDir(c.DataDir); err != nil {
		return err
	}

	var authn imaged.Authenticator
	var authURI string // announced in 401 responses (Keystone)
	var tokens *auth.TokenFile
	switch c.Auth {
	case "none":
		authn = auth.Static(auth.NoneIdentity())
		log.Warn("authentication is off (--auth none): every request acts as the admin user of project admin")
	case "tokens":
		var err error
		if tokens, err = auth.NewTokenFile(c.TokensFile); err != nil {
			return err // names the file and the bad entry, never a token
		}
		authn = tokens
	case "keystone":
		k, err := c.Keystone.authenticator(c)
		if err != nil {
			return err
		}
		authn, authURI = k, k.AuthURI()
	}
	pol, err := policy.ByName(c.Policy)
	if err != nil {
		return err
	}

	// Listen before opening the database so that a port in use fails fast
	// without touching the data.
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", c.Addr, err)
	}
	defer ln.Close()

	var dbOpts []sqlstore.Option
	if c.DBMaxConns > 0 {
		dbOpts = append(dbOpts, sqlstore.WithMaxConns(c.DBMaxConns), sqlstore.WithReadConns(c.DBMaxConns))
	}
	if c.DBMaxIdleConns > 0 {
		dbOpts = append(dbOpts, sqlstore.WithMaxIdleConns(c.DBMaxIdleConns))
	}
	if c.DBConnMaxLifetime > 0 {
		dbOpts = append(dbOpts, sqlstore.WithConnMaxLifetime(c.DBConnMaxLifetime))
	}
	store, err := sqlstore.Open(ctx, c.Database, dbOpts...)
	if err != nil {
		return fmt.Errorf("cannot open database %s: %w", redactDSN(c.Database), err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the database", "err", err)
		}
	}()

	ccfg := catalog.DefaultConfig()
	ccfg.ImagePropertyQuota, ccfg.ImageTagQuota, ccfg.ImageMemberQuota = c.PropertyQuota, c.TagQuota, c.MemberQuota
	ccfg.APILimitMax = c.LimitMax
	ccfg.ImageSizeCap, ccfg.UploadLease = c.ImageSizeCap, c.UploadLease
	ccfg.Quotas = &c.Quotas
	ccfg.ShowMultipleLocations, ccfg.ShowImageDirectURL = c.ShowMultipleLocations, c.ShowImageDirectURL
	named, blobs, err := openStores(c.Stores, c.StoreDir)
	if err != nil {
		return err
	}
	images := catalog.New(store, pol, ccfg).WithBlobStore(blobs[0]).WithLogger(log)
	if named != nil {
		if images, err = images.WithStores(named, c.Stores.Default); err != nil {
			return err
		}
	}
	if images, err = withImports(images, store, c.Import, log); err != nil {
		return err
	}
	if c.Auth == "keystone" && (c.Import.GlanceDownload == nil || *c.Import.GlanceDownload) {
		if images, err = c.Keystone.withGlanceDownload(images, c.Import.Fetch); err != nil {
			return err
		}
	}
	if c.ShowMultipleLocations {
		// http(s) locations are checked and read under web-download's
		// SSRF rules, as Glance applies import_filtering_opts to them.
		f, err := webfetch.New(c.Import.Fetch)
		if err != nil {
			return fmt.Errorf("locations: %w", err)
		}
		images = images.WithLocationFetcher(f)
	}
	if c.ImageCacheDir != "" {
		ic, err := imagecache.Open(c.ImageCacheDir, c.ImageCacheMaxSize, imagecache.WithLogger(log))
		if err != nil {
			return err
		}
		images = images.WithImageCache(ic)
		cctx, stopCache := context.WithCancel(ctx)
		cacheDone := make(chan struct{})
		go func(svc *catalog.Service) { defer close(cacheDone); svc.RunImageCache(cctx) }(images)
		defer func() { stopCache(); <-cacheDone }()
	}
	// Recover what a previous run left behind before serving, so that
	// its abandoned images are uploadable again; then keep sweeping (other
	// processes sharing the database may crash too).
	maintain(ctx, images, blobs, c.UploadLease, log)
	mctx, stopMaintenance := context.WithCancel(ctx)
	maintained := make(chan struct{})
	go func() {
		defer close(maintained)
		t := time.NewTicker(c.UploadLease)
		defer t.Stop()
		for {
			select {
			case <-mctx.Done():
				return
			case <-t.C:
				maintain(mctx, images, blobs, c.UploadLease, log)
			}
		}
	}()
	// Runs before the database closes (defers run last-in first-out).
	defer func() {
		stopMaintenance()
		<-maintained
	}()
	handler := glanceapi.New(glanceapi.Config{Images: images, Auth: authn, AuthURI: authURI, Logger: log, MaxLimit: c.LimitMax, ImportMethods: images.ImportMethods(),
		Metadefs: metadefs.New(store, pol, nil)})
	nat, err := openNative(ctx, c, store, pol, authn, authURI, log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownIn)
		defer cancel()
		if err := nat.tasks.Close(sctx); err != nil {
			log.Warn("background tasks did not finish in time; cancelled", "err", err)
		}
	}()
	handler = withNative(handler, nat.handler)
	if c.Auth == "keystone" {
		handler = withUserToken(handler)
	}
	handler = withWeb(handler, metrics.New(), images, authn, authURI, c.MetricsToken, log)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	if tokens != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					if err := tokens.Reload(); err != nil {
						log.Error("reloading the tokens file failed; keeping the old tokens", "file", c.TokensFile, "err", err)
					} else {
						log.Info("reloaded the tokens file", "file", c.TokensFile)
					}
				}
			}
		}()
	}

	url := "http://" + ln.Addr().String()
	log.Info("imaged listening", "url", url, "database", redactDSN(c.Database), "store", c.StoreDir, "auth", c.Auth, "policy", c.Policy)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("server stopped: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", c.ShutdownIn.String())
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownIn)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("in-flight requests did not finish in time", "err", err)
		srv.Close()
	}
	// Background imports get what is left of the timeout; cancelled ones
	// put their images back to queued and fail their tasks.
	if err := images.Close(sctx); err != nil {
		log.Warn("background imports did not finish in time; cancelled", "err", err)
	}
	log.Info("stopped")
	return nil
}

// maintain runs one round of data housekeeping: abandoned uploads back to
// queued, stale uncommitted writes purged, orphaned blobs deleted. Failures
// are logged; the next round tries again.
func maintain(ctx context.Context, images *catalog.Service, blobs []imaged.BlobStore, ttl time.Duration, log *slog.Logger) {
	if n, err := images.RecoverAbandoned(ctx); err != nil {
		if ctx.Err() == nil {
			log.Error("recovering abandoned uploads", "err", err)
		}
	} else if n > 0 {
		log.Info("recovered abandoned uploads", "images", n)
	}
	// An uncommitted write's age is the time since its last write reached
	// the file; a live upload writes at least every third of a lease (the
	// catalog hands on slow bodies' chunks that often, and the store is
	// unbuffered), so only dead ones are this old.
	for _, b := range blobs {
		if n, err := b.PurgeUploads(ctx, ttl); err != nil {
			if ctx.Err() == nil {
				log.Error("purging stale uploads", "err", err)
			}
		} else if n > 0 {
			log.Info("purged stale uncommitted uploads", "files", n)
		}
	}
	if n, err := images.SweepOrphans(ctx); err != nil {
		if ctx.Err() == nil {
			log.Error("sweeping orphaned image data", "err", err)
		}
	} else if n > 0 {
		log.Info("deleted orphaned image data", "blobs", n)
	}
}

// prepareDataDir creates the data directory and checks that it is usable,
// so that a bad directory fails at start-up with a clear message.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("cannot create data dir: %w", err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// redactDSN hides a password in a database URL before it is logged.
func redactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return dsn
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return dsn
}
