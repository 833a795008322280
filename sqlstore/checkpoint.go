package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SQLite in WAL mode appends every commit to the write-ahead log; a
// checkpoint copies the logged pages back into the database file and
// fsyncs both. Left to SQLite, the committing connection runs that
// checkpoint itself whenever the log passes 1,000 pages, which for the
// images table (18 indexes: a create logs about 40 pages) means every
// 25th request pays for a checkpoint and two fsyncs inside its response.
// Instead, a background goroutine on a connection of its own runs a
// PASSIVE checkpoint (it never blocks writers or readers) every
// checkpointEvery, off the request path, and writes each page once however
// often it changed meanwhile. The writer keeps an automatic checkpoint at
// a much larger size (walAutocheckpointPages) as a safety net should the
// background one fall behind, and journal_size_limit keeps the log file
// from staying large after a burst.
const (
	checkpointEvery        = 200 * time.Millisecond
	walAutocheckpointPages = 16384    // 64 MiB of 4 KiB pages
	walSizeLimit           = 64 << 20 // bytes the log is truncated to once reset
)

// checkpointer runs SQLite's PASSIVE checkpoints in the background.
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
}

// startCheckpointer opens its own connection with dsn and starts the loop.
func startCheckpointer(dsn string, every time.Duration) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop(every)
	return c, nil
}

func (c *checkpointer) loop(every time.Duration) {
	defer close(c.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			// Errors (SQLITE_BUSY while another process checkpoints
			// the same file, a transient I/O error) only delay the
			// work to the next tick or to the writer's safety net.
			_, _, _ = c.checkpoint(context.Background())
		}
	}
}

// checkpoint runs one PASSIVE checkpoint and reports how many log frames
// there were and how many are now in the database file.
func (c *checkpointer) checkpoint(ctx context.Context) (logFrames, checkpointed int, err error) {
	var busy int
	err = c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &checkpointed)
	return logFrames, checkpointed, err
}

// close stops the loop and closes its connection.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
