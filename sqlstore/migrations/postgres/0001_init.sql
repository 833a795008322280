-- Initial schema. Timestamps are unix microseconds so that they sort and
-- compare as numbers. Deleted images stay as tombstones (deleted_at set);
-- every listing index is partial on live rows so tombstones cost nothing there.

CREATE TABLE images (
    id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name             TEXT COLLATE "C",
    status           TEXT COLLATE "C" NOT NULL,
    visibility       TEXT COLLATE "C" NOT NULL,
    protected        BOOLEAN NOT NULL,
    os_hidden        BOOLEAN NOT NULL,
    owner            TEXT COLLATE "C",
    disk_format      TEXT COLLATE "C",
    container_format TEXT COLLATE "C",
    size             BIGINT,
    virtual_size     BIGINT,
    checksum         TEXT COLLATE "C",
    os_hash_algo     TEXT COLLATE "C",
    os_hash_value    TEXT COLLATE "C",
    min_disk         BIGINT NOT NULL,
    min_ram          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    deleted_at       BIGINT,
    locations        TEXT NOT NULL,
    version          BIGINT NOT NULL
);

-- One index per sortable/filterable column, with the default tie-breakers
-- (created_at, id) so that a filter or a sort plus the default order is a
-- plain index walk.
CREATE INDEX images_created_at ON images (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_name ON images (name NULLS FIRST, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_status ON images (status, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_container_format ON images (container_format NULLS FIRST, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_disk_format ON images (disk_format NULLS FIRST, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_size ON images (size NULLS FIRST, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_updated_at ON images (updated_at, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_visibility ON images (visibility, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_owner ON images (owner NULLS FIRST, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_min_disk ON images (min_disk, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_min_ram ON images (min_ram, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_protected ON images (protected, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_os_hidden ON images (os_hidden, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_virtual_size ON images (virtual_size NULLS FIRST, created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE image_tags (
    image_id TEXT COLLATE "C" NOT NULL REFERENCES images (id),
    value    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (image_id, value)
);
CREATE INDEX image_tags_value ON image_tags (value, image_id);

CREATE TABLE image_properties (
    image_id TEXT COLLATE "C" NOT NULL REFERENCES images (id),
    name     TEXT COLLATE "C" NOT NULL,
    value    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (image_id, name)
);
CREATE INDEX image_properties_name_value ON image_properties (name, value, image_id);

CREATE TABLE image_members (
    image_id   TEXT COLLATE "C" NOT NULL REFERENCES images (id),
    member     TEXT COLLATE "C" NOT NULL,
    status     TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (image_id, member)
);
CREATE INDEX image_members_member ON image_members (member, status, image_id);
