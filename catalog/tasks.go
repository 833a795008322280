package catalog

import (
	"context"
	"fmt"
	"slices"

	"github.com/imaged/imaged"
)

// errTasksAPI is the refusal of Glance's tasks_api_access rule (admins only
// by default).
func errTasksAPI() error {
	return notAuthorized("tasks_api_access")
}

// ListImageTasks returns the unexpired tasks of an image the caller may see
// (Glance's get_task_info: an invisible image, or one the get_image rule
// hides, is a bare 404), oldest first; non-admins see their project's tasks
// only.
func (s *Service) ListImageTasks(ctx context.Context, imageID string) ([]*imaged.Task, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if s.imp == nil {
		return nil, errNoImports()
	}
	img, err := s.load(ctx, id, imageID)
	if err != nil {
		return nil, notFound(err, "The resource could not be found.")
	}
	if err := s.enforce(id, imaged.ActionGetImage, img, ""); err != nil {
		return nil, errResourceNotFound()
	}
	now := s.clock.Now()
	q := imaged.TaskQuery{ImageID: imageID, SortKey: "created_at", SortDir: imaged.Asc, Limit: s.cfg.APILimitMax}
	out := []*imaged.Task{}
	for {
		page, err := s.imp.tasks.ListTasks(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("catalog: tasks of %s: %w", imageID, err)
		}
		for _, t := range page {
			if t.ExpiresAt != nil && t.ExpiresAt.Before(now) {
				continue
			}
			// Glance's _is_task_visible.
			if !s.pol.IsAdmin(id) && t.Owner != "" && t.Owner != id.ProjectID {
				continue
			}
			out = append(out, t)
		}
		if len(page) < q.Limit {
			return out, nil
		}
		q.After = page[len(page)-1]
	}
}

// GetTask returns one task (admins only, as Glance's tasks API).
func (s *Service) GetTask(ctx context.Context, taskID string) (*imaged.Task, error) {
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
	t, err := s.imp.tasks.GetTask(ctx, taskID)
	if err == nil && !glanceTaskType(t.Type) {
		// The native API's tasks (rescans, agent fan-outs) share the
		// store but are not Glance tasks.
		err = imaged.Errorf(imaged.ENOTFOUND, "not a Glance task")
	}
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, imaged.Errorf(imaged.ENOTFOUND, "Could not find task %s", taskID)
		}
		return nil, fmt.Errorf("catalog: get task %s: %w", taskID, err)
	}
	return t, nil
}

// glanceTaskTypes are the task types Glance's tasks API shows: its legacy
// "import" and interoperable import's api_image_import.
func glanceTaskTypes() []string { return []string{imaged.TaskTypeImageImport, "import"} }

func glanceTaskType(t string) bool { return slices.Contains(glanceTaskTypes(), t) }

// ListTasks returns one page of tasks (admins only). The limit is capped
// at api_limit_max; marker is a task id.
func (s *Service) ListTasks(ctx context.Context, q imaged.TaskQuery, marker string) ([]*imaged.Task, error) {
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
	// Only Glance's task types: a filter on another type matches nothing.
	if len(q.Types) == 0 {
		q.Types = glanceTaskTypes()
	} else {
		q.Types = slices.DeleteFunc(slices.Clone(q.Types), func(t string) bool { return !glanceTaskType(t) })
		if len(q.Types) == 0 {
			return []*imaged.Task{}, nil
		}
	}
	if q.SortKey != "" && !slices.Contains(imaged.TaskSortKeys, q.SortKey) {
		return nil, imaged.Errorf(imaged.EINVALID, "Sort key supplied was not valid.")
	}
	if q.Limit <= 0 || q.Limit > s.cfg.APILimitMax {
		if q.Limit <= 0 {
			q.Limit = s.cfg.LimitParamDefault
		} else {
			q.Limit = s.cfg.APILimitMax
		}
	}
	if marker != "" {
		m, err := s.imp.tasks.GetTask(ctx, marker)
		if err != nil {
			if imaged.ErrorCode(err) == imaged.ENOTFOUND {
				return nil, imaged.Errorf(imaged.EINVALID, "Task with the given id %s was not found", marker)
			}
			return nil, fmt.Errorf("catalog: task marker %s: %w", marker, err)
		}
		q.After = m
	}
	out, err := s.imp.tasks.ListTasks(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("catalog: list tasks: %w", err)
	}
	return out, nil
}

// recoverImport is recovery's part for an image abandoned while uploading
// or importing (called inside the recovering update; it only changes img):
// the lock goes with the import.
func recoverImport(img *imaged.Image) (taskID string) {
	taskID = img.Properties[propImportTask]
	if img.Status == imaged.StatusImporting || img.Status == imaged.StatusActive {
		// An import's or a copy's stores did not get the image.
		dropImportLock(img, taskID, img.Properties[propImportingStores])
	}
	if img.Status == imaged.StatusUploading {
		img.Size = nil
	}
	return taskID
}

// failRecoveredTask records on its task that an import was abandoned.
func (s *Service) failRecoveredTask(ctx context.Context, taskID string) {
	if s.imp == nil || taskID == "" {
		return
	}
	s.setTask(ctx, taskID, func(t *imaged.Task) {
		if t.Status == imaged.TaskPending || t.Status == imaged.TaskProcessing {
			t.Status = imaged.TaskFailure
			t.Message = "The import was abandoned: the process running it stopped before it finished."
		}
	})
}
