package sqlstore

import (
	"context"
	"fmt"

	"github.com/imaged/imaged"
)

// usageQuery sums one owner's live images per status (the partial index
// images_owner covers "owner = ? AND deleted_at IS NULL"); Usage applies
// Glance's status rules (glance/db/sqlalchemy/api.py user_get_*) to the few
// rows, adding the reservations of uploads in progress (lease_reserved) to
// the size they will become. The casts keep PostgreSQL's SUM(bigint), a
// numeric, scannable into int64.
const usageQuery = `SELECT status, count(*), CAST(COALESCE(SUM(size), 0) AS BIGINT), CAST(COALESCE(SUM(lease_reserved), 0) AS BIGINT)
FROM images WHERE owner = ? AND deleted_at IS NULL GROUP BY status`

// Usage returns what the live images of owner consume. It reads through
// the read pool, which sees every committed transaction (SQLite in WAL
// mode, PostgreSQL read committed): a reservation committed before the
// call is counted, as imaged.ImageStore promises.
func (s *Store) Usage(ctx context.Context, owner string) (imaged.Usage, error) {
	rows, err := s.r.QueryContext(ctx, s.d.rebind(usageQuery), owner)
	if err != nil {
		return imaged.Usage{}, fmt.Errorf("sqlstore: usage of %s: %w", owner, err)
	}
	defer rows.Close()
	var u imaged.Usage
	for rows.Next() {
		var status string
		var n, size, reserved int64
		if err := rows.Scan(&status, &n, &size, &reserved); err != nil {
			return imaged.Usage{}, fmt.Errorf("sqlstore: usage of %s: %w", owner, err)
		}
		switch imaged.ImageStatus(status) {
		case imaged.StatusKilled, imaged.StatusDeleted:
			continue
		case imaged.StatusUploading:
			u.StageSize += size + reserved
			u.Uploading += n
		case imaged.StatusImporting:
			u.StageSize += size
			u.Uploading += n
		case imaged.StatusSaving:
			u.ImageSize += size + reserved
			u.Uploading += n
		default:
			u.ImageSize += size
		}
		u.ImageCount += n
	}
	if err := rows.Err(); err != nil {
		return imaged.Usage{}, fmt.Errorf("sqlstore: usage of %s: %w", owner, err)
	}
	return u, nil
}
