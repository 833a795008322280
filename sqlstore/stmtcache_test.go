package sqlstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/imaged/imaged"
)

// Many goroutines listing with more distinct query shapes than the
// statement cache holds (each limit is its own SQL text) force evictions
// while other goroutines use the evicted statements; every answer must
// still be right. Run with -race.
func TestConcurrentListShapesSQLite(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	defer s.Close()
	ctx := context.Background()
	imgs, _ := genImages(5, 0, 40)
	if err := s.BulkInsert(ctx, imgs); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListImages(ctx, imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, Visibility: "all", OSHidden: nil, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for limit := 1 + g; limit <= 300; limit += 2 {
				got, err := s.ListImages(ctx, imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, Visibility: "all", Limit: limit})
				if err != nil {
					t.Error(err)
					return
				}
				if want := min(limit, len(all)); len(got) != want || got[0].ID != all[0].ID {
					t.Errorf("limit %d: %d images, want %d", limit, len(got), want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
