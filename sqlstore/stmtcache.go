package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmtCache keeps prepared statements keyed by their SQL text, so that a
// listing shape is parsed and planned once per connection rather than on
// every call (re-parsing was a quarter of a listing's CPU on SQLite). It
// holds at most max statements; when full, it closes an arbitrary one:
// listings come in a few dozen shapes, so eviction is rare and an LRU
// would only add a lock-protected list update to every hit.
type stmtCache struct {
	db  *sql.DB
	max int

	// mu is held for reading while a statement starts a query, and for
	// writing while one is added or evicted, so that a statement is never
	// closed between its lookup and its use. Once a query has started,
	// database/sql keeps its statement alive until the rows are closed.
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB, max int) *stmtCache {
	return &stmtCache{db: db, max: max, m: make(map[string]*sql.Stmt)}
}

// query runs the statement for text with args and hands the rows to fn.
func (c *stmtCache) query(ctx context.Context, text string, args []any, fn func(*sql.Rows) error) error {
	rows, err := c.start(ctx, text, args)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := fn(rows); err != nil {
		return err
	}
	return rows.Close()
}

// start begins the query, preparing and caching the statement first if
// needed.
func (c *stmtCache) start(ctx context.Context, text string, args []any) (*sql.Rows, error) {
	c.mu.RLock()
	st := c.m[text]
	if st != nil {
		rows, err := st.QueryContext(ctx, args...)
		c.mu.RUnlock()
		return rows, err
	}
	c.mu.RUnlock()
	// Prepare outside the lock: another caller may race us to it, and
	// then one of the two statements is closed.
	st, err := c.db.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if old := c.m[text]; old != nil {
		st.Close()
		st = old
	} else {
		if len(c.m) >= c.max {
			for k, v := range c.m {
				v.Close()
				delete(c.m, k)
				break
			}
		}
		c.m[text] = st
	}
	// Downgrade: start the query while no writer can close st.
	c.mu.Unlock()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if cur := c.m[text]; cur != nil {
		st = cur
	} else {
		// Evicted in between (a burst of new shapes): run unprepared.
		return c.db.QueryContext(ctx, text, args...)
	}
	return st.QueryContext(ctx, args...)
}

// close closes every cached statement.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for k, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, k)
	}
	return errors.Join(errs...)
}

// prepareAll prepares texts on the cache's pool and keeps them (no
// eviction applies: call it with a short, fixed list, at open).
func (c *stmtCache) prepareAll(ctx context.Context, texts ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, text := range texts {
		if c.m[text] != nil {
			continue
		}
		st, err := c.db.PrepareContext(ctx, text)
		if err != nil {
			return err
		}
		c.m[text] = st
	}
	return nil
}

// execTx runs text with args inside tx, through the statement prepared by
// prepareAll when there is one (database/sql reuses the statement already
// prepared on tx's connection), as is otherwise. It never prepares: the
// transaction may hold the pool's only connection, which a prepare would
// wait for forever.
func (c *stmtCache) execTx(ctx context.Context, tx *sql.Tx, text string, args ...any) (sql.Result, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if st := c.m[text]; st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, text, args...)
}
