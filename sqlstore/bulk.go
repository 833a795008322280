package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/imaged/imaged"
)

// bulkInsert loads many new images (with tags and properties) in one
// transaction with multi-row INSERTs. It is for seeding benchmarks and
// tests; it does not check for existing ids.
func (s *Store) bulkInsert(ctx context.Context, imgs []*imaged.Image) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const per = 300 // 23 columns × 300 rows stays under both placeholder limits
	for start := 0; start < len(imgs); start += per {
		batch := imgs[start:min(start+per, len(imgs))]
		var b strings.Builder
		b.WriteString(`INSERT INTO images (id, name, status, visibility, protected, os_hidden, owner, disk_format, container_format, size, virtual_size, checksum, os_hash_algo, os_hash_value, min_disk, min_ram, created_at, updated_at, deleted_at, locations, version, tags_json, properties_json) VALUES `)
		args := make([]any, 0, 23*len(batch))
		var tagArgs, propArgs []any
		for i, img := range batch {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			locs, err := encodeLocations(img.Locations)
			if err != nil {
				return err
			}
			tagsJSON, propsJSON, err := encodeChildren(uniqueSorted(img.Tags), img.Properties)
			if err != nil {
				return err
			}
			args = append(args, img.ID, nullStrPtr(img.Name), string(img.Status), string(img.Visibility), img.Protected, img.OSHidden,
				nullStr(img.Owner), nullStr(img.DiskFormat), nullStr(img.ContainerFormat), nullInt(img.Size), nullInt(img.VirtualSize),
				nullStr(img.Checksum), nullStr(img.OSHashAlgo), nullStr(img.OSHashValue), img.MinDisk, img.MinRAM,
				micros(img.CreatedAt), micros(img.UpdatedAt), nullTime(img.DeletedAt), locs, img.Version, tagsJSON, propsJSON)
			for _, t := range uniqueSorted(img.Tags) {
				tagArgs = append(tagArgs, img.ID, t)
			}
			for k, v := range img.Properties {
				propArgs = append(propArgs, img.ID, k, v)
			}
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(b.String()), args...); err != nil {
			return fmt.Errorf("sqlstore: bulk images: %w", err)
		}
		if err := multiInsert(ctx, s, tx, `INSERT INTO image_tags (image_id, value) VALUES `, 2, tagArgs); err != nil {
			return err
		}
		if err := multiInsert(ctx, s, tx, `INSERT INTO image_properties (image_id, name, value) VALUES `, 3, propArgs); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// multiInsert inserts rows of width columns from flat args, 2000 rows a
// statement.
func multiInsert(ctx context.Context, s *Store, tx *sql.Tx, head string, width int, args []any) error {
	row := "(?" + strings.Repeat(", ?", width-1) + ")"
	const per = 2000
	for len(args) > 0 {
		n := min(len(args)/width, per)
		q := head + row + strings.Repeat(", "+row, n-1)
		if _, err := tx.ExecContext(ctx, s.d.rebind(q), args[:n*width]...); err != nil {
			return fmt.Errorf("sqlstore: bulk insert: %w", err)
		}
		args = args[n*width:]
	}
	return nil
}

// bulkMembers loads many members in one transaction.
func (s *Store) bulkMembers(ctx context.Context, ms []*imaged.Member) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	args := make([]any, 0, 5*len(ms))
	for _, m := range ms {
		args = append(args, m.ImageID, m.MemberID, string(m.Status), micros(m.CreatedAt), micros(m.UpdatedAt))
	}
	if err := multiInsert(ctx, s, tx, `INSERT INTO image_members (image_id, member, status, created_at, updated_at) VALUES `, 5, args); err != nil {
		return err
	}
	return tx.Commit()
}

// analyze refreshes the planner's statistics (after a bulk load).
func (s *Store) analyze(ctx context.Context) error {
	_, err := s.w.ExecContext(ctx, `ANALYZE`)
	return err
}
