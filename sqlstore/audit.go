package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imaged/imaged"
)

// The audit log (imaged.ContainerStore). Entries are append-only; ids come
// from the database (AUTOINCREMENT / an identity column) so they only grow
// and page "newest first" by id.

const auditCols = `id, time, request_id, user_id, project_id, action, target, result, detail`

// AppendAudit records e. The store always assigns e.ID; it sets e.Time to
// now when it is zero.
func (s *Store) AppendAudit(ctx context.Context, e *imaged.AuditEntry) error {
	if e == nil || e.Action == "" {
		return imaged.Errorf(imaged.EINVALID, "audit entry action is required")
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	var detail any
	if e.Detail != nil {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return imaged.Errorf(imaged.EINVALID, "audit detail is not JSON: %v", err)
		}
		detail = string(b)
	}
	insert := func() (id int64, err error) {
		err = s.w.QueryRowContext(ctx, s.d.rebind(`INSERT INTO audit_log (time, request_id, user_id, project_id, action, target, result, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			micros(e.Time), e.RequestID, e.UserID, e.ProjectID, e.Action, e.Target, e.Result, detail).Scan(&id)
		return id, err
	}
	id, err := insert()
	if err != nil && s.d.name == Postgres && isUniqueViolation(err) {
		// Rows copied in with their ids (sqlstore.Copy) left the identity
		// sequence behind: move it past them, once, and try again.
		if _, serr := s.w.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('audit_log', 'id'), (SELECT max(id) FROM audit_log))`); serr != nil {
			return fmt.Errorf("sqlstore: append audit: %w", serr)
		}
		id, err = insert()
	}
	if err != nil {
		return fmt.Errorf("sqlstore: append audit: %w", err)
	}
	e.ID = id
	e.Time = e.Time.UTC().Truncate(time.Microsecond) // as it reads back
	return nil
}

// ListAudit returns the entries matching q, newest (highest id) first.
// Since is inclusive, Until exclusive.
func (s *Store) ListAudit(ctx context.Context, q imaged.AuditQuery) ([]*imaged.AuditEntry, error) {
	var where []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	if prefix, ok := strings.CutSuffix(q.Action, "*"); ok {
		if prefix != "" {
			// The range test lets the action index narrow the scan; substr
			// (in characters, in both dialects) is exact where LIKE would
			// need escaping and is case-insensitive on SQLite.
			where = append(where, "action >= ? AND substr(action, 1, ?) = ?")
			args = append(args, prefix, utf8.RuneCountInString(prefix), prefix)
		}
	} else {
		eq("action", q.Action)
	}
	eq("target", q.Target)
	eq("user_id", q.UserID)
	eq("result", q.Result)
	if q.Since != nil {
		where = append(where, "time >= ?")
		args = append(args, micros(*q.Since))
	}
	if q.Until != nil {
		where = append(where, "time < ?")
		args = append(args, micros(*q.Until))
	}
	if q.BeforeID > 0 {
		where = append(where, "id < ?")
		args = append(args, q.BeforeID)
	}
	query := `SELECT ` + auditCols + ` FROM audit_log`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, s.d.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list audit: %w", err)
	}
	defer rows.Close()
	out := []*imaged.AuditEntry{}
	for rows.Next() {
		var (
			e      imaged.AuditEntry
			t      int64
			detail sql.NullString
		)
		if err := rows.Scan(&e.ID, &t, &e.RequestID, &e.UserID, &e.ProjectID, &e.Action, &e.Target, &e.Result, &detail); err != nil {
			return nil, fmt.Errorf("sqlstore: list audit: %w", err)
		}
		e.Time = fromMicros(t)
		if detail.Valid {
			if err := json.Unmarshal([]byte(detail.String), &e.Detail); err != nil {
				return nil, fmt.Errorf("sqlstore: decode audit detail %d: %w", e.ID, err)
			}
		}
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list audit: %w", err)
	}
	return out, nil
}
