package catalog

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// Glance's legacy "import" task (POST /v2/tasks, deprecated since Mitaka
// but working in 25.1): an admin names a URL and the properties of a new
// image; in the background Glance creates the image, downloads the URL
// into it (queued → saving → active) and ends the task with
// {"image_id": ...}. Any failure deletes the image it created (taskflow's
// revert) and fails the task.
//
// Here the image is created by CreateImage (so the create API's rules,
// policy and quotas apply) and filled by UploadImage's pipeline (lease,
// hashes, format check, quotas); the bytes come through the same guarded
// fetcher as web-download: nothing else fetches URLs.

// TaskTypeLegacyImport is the type of Glance's legacy import task.
const TaskTypeLegacyImport = "import"

// Glance's task messages.
const (
	// msgTaskInternal is what Glance's taskflow executor records for
	// every failure of the flow itself (download, image creation,
	// transfer): the reason only goes to its log, as here.
	msgTaskInternal = "Task failed due to Internal Error"
)

// legacyFailed is a legacy import failure that carries the message Glance
// gives the task.
type legacyFailed struct {
	msg   string
	cause error
}

func (e *legacyFailed) Error() string { return e.msg }
func (e *legacyFailed) Unwrap() error { return e.cause }

// urlChecker is the part of webfetch.Fetcher that vets a URL (rules and
// name resolution) without fetching it: Glance's validate_uri at request
// time.
type urlChecker interface {
	Check(ctx context.Context, rawURL string) error
}

// CreateTask is POST /v2/tasks once the body passed the task schema
// (typ is "import" or "api_image_import"; input may be nil, JSON null).
// It is for tasks_api_access (admins). An "import" task is checked as
// Glance's TasksController.create does (its import_from URI), recorded
// pending and returned; the import runs in the background and outlives
// ctx. An "api_image_import" task through this API is not supported:
// Glance creates it but never runs it properly (it stays processing for
// want of an import request, or fails); use POST /v2/images/{id}/import.
func (s *Service) CreateTask(ctx context.Context, typ string, input map[string]any) (*imaged.Task, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if s.imp == nil {
		return nil, errNoImports()
	}
	if !s.pol.IsAdmin(id) {
		return nil, errTasksAPI()
	}
	if typ != TaskTypeLegacyImport {
		return nil, imaged.Errorf(imaged.ENOTIMPLEMENTED,
			"Not Implemented: creating %s tasks through the deprecated task API is not supported; use the image import API (POST /v2/images/{image_id}/import).", typ)
	}
	if s.imp.fetcher == nil {
		// Only web-download's guarded fetcher may fetch URLs, and the
		// operator did not enable it.
		return nil, imaged.Errorf(imaged.ENOTIMPLEMENTED,
			"Not Implemented: the legacy import task fetches image data from a URL, which needs the web-download import method to be enabled.")
	}
	uri, err := legacyImportURI(input["import_from"])
	if err != nil {
		return nil, err
	}
	if c, ok := s.imp.fetcher.(urlChecker); ok {
		if err := c.Check(ctx, uri); err != nil {
			s.log.Info("legacy import URI refused", "uri", uri, "err", err)
			return nil, imaged.Errorf(imaged.EINVALID, "URI for legacy import task does not pass filtering: %s", uri)
		}
	}
	now := s.clock.Now()
	task := &imaged.Task{ID: newUUID(), Type: TaskTypeLegacyImport, Status: imaged.TaskPending, Input: input,
		Owner: id.ProjectID, RequestID: imaged.RequestIDFromContext(ctx), UserID: id.UserID,
		CreatedAt: now, UpdatedAt: now}
	// Glance files the task under the input's image_id, if any (the
	// legacy import ignores it otherwise).
	if v, ok := input["image_id"].(string); ok {
		task.ImageID = v
	}
	if err := s.imp.tasks.CreateTask(ctx, task); err != nil {
		return nil, fmt.Errorf("catalog: create task: %w", err)
	}
	// The import outlives the request: its context keeps the request's
	// values (identity, request id) but not its cancellation; Close
	// cancels it.
	bg := context.WithoutCancel(ctx)
	s.imp.wg.Add(1)
	go func() {
		defer s.imp.wg.Done()
		bctx, cancel := context.WithCancel(bg)
		defer cancel()
		stop := context.AfterFunc(s.imp.ctx, cancel)
		defer stop()
		s.runLegacyImport(bctx, task.ID, uri, input)
	}()
	return task, nil
}

// legacyImportURI is Glance's validate_location_uri on import_from: http
// and https only, with Glance's messages (400s).
func legacyImportURI(v any) (string, error) {
	s, isStr := v.(string)
	switch {
	case v == nil || v == false || (isStr && s == "") || v == float64(0):
		return "", imaged.Errorf(imaged.EINVALID, "Invalid location: %s", pyText(v))
	case !isStr:
		// Glance fails with a 500 here (it calls startswith on it).
		return "", imaged.Errorf(imaged.EINVALID, "Invalid location: %s", pyText(v))
	case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"):
		return s, nil
	case strings.HasPrefix(s, "file:///") || strings.HasPrefix(s, "filesystem:///"):
		return "", imaged.Errorf(imaged.EINVALID, "File based imports are not allowed. Please use a non-local source of image data.")
	}
	return "", imaged.Errorf(imaged.EINVALID, "The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http']")
}

