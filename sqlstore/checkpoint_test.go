package sqlstore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
)

// The writer's own automatic checkpoint only starts at 64 MiB of log, so
// rows reach the database file itself (read here with immutable=1, which
// ignores the log) only through the background checkpointer.
func TestBackgroundCheckpointMovesCommitsIntoTheFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "imaged.db")
	s, err := sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 20
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		name := "ckpt"
		img := &imaged.Image{ID: uuid.NewString(), Name: &name, Status: imaged.StatusQueued,
			Visibility: imaged.VisibilityShared, Owner: "p", CreatedAt: now, UpdatedAt: now,
			Properties: map[string]string{"k": "v"}, Tags: []string{"t"}}
		if err := s.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	inFile := func() int {
		db, err := sql.Open("sqlite", "file:"+path+"?immutable=1")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var c int
		if err := db.QueryRow(`SELECT count(*) FROM images WHERE name = 'ckpt'`).Scan(&c); err != nil {
			return -1 // the file may be caught mid-checkpoint
		}
		return c
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := inFile()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file holds %d of %d images 10 s after the commits: no background checkpoint", got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
