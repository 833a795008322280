package catalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imaged/imaged"
)

// Interoperable image import, as Glance 25.1 does it with a single store:
//
//	PUT  /stage   queued → uploading; the bytes go to the blob store under
//	              staging/<image id>, unhashed and uninspected; the image's
//	              size is set. A failed stage: back to queued, bytes removed.
//	POST /import  glance-direct (from uploading) or web-download (from
//	              queued) → importing, with the os_glance_import_task lock
//	              and a pending api_image_import task; 202. In the
//	              background the task is processing while the bytes stream
//	              through the same pipeline as an upload (hashes, format
//	              inspection, atomic commit, lease renewal) into
//	              images/<id>/<lease>; then active, task success. A failure:
//	              image back to queued, task failure with the reason as its
//	              message.
//
// Staged bytes live only while the image is uploading or importing: an
// import that fails, or that a crash abandoned (its lease expired; startup
// recovery puts the image back to queued), removes them, as Glance's
// staging housekeeping removes the staging data of images in any other
// status. The client then stages again.
//
// Glance without enabled_backends keeps os_glance_importing_to_stores and
// os_glance_failed_import as empty strings (store names, and a single
// store has none), and so do we; a failure is told by the queued status
// and the task's message.

// Property names of the import (Glance's reserved os_glance_ namespace).
const (
	propImportTask      = "os_glance_import_task"
	propImportingStores = "os_glance_importing_to_stores"
	propFailedImport    = "os_glance_failed_import"
	propStageHost       = "os_glance_stage_host"
)

// Defaults of the import options.
const (
	// DefaultTaskTTL is Glance's task_time_to_live (48 hours): how long an
	// ended task stays listed.
	DefaultTaskTTL = 48 * time.Hour
	// importLockExpiry is Glance's age after which the os_glance_import_task
	// lock of a task that stopped moving may be broken (doubled for a
	// pending task).
	importLockExpiry = 60 * time.Minute
)

const stagingPrefix = "staging/"

// stagingKey is where an image's staged bytes live: one key per image, as
// Glance's staging directory keeps one file per image (a stage needs a
// queued image, so two stages never write at once).
func stagingKey(imageID string) string { return stagingPrefix + imageID }

// ImportConfig configures interoperable import.
type ImportConfig struct {
	// Methods are the enabled import methods (Glance's
	// enabled_import_methods); nil = glance-direct, plus web-download
	// when Fetcher is set. web-download is dropped when Fetcher is nil.
	Methods []string
	// Fetcher opens web-download URLs; nil disables web-download.
	Fetcher imaged.URLFetcher
	// TaskTTL is how long an ended task stays listed (0 = 48h).
	TaskTTL time.Duration
}

// importer is the import state a Service shares among its copies.
type importer struct {
	tasks   imaged.TaskStore
	fetcher imaged.URLFetcher
	methods []string
	ttl     time.Duration
	// gd is glance-download's configuration (nil = not enabled).
	gd *glanceDownloader
	// wg counts background imports; ctx cancels them (Close).
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

var _ imaged.ImportService = (*Service)(nil)

// WithImports returns a copy of s that imports images, recording tasks in
// tasks. Call Close on shutdown to wait for background imports.
func (s *Service) WithImports(tasks imaged.TaskStore, cfg ImportConfig) *Service {
	methods := cfg.Methods
	if methods == nil {
		methods = []string{imaged.ImportGlanceDirect, imaged.ImportWebDownload}
	}
	enabled := []string{}
	for _, m := range methods {
		if m == imaged.ImportWebDownload && cfg.Fetcher == nil {
			continue
		}
		if !slices.Contains(enabled, m) {
			enabled = append(enabled, m)
		}
	}
	if cfg.TaskTTL <= 0 {
		cfg.TaskTTL = DefaultTaskTTL
	}
	ctx, cancel := context.WithCancel(context.Background())
	cp := *s
	cp.imp = &importer{tasks: tasks, fetcher: cfg.Fetcher, methods: enabled, ttl: cfg.TaskTTL, ctx: ctx, cancel: cancel}
	return &cp
}

// ImportMethods returns the enabled import methods (none without
// WithImports), with copy-image when there is more than one store.
func (s *Service) ImportMethods() []string {
	if s.imp == nil {
		return nil
	}
	m := slices.Clone(s.imp.methods)
	if s.stores != nil && len(s.stores.list) > 1 && !slices.Contains(m, imaged.ImportCopyImage) {
		m = append(m, imaged.ImportCopyImage)
	}
	return m
}

// Close waits for background imports to end; when ctx ends first, it
// cancels them (each puts its image back to queued and fails its task)
// and waits for that.
func (s *Service) Close(ctx context.Context) error {
	if s.imp == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		s.imp.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.imp.cancel()
		<-done
		return ctx.Err()
	}
}