// runLegacyImport is the background part of a legacy import task:
// pending → processing → success or failure.
func (s *Service) runLegacyImport(ctx context.Context, taskID, uri string, input map[string]any) {
	s.setTask(ctx, taskID, func(t *imaged.Task) {
		t.Status = imaged.TaskProcessing
	})
	// The task's updated_at is its heartbeat: RecoverAbandoned fails a
	// legacy import task that has not moved for an upload lease (its
	// process died), so that no task stays processing for ever.
	beat := make(chan struct{})
	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		t := time.NewTicker(s.cfg.UploadLease / 3)
		defer t.Stop()
		for {
			select {
			case <-beat:
				return
			case <-t.C:
				s.setTask(ctx, taskID, func(*imaged.Task) {})
			}
		}
	}()
	imageID, err := s.legacyImport(ctx, taskID, uri, input)
	close(beat)
	<-beatDone
	s.setTask(ctx, taskID, func(t *imaged.Task) {
		if err != nil {
			t.Status = imaged.TaskFailure
			t.Message = msgTaskInternal
			if lf, ok := err.(*legacyFailed); ok {
				t.Message = lf.msg
			}
			return
		}
		t.Status = imaged.TaskSuccess
		t.Result = map[string]any{"image_id": imageID}
	})
}

// legacyImport creates the image and fills it from uri. On failure the
// image it created is deleted (never left queued or saving), as Glance's
// flow reverts.
func (s *Service) legacyImport(ctx context.Context, taskID, uri string, input map[string]any) (string, error) {
	// Glance's unpack_task_input, with its messages.
	for _, k := range []string{"import_from", "import_from_format", "image_properties"} {
		if _, ok := input[k]; !ok {
			return "", &legacyFailed{msg: fmt.Sprintf("Input does not contain '%s' field", k)}
		}
	}
	props, ok := input["image_properties"].(map[string]any)
	if !ok {
		s.log.Warn("legacy import task failed: image_properties is not an object", "task", taskID)
		return "", &legacyFailed{msg: msgTaskInternal}
	}
	// CreateImage must not change the task's input.
	img, err := s.CreateImage(ctx, maps.Clone(props))
	if err != nil {
		s.log.Warn("legacy import task failed: creating the image", "task", taskID, "err", err)
		return "", &legacyFailed{msg: msgTaskInternal, cause: err}
	}
	fail := func(what string, err error) (string, error) {
		s.log.Warn("legacy import task failed: "+what+"; deleting its image", "task", taskID, "image", img.ID, "err", err)
		s.dropLegacyImage(ctx, img.ID)
		return "", &legacyFailed{msg: msgTaskInternal, cause: err}
	}
	body, size, err := s.imp.fetcher.Fetch(ctx, uri)
	if err != nil {
		return fail("fetching "+uri, err)
	}
	defer body.Close()
	// UploadImage moves the image queued → saving → active, or back to
	// queued on failure (bytes removed).
	if _, err := s.UploadImage(ctx, img.ID, body, size); err != nil {
		return fail("storing the data", err)
	}
	return img.ID, nil
}

// dropLegacyImage deletes the image a failed legacy import created, if it
// is still queued (a failed transfer put it back there). It runs even
// when ctx is cancelled (shutdown): the image must not stay behind.
func (s *Service) dropLegacyImage(ctx context.Context, imageID string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	old, err := s.store.DeleteImage(cctx, imageID, func(img *imaged.Image) error {
		// Anything else means someone else moved it since: leave it.
		if img.Status != imaged.StatusQueued || img.Lease != nil {
			return imaged.Errorf(imaged.ECONFLICT, "image %s is %s", imageID, img.Status)
		}
		return nil
	})
	switch {
	case err == nil:
		s.deleteData(cctx, old)
	case imaged.ErrorCode(err) == imaged.ENOTFOUND:
	default:
		s.log.Error("deleting the image of a failed legacy import task", "image", imageID, "err", err)
	}
}

// failAbandonedLegacyTasks fails the legacy import tasks whose heartbeat
// (updated_at, renewed every UploadLease/3 while the import runs) is older
// than an upload lease: the process that ran them is gone. The image such
// a task created was put back to queued by the lease recovery; it stays, as
// any queued image does.
func (s *Service) failAbandonedLegacyTasks(ctx context.Context) (int, error) {
	if s.imp == nil || s.imp.tasks == nil {
		return 0, nil
	}
	now := s.clock.Now()
	ids, err := imaged.FailAbandonedTasks(ctx, s.imp.tasks, []string{TaskTypeLegacyImport},
		now.Add(-s.cfg.UploadLease), now, s.imp.ttl, msgTaskInternal)
	for _, id := range ids {
		s.log.Warn("failed an abandoned legacy import task", "task", id)
	}
	if err != nil {
		return len(ids), fmt.Errorf("catalog: %w", err)
	}
	return len(ids), nil
}
