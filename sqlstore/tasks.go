package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/imaged/imaged"
)

var _ imaged.TaskStore = (*Store)(nil)

const taskCols = `id, type, status, owner, image_id, request_id, user_id, input_json, result_json, message, created_at, updated_at, expires_at, progress_done, progress_total, errors_json`

func taskNotFound(id string) error {
	return imaged.Errorf(imaged.ENOTFOUND, "Task with the given id %s was not found", id)
}

// encodeObject renders a task's input or result; nil is SQL NULL.
func encodeObject(m map[string]any) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, imaged.Errorf(imaged.EINVALID, "task data is not JSON: %v", err)
	}
	return string(b), nil
}

func decodeObject(s sql.NullString) (map[string]any, error) {
	if !s.Valid {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s.String), &m); err != nil {
		return nil, fmt.Errorf("sqlstore: decode task data: %w", err)
	}
	return m, nil
}

func scanTask(sc rowScanner) (*imaged.Task, error) {
	var (
		t                              imaged.Task
		status                         string
		owner, image, req, user, in, r sql.NullString
		c, u                           int64
		exp                            sql.NullInt64
		errs                           sql.NullString
	)
	if err := sc.Scan(&t.ID, &t.Type, &status, &owner, &image, &req, &user, &in, &r, &t.Message, &c, &u, &exp,
		&t.Progress.Done, &t.Progress.Total, &errs); err != nil {
		return nil, err
	}
	if errs.Valid {
		if err := json.Unmarshal([]byte(errs.String), &t.Errors); err != nil {
			return nil, fmt.Errorf("sqlstore: decode task errors: %w", err)
		}
	}
	t.Status = imaged.TaskStatus(status)
	t.Owner, t.ImageID, t.RequestID, t.UserID = owner.String, image.String, req.String, user.String
	t.CreatedAt, t.UpdatedAt = fromMicros(c), fromMicros(u)
	if exp.Valid {
		e := fromMicros(exp.Int64)
		t.ExpiresAt = &e
	}
	var err error
	if t.Input, err = decodeObject(in); err != nil {
		return nil, err
	}
	if t.Result, err = decodeObject(r); err != nil {
		return nil, err
	}
	return &t, nil
}

// taskArgs are t's column values in taskCols order.
func taskArgs(t *imaged.Task) ([]any, error) {
	in, err := encodeObject(t.Input)
	if err != nil {
		return nil, err
	}
	res, err := encodeObject(t.Result)
	if err != nil {
		return nil, err
	}
	// No errors is NULL, so that a task without any reads back with a nil
	// slice, as it was written.
	var errs any
	if len(t.Errors) > 0 {
		b, err := json.Marshal(t.Errors)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: encode task errors: %w", err)
		}
		errs = string(b)
	}
	return []any{t.ID, t.Type, string(t.Status), nullStr(t.Owner), nullStr(t.ImageID), nullStr(t.RequestID),
		nullStr(t.UserID), in, res, t.Message, micros(t.CreatedAt), micros(t.UpdatedAt), nullTime(t.ExpiresAt),
		t.Progress.Done, t.Progress.Total, errs}, nil
}

// CreateTask inserts a task; ECONFLICT if its id is taken.
func (s *Store) CreateTask(ctx context.Context, t *imaged.Task) error {
	if t == nil || t.ID == "" {
		return imaged.Errorf(imaged.EINVALID, "task id is required")
	}
	args, err := taskArgs(t)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, s.d.rebind(`INSERT INTO tasks (`+taskCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`), args...)
	if err != nil {
		return fmt.Errorf("sqlstore: create task: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: create task: %w", err)
	} else if n == 0 {
		return imaged.Errorf(imaged.ECONFLICT, "Task with identifier %s already exists", t.ID)
	}
	return nil
}

// GetTask returns one task; ENOTFOUND if absent.
func (s *Store) GetTask(ctx context.Context, id string) (*imaged.Task, error) {
	t, err := scanTask(s.r.QueryRowContext(ctx, s.d.rebind(`SELECT `+taskCols+` FROM tasks WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, taskNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: get task: %w", err)
	}
	return t, nil
}

// UpdateTask is a read-modify-write of one task in a transaction that
// locks its row (SQLite's write transactions are serialised anyway).
func (s *Store) UpdateTask(ctx context.Context, id string, fn func(*imaged.Task) error) (*imaged.Task, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: update task: %w", err)
	}
	defer tx.Rollback()
	lock := ""
	if s.d.dollar {
		lock = " FOR UPDATE"
	}
	t, err := scanTask(tx.QueryRowContext(ctx, s.d.rebind(`SELECT `+taskCols+` FROM tasks WHERE id = ?`+lock), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, taskNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: update task: %w", err)
	}
	if err := fn(t); err != nil {
		return nil, err
	}
	t.ID = id
	args, err := taskArgs(t)
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, s.d.rebind(`UPDATE tasks SET type = ?, status = ?, owner = ?, image_id = ?, request_id = ?, user_id = ?, input_json = ?, result_json = ?, message = ?, created_at = ?, updated_at = ?, expires_at = ?, progress_done = ?, progress_total = ?, errors_json = ? WHERE id = ?`),
		append(args[1:], id)...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: update task: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: update task: %w", err)
	}
	return t, nil
}

// taskSortValue is the marker's value of the sort column.
func taskSortValue(t *imaged.Task, key string) any {
	switch key {
	case "id":
		return t.ID
	case "type":
		return t.Type
	case "status":
		return string(t.Status)
	case "updated_at":
		return micros(t.UpdatedAt)
	}
	return micros(t.CreatedAt)
}

// ListTasks returns one keyset page of tasks: the sort column, then id in
// the same direction.
func (s *Store) ListTasks(ctx context.Context, q imaged.TaskQuery) ([]*imaged.Task, error) {
	key := q.SortKey
	if key == "" {
		key = "created_at"
	}
	if !slices.Contains(imaged.TaskSortKeys, key) {
		return nil, imaged.Errorf(imaged.EINVALID, "Sort key supplied was not valid.")
	}
	dir, cmp := "DESC", "<"
	if q.SortDir == imaged.Asc {
		dir, cmp = "ASC", ">"
	}
	var where []string
	var args []any
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		where = append(where, col+" IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")+")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	if q.Owner != "" {
		where = append(where, "owner = ?")
		args = append(args, q.Owner)
	}
	if q.ImageID != "" {
		where = append(where, "image_id = ?")
		args = append(args, q.ImageID)
	}
	in("status", q.Statuses)
	in("type", q.Types)
	if q.After != nil {
		v := taskSortValue(q.After, key)
		if key == "id" {
			where = append(where, "id "+cmp+" ?")
			args = append(args, v)
		} else {
			where = append(where, "("+key+" "+cmp+" ? OR ("+key+" = ? AND id "+cmp+" ?))")
			args = append(args, v, v, q.After.ID)
		}
	}
	query := `SELECT ` + taskCols + ` FROM tasks`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY " + key + " " + dir
	if key != "id" {
		query += ", id " + dir
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	query += " LIMIT ?"
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, s.d.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list tasks: %w", err)
	}
	defer rows.Close()
	out := []*imaged.Task{}
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list tasks: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list tasks: %w", err)
	}
	return out, nil
}
