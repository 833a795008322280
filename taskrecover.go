package imaged

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// FailAbandonedTasks fails the tasks of the given types that are pending
// or processing and whose UpdatedAt, the heartbeat their runner renews
// while they run, is before cutoff: the process running them is gone.
// Each is failed with message, now and an expiry ttl after now, in one
// conditional update (still unended, still stale), so that several
// processes may sweep at once and a task that moved meanwhile is left
// alone. It returns the ids of the tasks it failed. Background tasks of
// every kind (native tasks, Glance's legacy import) share this one rule.
func FailAbandonedTasks(ctx context.Context, store TaskStore, types []string, cutoff, now time.Time, ttl time.Duration, message string) ([]string, error) {
	q := TaskQuery{Types: types, Statuses: []string{string(TaskPending), string(TaskProcessing)},
		SortKey: "updated_at", SortDir: Asc, Limit: 200}
	var failed []string
	for {
		page, err := store.ListTasks(ctx, q)
		if err != nil {
			return failed, fmt.Errorf("list abandoned tasks: %w", err)
		}
		for _, t := range page {
			if !t.UpdatedAt.Before(cutoff) {
				return failed, nil // sorted by updated_at: the rest are alive
			}
			_, err := store.UpdateTask(ctx, t.ID, func(cur *Task) error {
				if (cur.Status != TaskPending && cur.Status != TaskProcessing) || !cur.UpdatedAt.Before(cutoff) {
					return errTaskAlive
				}
				exp := now.Add(ttl)
				cur.Status, cur.Message, cur.UpdatedAt, cur.ExpiresAt = TaskFailure, message, now, &exp
				return nil
			})
			switch {
			case err == nil:
				failed = append(failed, t.ID)
			case errors.Is(err, errTaskAlive) || ErrorCode(err) == ENOTFOUND:
			default:
				return failed, fmt.Errorf("fail abandoned task %s: %w", t.ID, err)
			}
		}
		if len(page) < q.Limit {
			return failed, nil
		}
		q.After = page[len(page)-1]
	}
}

// errTaskAlive stops the conditional update of a task that ended or
// moved since it was listed.
var errTaskAlive = errors.New("task is not abandoned")
