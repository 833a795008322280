package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/imaged/imaged"
)

// Node agents (imaged.AgentStore): registrations, inventories and token
// digests. Every write that touches an inventory first writes or locks the
// agent's row, so that two heartbeats of one agent on PostgreSQL serialise
// instead of racing their delete-and-insert of the inventory rows.

var _ imaged.AgentStore = (*Store)(nil)

func agentNotFound(id string) error {
	return imaged.Errorf(imaged.ENOTFOUND, "agent %q is not registered", id)
}

// PutAgentToken records (or replaces) the digest of an agent's token.
func (s *Store) PutAgentToken(ctx context.Context, agentID, digest string) error {
	if agentID == "" || digest == "" {
		return imaged.Errorf(imaged.EINVALID, "agent id and token digest are required")
	}
	_, err := s.w.ExecContext(ctx, s.d.rebind(`INSERT INTO agent_tokens (agent_id, sha256, created_at) VALUES (?, ?, ?)
		ON CONFLICT (agent_id) DO UPDATE SET sha256 = excluded.sha256, created_at = excluded.created_at`),
		agentID, digest, micros(s.now()))
	if err != nil {
		return fmt.Errorf("sqlstore: put agent token: %w", err)
	}
	return nil
}

// GetAgentToken returns the digest of an agent's token; ENOTFOUND if none.
func (s *Store) GetAgentToken(ctx context.Context, agentID string) (string, error) {
	var d string
	err := s.r.QueryRowContext(ctx, s.d.rebind(`SELECT sha256 FROM agent_tokens WHERE agent_id = ?`), agentID).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", imaged.Errorf(imaged.ENOTFOUND, "no token is registered for agent %q", agentID)
	} else if err != nil {
		return "", fmt.Errorf("sqlstore: get agent token: %w", err)
	}
	return d, nil
}

// UpsertAgent writes a registration (and, when a.Images is not nil, the
// whole inventory) in one transaction.
func (s *Store) UpsertAgent(ctx context.Context, a *imaged.Agent) error {
	if a == nil || a.ID == "" {
		return imaged.Errorf(imaged.EINVALID, "agent id is required")
	}
	reg := a.RegisteredAt
	if reg.IsZero() {
		reg = a.LastHeartbeat
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: upsert agent: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO agents (id, addr, runtime, version, heartbeat_ms, registered_at, last_heartbeat)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, runtime = excluded.runtime, version = excluded.version,
			heartbeat_ms = excluded.heartbeat_ms, last_heartbeat = excluded.last_heartbeat`),
		a.ID, a.Addr, a.Runtime, a.Version, a.HeartbeatInterval.Milliseconds(), micros(reg), micros(a.LastHeartbeat)); err != nil {
		return fmt.Errorf("sqlstore: upsert agent: %w", err)
	}
	if a.Images != nil {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM agent_images WHERE agent_id = ?`), a.ID); err != nil {
			return fmt.Errorf("sqlstore: replace agent inventory: %w", err)
		}
		if err := s.insertAgentImages(ctx, tx, a.ID, a.Images); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: upsert agent: %w", err)
	}
	return nil
}

// insertAgentImages upserts inventory rows; a duplicate (reference,
// architecture) in imgs keeps the last.
func (s *Store) insertAgentImages(ctx context.Context, tx *sql.Tx, agentID string, imgs []imaged.AgentImage) error {
	if len(imgs) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, s.d.rebind(`INSERT INTO agent_images (agent_id, reference, architecture, digest, size) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (agent_id, reference, architecture) DO UPDATE SET digest = excluded.digest, size = excluded.size`))
	if err != nil {
		return fmt.Errorf("sqlstore: agent inventory: %w", err)
	}
	defer st.Close()
	for _, im := range imgs {
		if _, err := st.ExecContext(ctx, agentID, im.Reference, im.Architecture, im.Digest, im.Size); err != nil {
			return fmt.Errorf("sqlstore: agent inventory: %w", err)
		}
	}
	return nil
}

const agentCols = `id, addr, runtime, version, heartbeat_ms, registered_at, last_heartbeat`

func scanAgent(sc rowScanner, extra ...any) (*imaged.Agent, error) {
	var (
		a         imaged.Agent
		hb        int64
		reg, last int64
	)
	if err := sc.Scan(append([]any{&a.ID, &a.Addr, &a.Runtime, &a.Version, &hb, &reg, &last}, extra...)...); err != nil {
		return nil, err
	}
	a.HeartbeatInterval = time.Duration(hb) * time.Millisecond
	a.RegisteredAt, a.LastHeartbeat = fromMicros(reg), fromMicros(last)
	return &a, nil
}

