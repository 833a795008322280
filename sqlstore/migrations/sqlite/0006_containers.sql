-- Container images (registries, container rows, aliases), the audit log,
-- and the progress of native background tasks.
--
-- A container image is also a catalog image: its container_images row names
-- an images row (same id) that the store writes in the same transaction, so
-- that the Glance API lists it (container_format 'docker'). The catalog
-- fields (owner, visibility, protection, tags, version) live only on the
-- images row. A container row whose images row was deleted through the
-- Glance API is dead: reads ignore it and the next write of its identity
-- removes it. JSON values are kept as text, as locations are.

CREATE TABLE registries (
    name       TEXT NOT NULL PRIMARY KEY,
    url        TEXT NOT NULL,
    type       TEXT NOT NULL,
    projects   TEXT NOT NULL,
    username   TEXT NOT NULL,
    password   TEXT NOT NULL,
    verify_tls INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE container_images (
    image_id        TEXT NOT NULL PRIMARY KEY REFERENCES images (id),
    reference       TEXT NOT NULL,
    registry        TEXT NOT NULL,
    registry_host   TEXT NOT NULL,
    project         TEXT NOT NULL,
    repository      TEXT NOT NULL,
    tag             TEXT NOT NULL,
    architecture    TEXT NOT NULL,
    digest          TEXT NOT NULL,
    index_digest    TEXT NOT NULL,
    config_digest   TEXT NOT NULL,
    size            INTEGER NOT NULL,
    labels          TEXT NOT NULL,
    -- NULL = any accelerator; '[]' = none.
    accelerators    TEXT,
    type            TEXT NOT NULL,
    status          TEXT NOT NULL,
    resource_limits TEXT NOT NULL,
    -- The raw value of the customized-image owner label; NULL when the
    -- image has no such label (a stock image).
    customized      TEXT,
    scanned_at      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- The identity of a live image: one alive row per (reference, architecture).
CREATE UNIQUE INDEX container_images_identity ON container_images (reference, architecture) WHERE status = 'alive';
-- Scan commits and restores look an identity up among every status.
CREATE INDEX container_images_reference ON container_images (reference, architecture, status);
-- Listings: a status filter plus one sort key, id as tie-breaker.
CREATE INDEX container_images_status_reference ON container_images (status, reference, image_id);
CREATE INDEX container_images_status_created ON container_images (status, created_at, image_id);
CREATE INDEX container_images_status_updated ON container_images (status, updated_at, image_id);
CREATE INDEX container_images_status_size ON container_images (status, size, image_id);
CREATE INDEX container_images_registry ON container_images (registry, status, reference, image_id);
CREATE INDEX container_images_repository ON container_images (repository, tag, status);
CREATE INDEX container_images_customized ON container_images (customized, status, reference) WHERE customized IS NOT NULL;

-- No foreign key: the store removes an image's aliases with it, and a
-- copy between databases (sqlstore.Copy) fills tables in name order.
CREATE TABLE container_aliases (
    alias      TEXT NOT NULL PRIMARY KEY,
    image_id   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX container_aliases_image ON container_aliases (image_id, alias);

-- AUTOINCREMENT: ids are never reused, so that BeforeID paging is stable.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time       INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    project_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    result     TEXT NOT NULL,
    detail     TEXT
);
CREATE INDEX audit_log_time ON audit_log (time);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_target ON audit_log (target, id);

-- Progress of native background tasks (registry rescans, agent fan-outs).
ALTER TABLE tasks ADD COLUMN progress_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN progress_total INTEGER NOT NULL DEFAULT 0;
-- A JSON array of messages; NULL = none.
ALTER TABLE tasks ADD COLUMN errors_json TEXT;
