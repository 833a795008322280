package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/imaged/imaged"
)

func memberNotFound(imageID, memberID string) error {
	return imaged.Errorf(imaged.ENOTFOUND, "%s is not a member of image %s", memberID, imageID)
}

// CreateMember adds a member to a live image: ENOTFOUND if the image is
// not live, ECONFLICT if the member exists.
func (s *Store) CreateMember(ctx context.Context, m *imaged.Member) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: create member: %w", err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, s.d.rebind(`SELECT 1 FROM images i WHERE i.id = ? AND i.deleted_at IS NULL`+s.d.lockRow), m.ImageID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(m.ImageID)
	} else if err != nil {
		return fmt.Errorf("sqlstore: create member: %w", err)
	}
	res, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO image_members (image_id, member, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (image_id, member) DO NOTHING`),
		m.ImageID, m.MemberID, string(m.Status), micros(m.CreatedAt), micros(m.UpdatedAt))
	if err != nil {
		return fmt.Errorf("sqlstore: create member: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: create member: %w", err)
	} else if n == 0 {
		return imaged.Errorf(imaged.ECONFLICT, "Member %s already exists for image %s", m.MemberID, m.ImageID)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: create member: %w", err)
	}
	return nil
}

const memberCols = `image_id, member, status, created_at, updated_at`

func scanMember(sc rowScanner) (*imaged.Member, error) {
	var m imaged.Member
	var status string
	var c, u int64
	if err := sc.Scan(&m.ImageID, &m.MemberID, &status, &c, &u); err != nil {
		return nil, err
	}
	m.Status = imaged.MemberStatus(status)
	m.CreatedAt, m.UpdatedAt = fromMicros(c), fromMicros(u)
	return &m, nil
}

// GetMember returns one member; ENOTFOUND if absent.
func (s *Store) GetMember(ctx context.Context, imageID, memberID string) (*imaged.Member, error) {
	m, err := scanMember(s.r.QueryRowContext(ctx, s.d.rebind(`SELECT `+memberCols+` FROM image_members WHERE image_id = ? AND member = ?`), imageID, memberID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, memberNotFound(imageID, memberID)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: get member: %w", err)
	}
	return m, nil
}

// ListMembers returns an image's members, oldest first (an unknown or
// deleted image has none).
func (s *Store) ListMembers(ctx context.Context, imageID string) ([]*imaged.Member, error) {
	rows, err := s.r.QueryContext(ctx, s.d.rebind(`SELECT `+memberCols+` FROM image_members WHERE image_id = ? ORDER BY created_at, member`), imageID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list members: %w", err)
	}
	defer rows.Close()
	out := []*imaged.Member{}
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list members: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list members: %w", err)
	}
	return out, nil
}

// UpdateMember sets a member's status and updated time.
func (s *Store) UpdateMember(ctx context.Context, m *imaged.Member) error {
	res, err := s.w.ExecContext(ctx, s.d.rebind(`UPDATE image_members SET status = ?, updated_at = ? WHERE image_id = ? AND member = ?`),
		string(m.Status), micros(m.UpdatedAt), m.ImageID, m.MemberID)
	if err != nil {
		return fmt.Errorf("sqlstore: update member: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: update member: %w", err)
	} else if n == 0 {
		return memberNotFound(m.ImageID, m.MemberID)
	}
	return nil
}

// DeleteMember removes a member; ENOTFOUND if absent.
func (s *Store) DeleteMember(ctx context.Context, imageID, memberID string) error {
	res, err := s.w.ExecContext(ctx, s.d.rebind(`DELETE FROM image_members WHERE image_id = ? AND member = ?`), imageID, memberID)
	if err != nil {
		return fmt.Errorf("sqlstore: delete member: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: delete member: %w", err)
	} else if n == 0 {
		return memberNotFound(imageID, memberID)
	}
	return nil
}

// CountMembers returns how many members an image has.
func (s *Store) CountMembers(ctx context.Context, imageID string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, s.d.rebind(`SELECT count(*) FROM image_members WHERE image_id = ?`), imageID).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: count members: %w", err)
	}
	return n, nil
}