// GetAgent returns an agent and its inventory; ENOTFOUND if unknown.
func (s *Store) GetAgent(ctx context.Context, id string) (*imaged.Agent, error) {
	a, err := scanAgent(s.r.QueryRowContext(ctx, s.d.rebind(`SELECT `+agentCols+` FROM agents WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: get agent: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, s.d.rebind(`SELECT reference, architecture, digest, size FROM agent_images
		WHERE agent_id = ? ORDER BY reference, architecture`), id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get agent inventory: %w", err)
	}
	defer rows.Close()
	a.Images = []imaged.AgentImage{}
	for rows.Next() {
		var im imaged.AgentImage
		if err := rows.Scan(&im.Reference, &im.Architecture, &im.Digest, &im.Size); err != nil {
			return nil, fmt.Errorf("sqlstore: get agent inventory: %w", err)
		}
		a.Images = append(a.Images, im)
		a.ImageCount++
		a.ImagesSize += im.Size
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: get agent inventory: %w", err)
	}
	return a, nil
}

// ListAgents returns every agent, sorted by id, with inventory counts.
func (s *Store) ListAgents(ctx context.Context) ([]*imaged.Agent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT a.id, a.addr, a.runtime, a.version, a.heartbeat_ms, a.registered_at, a.last_heartbeat,
		COUNT(i.reference), COALESCE(SUM(i.size), 0)
		FROM agents a LEFT JOIN agent_images i ON i.agent_id = a.id
		GROUP BY a.id, a.addr, a.runtime, a.version, a.heartbeat_ms, a.registered_at, a.last_heartbeat
		ORDER BY a.id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list agents: %w", err)
	}
	defer rows.Close()
	out := []*imaged.Agent{}
	for rows.Next() {
		var n, size int64
		a, err := scanAgent(rows, &n, &size)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list agents: %w", err)
		}
		a.ImageCount, a.ImagesSize = int(n), size
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list agents: %w", err)
	}
	return out, nil
}

// UpdateAgentImages applies inventory edits in one transaction; each
// agent's row is locked (PostgreSQL) before its inventory changes, and
// edits of unknown agents are skipped.
func (s *Store) UpdateAgentImages(ctx context.Context, updates ...imaged.AgentImagesUpdate) error {
	if len(updates) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: update agent inventory: %w", err)
	}
	defer tx.Rollback()
	lock := ""
	if s.d.dollar {
		lock = " FOR UPDATE"
	}
	del, err := tx.PrepareContext(ctx, s.d.rebind(`DELETE FROM agent_images WHERE agent_id = ? AND reference = ? AND architecture = ?`))
	if err != nil {
		return fmt.Errorf("sqlstore: update agent inventory: %w", err)
	}
	defer del.Close()
	for _, u := range updates {
		var id string
		if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT id FROM agents WHERE id = ?`+lock), u.AgentID).Scan(&id); errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return fmt.Errorf("sqlstore: update agent inventory: %w", err)
		}
		for _, k := range u.Remove {
			if _, err := del.ExecContext(ctx, u.AgentID, k.Reference, k.Architecture); err != nil {
				return fmt.Errorf("sqlstore: update agent inventory: %w", err)
			}
		}
		if err := s.insertAgentImages(ctx, tx, u.AgentID, u.Add); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: update agent inventory: %w", err)
	}
	return nil
}

// AgentsHolding looks each key up in the inventory's image index.
func (s *Store) AgentsHolding(ctx context.Context, keys []imaged.AgentImageKey) (map[imaged.AgentImageKey][]string, error) {
	out := map[imaged.AgentImageKey][]string{}
	q := s.d.rebind(`SELECT agent_id FROM agent_images WHERE reference = ? AND architecture = ? ORDER BY agent_id`)
	for _, k := range keys {
		if _, done := out[k]; done {
			continue
		}
		ids, err := func() ([]string, error) {
			rows, err := s.r.QueryContext(ctx, q, k.Reference, k.Architecture)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var ids []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return nil, err
				}
				ids = append(ids, id)
			}
			return ids, rows.Err()
		}()
		if err != nil {
			return nil, fmt.Errorf("sqlstore: agents holding: %w", err)
		}
		if len(ids) > 0 {
			sort.Strings(ids)
			out[k] = ids
		}
	}
	return out, nil
}
