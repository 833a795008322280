package sqlstore

import (
	"context"
	"database/sql"

	"github.com/imaged/imaged"
)

// ListSQL exposes the listing query to the EXPLAIN tests.
func (s *Store) ListSQL(q imaged.ImageQuery) (string, []any, error) {
	return s.listSQL(context.Background(), &q)
}

// BulkInsert exposes the seeding path to tests and benchmarks.
func (s *Store) BulkInsert(ctx context.Context, imgs []*imaged.Image) error {
	return s.bulkInsert(ctx, imgs)
}

// BulkMembers and Analyze expose seeding helpers to tests and benchmarks.
func (s *Store) BulkMembers(ctx context.Context, ms []*imaged.Member) error {
	return s.bulkMembers(ctx, ms)
}

func (s *Store) Analyze(ctx context.Context) error { return s.analyze(ctx) }

// ReadDB exposes the read pool (on PostgreSQL, the listings' pool).
func (s *Store) ReadDB() *sql.DB { return s.r }
