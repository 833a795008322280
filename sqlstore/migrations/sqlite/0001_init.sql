-- Initial schema. Timestamps are unix microseconds so that they sort and
-- compare as numbers. Deleted images stay as tombstones (deleted_at set);
-- every listing index is partial on live rows so tombstones cost nothing there.

CREATE TABLE images (
    id               TEXT NOT NULL PRIMARY KEY,
    name             TEXT,
    status           TEXT NOT NULL,
    visibility       TEXT NOT NULL,
    protected        INTEGER NOT NULL,
    os_hidden        INTEGER NOT NULL,
    owner            TEXT,
    disk_format      TEXT,
    container_format TEXT,
    size             INTEGER,
    virtual_size     INTEGER,
    checksum         TEXT,
    os_hash_algo     TEXT,
    os_hash_value    TEXT,
    min_disk         INTEGER NOT NULL,
    min_ram          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    deleted_at       INTEGER,
    locations        TEXT NOT NULL,
    version          INTEGER NOT NULL
);

-- One index per sortable/filterable column, with the default tie-breakers
-- (created_at, id) so that a filter or a sort plus the default order is a
-- plain index walk.
CREATE INDEX images_created_at ON images (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_name ON images (name, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_status ON images (status, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_container_format ON images (container_format, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_disk_format ON images (disk_format, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_size ON images (size, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_updated_at ON images (updated_at, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_visibility ON images (visibility, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_owner ON images (owner, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_min_disk ON images (min_disk, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_min_ram ON images (min_ram, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_protected ON images (protected, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_os_hidden ON images (os_hidden, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_virtual_size ON images (virtual_size, created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE image_tags (
    image_id TEXT NOT NULL REFERENCES images (id),
    value    TEXT NOT NULL,
    PRIMARY KEY (image_id, value)
) WITHOUT ROWID;
CREATE INDEX image_tags_value ON image_tags (value, image_id);

CREATE TABLE image_properties (
    image_id TEXT NOT NULL REFERENCES images (id),
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (image_id, name)
) WITHOUT ROWID;
CREATE INDEX image_properties_name_value ON image_properties (name, value, image_id);

CREATE TABLE image_members (
    image_id   TEXT NOT NULL REFERENCES images (id),
    member     TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (image_id, member)
) WITHOUT ROWID;
CREATE INDEX image_members_member ON image_members (member, status, image_id);
