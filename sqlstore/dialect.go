package sqlstore

import (
	"strconv"
	"strings"
)

// dialect is the seam between SQLite and PostgreSQL. Queries are written
// once with "?" placeholders and rebound for PostgreSQL.
type dialect struct {
	name Dialect
	// dollar: PostgreSQL numbers its placeholders ($1, $2...).
	dollar bool
	// nullsKeyword: add NULLS FIRST/LAST to ORDER BY. SQLite already sorts
	// NULL as the smallest value (as MySQL, Glance's reference database,
	// does); PostgreSQL sorts NULL as the largest unless told.
	nullsKeyword bool
	// notHidden is the default listing's "os_hidden is false" test. On
	// SQLite the unary + keeps the planner from ever driving a listing
	// through an index on a two-valued column.
	notHidden string
	// lockRow is appended to the SELECT of a read-modify-write. SQLite
	// needs none: its write transactions are IMMEDIATE and serialised.
	lockRow string
}

var sqliteDialect = &dialect{
	name:      SQLite,
	notHidden: `+i.os_hidden = 0`,
}

var postgresDialect = &dialect{
	name:         Postgres,
	dollar:       true,
	nullsKeyword: true,
	notHidden:    `NOT i.os_hidden`,
	lockRow:      ` FOR UPDATE OF i`,
}

// rebind rewrites "?" placeholders to "$n" for PostgreSQL. No query of this
// package has a "?" inside a literal.
func (d *dialect) rebind(q string) string {
	if !d.dollar || strings.IndexByte(q, '?') < 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// imageCols are the images columns in scan order (see scanImage): the row's
// copies of its tags and properties (migration 0002), then its lease
// (migration 0003).
const imageCols = `i.id, i.name, i.status, i.visibility, i.protected, i.os_hidden, i.owner, i.disk_format, i.container_format, i.size, i.virtual_size, i.checksum, i.os_hash_algo, i.os_hash_value, i.min_disk, i.min_ram, i.created_at, i.updated_at, i.deleted_at, i.locations, i.version, i.tags_json, i.properties_json, i.lease_id, i.lease_holder, i.lease_expires, i.lease_reserved`

// getSQL selects one live image with its tags and properties.
func (d *dialect) getSQL(forUpdate bool) string {
	q := `SELECT ` + imageCols + ` FROM images i WHERE i.id = ? AND i.deleted_at IS NULL`
	if forUpdate {
		q += d.lockRow
	}
	return q
}

// orderTerm renders one ORDER BY term with Glance's NULL placement (NULL is
// the smallest value). The NULLS clause is written only for nullable
// columns: on a NOT NULL column it changes nothing in the result but stops
// PostgreSQL from reading the order off an index (whose default NULL order
// differs), which turned every 20-image page of a large catalog into a
// sort of all matching rows.
func (d *dialect) orderTerm(b *strings.Builder, col string, desc, nullable bool) {
	b.WriteString(col)
	if desc {
		b.WriteString(" DESC")
		if d.nullsKeyword && nullable {
			b.WriteString(" NULLS LAST")
		}
	} else {
		b.WriteString(" ASC")
		if d.nullsKeyword && nullable {
			b.WriteString(" NULLS FIRST")
		}
	}
}