func errNoImports() error {
	return imaged.Errorf(imaged.ENOTIMPLEMENTED, "Image import is not configured.")
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// StageImage keeps an image's bytes for a glance-direct import.
func (s *Service) StageImage(ctx context.Context, imageID string, body io.Reader, size int64) error {
	id, err := caller(ctx)
	if err != nil {
		return err
	}
	if s.imp == nil {
		return errNoImports()
	}
	if _, err := s.load(ctx, id, imageID); err != nil {
		return notFound(err, "No image found with ID %s", imageID)
	}
	if s.blobs == nil {
		return errNoBlobStore()
	}
	leaseID := newLeaseID()
	now := s.clock.Now()
	img, err := s.store.UpdateImage(ctx, imageID, func(img *imaged.Image) error {
		if err := s.enforce(id, imaged.ActionModifyImage, img, msgNotOwner); err != nil {
			return err
		}
		if img.Status != imaged.StatusQueued {
			return imaged.Errorf(imaged.ECONFLICT, "Image status transition from %s to %s is not allowed", img.Status, imaged.StatusUploading)
		}
		if size > s.cfg.ImageSizeCap {
			return errTooLarge()
		}
		img.Status = imaged.StatusUploading
		// The declared length is reserved against image_stage_total in
		// this very update (see Quotas).
		img.Lease = &imaged.Lease{ID: leaseID, Holder: s.cfg.Holder, Expires: now.Add(s.cfg.UploadLease), Reserved: max(size, 0)}
		img.UpdatedAt = now
		return nil
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND && imaged.ErrorMessage(err) != errResourceNotFound().Message {
			return imaged.Errorf(imaged.ENOTFOUND, "No image found with ID %s", imageID)
		}
		return fmt.Errorf("catalog: stage %s: %w", imageID, err)
	}
	u := &upload{s: s, imageID: imageID, leaseID: leaseID, key: stagingKey(imageID), status: imaged.StatusUploading,
		finish: func(img *imaged.Image, sum uploadSum, _ *int64) {
			n := sum.n
			img.Size = &n // status stays uploading: staged, awaiting import
		},
		onFail: func(img *imaged.Image) { img.Size = nil },
	}
	if body, err = s.AdmitTransfer(ctx, img, body, size); err != nil {
		u.fail(ctx, err)
		return err
	}
	if _, err := u.run(ctx, img, body, size); err != nil {
		u.fail(ctx, err)
		return err
	}
	return nil
}

// ImportImage checks an import request as Glance's import_image does, in
// Glance's order, takes the image's import lock and starts the import in
// the background.
func (s *Service) ImportImage(ctx context.Context, imageID string, req imaged.ImportRequest) (*imaged.Task, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if s.imp == nil {
		return nil, errNoImports()
	}
	if !slices.Contains(s.ImportMethods(), req.Method) {
		return nil, imaged.Errorf(imaged.EINVALID, "Unknown import method name '%s'.", req.Method)
	}
	img, err := s.load(ctx, id, imageID)
	if err != nil {
		return nil, notFound(err, "No image found with ID %s", imageID)
	}
	if err := s.checkImport(id, img, req); err != nil {
		return nil, err
	}
	if other, ok := img.Properties[propImportTask]; ok && !s.staleLock(ctx, other) {
		return nil, imaged.Errorf(imaged.ECONFLICT, "Image has active task")
	}
	stores, err := s.importStores(ctx, req.Body)
	if err != nil {
		return nil, err
	}
	copying := req.Method == imaged.ImportCopyImage
	if copying {
		if stores, err = copyStores(img, stores, req.Body); err != nil || len(stores) == 0 {
			// Already in every store asked for: Glance answers 202
			// and starts nothing.
			return nil, err
		}
	}
	mustAll := true
	if v, ok := req.Body["all_stores_must_succeed"].(bool); ok {
		mustAll = v
	}
	if s.blobs == nil {
		return nil, errNoBlobStore()
	}
	if req.Method == imaged.ImportWebDownload {
		if u, err := url.Parse(req.URI); req.URI == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, imaged.Errorf(imaged.EINVALID, "URI for web-download does not pass filtering: %s", uriText(req.URI))
		}
	}

	from, seenLock := img.Status, img.Properties[propImportTask]
	taskID, leaseID := newUUID(), newLeaseID()
	now := s.clock.Now()
	var busted string // a stale lock's task, preempted
	img, err = s.store.UpdateImage(ctx, imageID, func(img *imaged.Image) error {
		busted = ""
		// The checks again, atomically: the image may have moved since.
		// The lock must be the one found stale above (or still none):
		// no store reads inside the transaction.
		if img.Properties[propImportTask] != seenLock {
			return imaged.Errorf(imaged.ECONFLICT, "Image has active task")
		}
		if err := s.checkImport(id, img, req); err != nil {
			return err
		}
		if img.Status != from {
			return imaged.Errorf(imaged.ECONFLICT, "Image status transition from %s to %s is not allowed", img.Status, imaged.StatusImporting)
		}
		// A lock left here was found stale above: it is broken
		// by taking it over.
		busted = img.Properties[propImportTask]
		if img.Properties == nil {
			img.Properties = map[string]string{}
		}
		img.Properties[propImportTask] = taskID
		img.Properties[propImportingStores] = strings.Join(stores, ",")
		if !copying {
			img.Properties[propFailedImport] = ""
			delete(img.Properties, propStageHost)
			img.Status = imaged.StatusImporting
		}
		// A copy holds a lease on its active image too: recovery then
		// deletes what a crashed copy wrote and drops its lease.
		img.Lease = &imaged.Lease{ID: leaseID, Holder: s.cfg.Holder, Expires: now.Add(s.cfg.UploadLease)}
		img.UpdatedAt = now
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: import %s: %w", imageID, err)
	}
	if busted != "" {
		// Glance's _bust_import_lock fails the preempted task.
		s.setTask(ctx, busted, func(t *imaged.Task) {
			if t.Status == imaged.TaskPending || t.Status == imaged.TaskProcessing {
				t.Status = imaged.TaskFailure
				t.Message = "Expired lock preempted"
			}
		})
	}
	backend := []any{nil}
	if stores != nil {
		backend = make([]any, len(stores))
		for i, n := range stores {
			backend[i] = n
		}
	}
	input := map[string]any{"image_id": imageID, "import_req": req.Body, "backend": backend}
	task := &imaged.Task{ID: taskID, Type: imaged.TaskTypeImageImport, Status: imaged.TaskPending, Input: input,
		Owner: id.ProjectID, ImageID: imageID, RequestID: imaged.RequestIDFromContext(ctx), UserID: id.UserID,
		CreatedAt: now, UpdatedAt: now}
	u := s.importUpload(img, leaseID, stores, mustAll, copying)
	if err := s.imp.tasks.CreateTask(ctx, task); err != nil {
		u.fail(ctx, err)
		return nil, fmt.Errorf("catalog: import %s: create task: %w", imageID, err)
	}
	// The import outlives the request: its context keeps the request's
	// values (identity, request id) but not its cancellation.
	bg := context.WithoutCancel(ctx)
	s.imp.wg.Add(1)
	go func() {
		defer s.imp.wg.Done()
		bctx, cancel := context.WithCancel(bg)
		defer cancel()
		stop := context.AfterFunc(s.imp.ctx, cancel)
		defer stop()
		s.runImport(bctx, u, task, req)
	}()
	return task, nil
}

// uriText renders a missing URI as Python's None, as Glance's message does.
func uriText(uri string) string {
	if uri == "" {
		return "None"
	}
	return uri
}

// checkImport is Glance's import_image checks on the image: status, formats,
// policy. The import lock is checked by the caller.
func (s *Service) checkImport(id *imaged.Identity, img *imaged.Image, req imaged.ImportRequest) error {
	switch {
	case img.Status == imaged.StatusActive && req.Method != imaged.ImportCopyImage:
		return imaged.Errorf(imaged.ECONFLICT, "Image with status active cannot be target for import")
	case img.Status != imaged.StatusActive && req.Method == imaged.ImportCopyImage:
		return imaged.Errorf(imaged.ECONFLICT, "Only images with status active can be targeted for copying")
	case (req.Method == imaged.ImportWebDownload || req.Method == ImportGlanceDownload) && img.Status != imaged.StatusQueued:
		return imaged.Errorf(imaged.ECONFLICT, "Image needs to be in 'queued' state to use '%s' method", req.Method)
	case req.Method == imaged.ImportGlanceDirect && img.Status != imaged.StatusUploading:
		return imaged.Errorf(imaged.ECONFLICT, "Image needs to be staged before 'glance-direct' method can be used")
	case img.ContainerFormat == "":
		return imaged.Errorf(imaged.ECONFLICT, "'container_format' needs to be set before import")
	case img.DiskFormat == "":
		return imaged.Errorf(imaged.ECONFLICT, "'disk_format' needs to be set before import")
	}
	if req.Method == ImportGlanceDownload {
		if err := checkGlanceDownload(req.Body); err != nil {
			return err
		}
	}
	if req.Method == imaged.ImportCopyImage {
		// Glance checks copy_image instead of ownership: an admin
		// (by default) copies images of any project.
		return s.enforce(id, imaged.ActionCopyImage, img, "")
	}
	if err := s.enforce(id, imaged.ActionModifyImage, img, msgNotOwner); err != nil {
		return err
	}
	return nil
}

// staleLock is Glance's _enforce_import_lock: a lock whose task is gone,
// or has not moved for an hour (two if pending), may be broken.
func (s *Service) staleLock(ctx context.Context, taskID string) bool {
	t, err := s.imp.tasks.GetTask(ctx, taskID)
	if err != nil {
		return imaged.ErrorCode(err) == imaged.ENOTFOUND
	}
	expiry := importLockExpiry
	if t.Status == imaged.TaskPending {
		expiry *= 2
	}
	return s.clock.Now().Sub(t.UpdatedAt) >= expiry
}

// importUpload is the transfer of an import: the image is importing under
// leaseID; the bytes go to images/<id>/<lease>.
func (s *Service) importUpload(img *imaged.Image, leaseID string, stores []string, mustAll, copying bool) *upload {
	u := &upload{s: s, imageID: img.ID, leaseID: leaseID, key: blobKey(img.ID, leaseID),
		status: imaged.StatusImporting, inspect: true, mustAll: mustAll}
	if stores != nil {
		u.targets = s.targetsOf(stores)
	}
	taskID := img.Properties[propImportTask]
	if copying {
		// The image stays active; its bytes are read back and must
		// hash to what the image says.
		u.status, u.restore, u.inspect = imaged.StatusActive, imaged.StatusActive, false
		u.verify = verifyHashes(img)
		u.finish = func(img *imaged.Image, _ uploadSum, _ *int64) {
			img.Locations = append(img.Locations, u.locations()...)
			dropImportLock(img, taskID, u.failedStores(img))
		}
	} else {
		u.finish = func(img *imaged.Image, sum uploadSum, vsize *int64) {
			u.activate(img, sum, vsize)
			dropImportLock(img, taskID, u.failedStores(img))
		}
	}
	u.onFail = func(img *imaged.Image) {
		// The stores that failed the transfer, or, when the failure
		// was none of theirs (the data), all of them: none holds it.
		if len(u.failed) == 0 {
			u.failed = u.targets
		}
		dropImportLock(img, taskID, u.failedStores(img))
	}
	return u
}

// failedStores is os_glance_failed_import after this transfer: the stores
// it failed to write, added to those that earlier copies failed (Glance
// accumulates them), without the ones now holding the image.
func (u *upload) failedStores(img *imaged.Image) string {
	var out []string
	for _, n := range strings.Split(img.Properties[propFailedImport], ",") {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, t := range u.failed {
		if t.name != "" && !slices.Contains(out, t.name) {
			out = append(out, t.name)
		}
	}
	have := imageStores(img)
	out = slices.DeleteFunc(out, func(n string) bool { return slices.Contains(have, n) })
	return strings.Join(out, ",")
}

// dropImportLock removes the import's lock (if it is still ours), empties
// os_glance_importing_to_stores and records the stores that failed (empty
// with the implicit single store, as Glance leaves them).
func dropImportLock(img *imaged.Image, taskID, failed string) {
	if img.Properties == nil {
		img.Properties = map[string]string{}
	}
	if img.Properties[propImportTask] == taskID {
		delete(img.Properties, propImportTask)
	}
	img.Properties[propImportingStores] = ""
	img.Properties[propFailedImport] = failed
}

// copyStores is Glance's handling of a copy-image's stores: with
// all_stores, those already holding the image are dropped; otherwise
// naming one of them is a 400.
func copyStores(img *imaged.Image, stores []string, body map[string]any) ([]string, error) {
	have := imageStores(img)
	if all, _ := body["all_stores"].(bool); all {
		return slices.DeleteFunc(slices.Clone(stores), func(n string) bool { return slices.Contains(have, n) }), nil
	}
	for _, n := range stores {
		if slices.Contains(have, n) {
			return nil, imaged.Errorf(imaged.EINVALID, "Image is already present at store '%s'", n)
		}
	}
	return stores, nil
}

// runImport is the background part of an import.
func (s *Service) runImport(ctx context.Context, u *upload, task *imaged.Task, req imaged.ImportRequest) {
	s.setTask(ctx, task.ID, func(t *imaged.Task) {
		t.Status = imaged.TaskProcessing
	})
	img, err := s.importData(ctx, u, req)
	if req.Method == imaged.ImportGlanceDirect && s.blobs != nil {
		// Success or failure, the staged bytes are done with.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if derr := s.blobs.Delete(dctx, stagingKey(u.imageID)); derr != nil {
			s.log.Warn("deleting staged bytes after an import", "image", u.imageID, "err", derr)
		}
		cancel()
	}
	s.setTask(ctx, task.ID, func(t *imaged.Task) {
		if err != nil {
			t.Status = imaged.TaskFailure
			t.Message = importFailure(err)
			return
		}
		t.Status = imaged.TaskSuccess
		t.Result = map[string]any{"image_id": u.imageID}
		t.Message = fmt.Sprintf("Copied %d MiB", *img.Size>>20)
	})
}

// importFailure words a failed import for the task's message.
func importFailure(err error) string {
	if imaged.ErrorCode(err) == imaged.EINTERNAL {
		return "Internal error while importing the image data."
	}
	return imaged.ErrorMessage(err)
}

// importData moves the bytes of an import and finalises the image; on any
// failure the image is back to queued.
func (s *Service) importData(ctx context.Context, u *upload, req imaged.ImportRequest) (*imaged.Image, error) {
	img, err := s.store.GetImage(ctx, u.imageID)
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, errGone(u.imageID)
		}
		u.fail(ctx, err)
		return nil, err
	}
	var body io.ReadCloser
	size := int64(-1)
	switch req.Method {
	case imaged.ImportGlanceDirect:
		body, err = s.blobs.Open(ctx, stagingKey(u.imageID), 0, -1)
		if err == nil && img.Size != nil {
			size = *img.Size
		}
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			err = imaged.Errorf(imaged.ECONFLICT, "The staged data of image %s is missing: stage it again.", u.imageID)
		}
	case imaged.ImportWebDownload:
		body, size, err = s.imp.fetcher.Fetch(ctx, req.URI)
	case imaged.ImportCopyImage:
		body, size, err = s.copySource(ctx, img)
	case ImportGlanceDownload:
		var got *imaged.Image
		if got, body, size, err = s.glanceDownloadSource(ctx, u, img, req); err == nil {
			img = got
		}
	default:
		err = imaged.Errorf(imaged.EINVALID, "Unknown import method name '%s'.", req.Method)
	}
	if err != nil {
		u.fail(ctx, err)
		return nil, err
	}
	defer body.Close()
	// The quotas (image_count_uploading, image_size_total) are checked as
	// the bytes start to move, as Glance's import flow does.
	var in io.Reader = body
	if req.Method != imaged.ImportCopyImage {
		// A copy adds no image and its size was admitted when the image
		// was first stored.
		if in, err = s.AdmitTransfer(ctx, img, body, size); err != nil {
			u.fail(ctx, err)
			return nil, err
		}
	}
	out, err := u.run(ctx, img, in, size)
	if err != nil {
		u.fail(ctx, err)
		return nil, err
	}
	return out, nil
}

// setTask updates a task's status fields; an ended task gets its expiry.
// It runs even if ctx was cancelled: the outcome must be recorded.
func (s *Service) setTask(ctx context.Context, taskID string, fn func(*imaged.Task)) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := s.clock.Now()
	_, err := s.imp.tasks.UpdateTask(cctx, taskID, func(t *imaged.Task) error {
		fn(t)
		t.UpdatedAt = now
		if t.Status == imaged.TaskSuccess || t.Status == imaged.TaskFailure {
			exp := now.Add(s.imp.ttl)
			t.ExpiresAt = &exp
		}
		return nil
	})
	if err != nil {
		s.log.Error("recording an import task's progress", "task", taskID, "err", err)
	}
}
