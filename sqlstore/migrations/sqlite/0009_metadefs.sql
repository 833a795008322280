-- Metadata definitions (Glance's metadef_* tables). Namespaces are addressed
-- by name; id is internal and breaks sort ties in insertion order, as
-- Glance's integer ids do. Objects, properties and tags share one table
-- (kind), their JSON documents kept as text. Timestamps are unix
-- microseconds; updated_at is NULL until the first update of a definition loaded
-- from a file (as glance-manage leaves it).
CREATE TABLE metadef_namespaces (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace    TEXT NOT NULL UNIQUE,
    display_name TEXT,
    description  TEXT,
    visibility   TEXT NOT NULL,
    protected    INTEGER NOT NULL,
    owner        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER
);
CREATE INDEX metadef_namespaces_created_at ON metadef_namespaces (created_at, id);

CREATE TABLE metadef_items (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace_id INTEGER NOT NULL REFERENCES metadef_namespaces (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    data         TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER,
    UNIQUE (namespace_id, kind, name)
);

CREATE TABLE metadef_resource_types (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    protected  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER
);

CREATE TABLE metadef_namespace_resource_types (
    namespace_id      INTEGER NOT NULL REFERENCES metadef_namespaces (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    resource_type_id  INTEGER NOT NULL REFERENCES metadef_resource_types (id) DEFERRABLE INITIALLY DEFERRED,
    prefix            TEXT,
    properties_target TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER,
    PRIMARY KEY (namespace_id, resource_type_id)
);
CREATE INDEX metadef_nrt_resource_type ON metadef_namespace_resource_types (resource_type_id);
